"""README.md model cards for model directories (Hub metadata in the YAML front matter)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .config import ModelConfig

_PAPER = "Cheng, Su & Maji, Unsupervised Discovery of Object Landmarks via Contrastive Learning (arXiv:2006.14787)"


def objective_name(train_config: Mapping[str, Any]) -> str:
    """The objective(s) a training run optimised, in a few words: "MoCo", "dense equivariant" or "MoCo + dense
    equivariant" (from TrainConfig's ``moco_weight`` / ``dense_weight``, with its defaults 1 and 0)."""
    moco, dense = float(train_config.get("moco_weight", 1.0)), float(train_config.get("dense_weight", 0.0))
    return " + ".join(n for n, w in (("MoCo", moco), ("dense equivariant", dense)) if w > 0)


def objective_text(train_config: Mapping[str, Any]) -> str:
    """One sentence for a model card: which objective(s) were trained, with their weights."""
    moco, dense = float(train_config.get("moco_weight", 1.0)), float(train_config.get("dense_weight", 0.0))
    parts = []
    if moco > 0:
        parts.append("MoCo v2 image-level InfoNCE (two augmented views of an image against a queue of other "
                     "images)" + (f", weight {moco:g}" if dense > 0 else ""))
    if dense > 0:
        layers, dim = list(train_config.get("dense_layers", (1, 2, 3))), train_config.get("dense_dim", 64)
        parts.append(f"the dense equivariant InfoNCE (matching cells of two views with known geometry, layers {layers} "
                     f"through a learned {dim}-d projection)" + (f", weight {dense:g}" if moco > 0 else ""))
    alone = "" if len(parts) > 1 else (" alone, no MoCo term" if dense > 0 else " alone, no dense term")
    return f"Objective: {objective_name(train_config)} — " + " + ".join(parts) + alone + "."


def model_card(config: ModelConfig, *, extra: str = "") -> str:
    prov = config.provenance or {}
    license_ = prov.get("license", "other")
    title = config.name or config.architecture
    lines = [
        "---",
        "library_name: hyperland",
        f"license: {license_}",
        "tags:",
        "- hyperland",
        "- landmarks",
        "- hypercolumn",
        "- self-supervised",
        "---",
        "",
        f"# {title}",
        "",
        f"A hyperland backbone ({config.architecture}) whose hypercolumns predict object landmarks, after {_PAPER}.",
        "",
        "```python",
        "import hyperland",
        "model = hyperland.load(\"hf-hub:ORG/NAME@REVISION\")  # or a local directory",
        "feats = model.extract(\"face.jpg\")",
        "```",
        "",
        "## Preprocessing",
        (
            f"Resize to {config.resize}×{config.resize}, crop {config.border} px per side → {config.input_size} px; "
            f"mean {list(config.mean)}, std {list(config.std)}. Feature indices {list(config.out_indices)} "
            f"(default hypercolumn: {list(config.layers or ())})."
        ),
        "",
    ]
    trained = prov.get("train_config")
    if config.recipe or isinstance(trained, Mapping):
        lines += ["## Training", " ".join(([f"Recipe `{config.recipe}`."] if config.recipe else [])
                                          + ([objective_text(trained)] if isinstance(trained, Mapping) else [])), ""]
    pca = prov.get("pca")
    if config.pca_layers is not None and isinstance(pca, Mapping):
        lines += ["## Descriptor PCA", (
            f"`model.pca`: {pca.get('n_components')} principal components of the layer "
            f"{list(config.pca_layers)} hypercolumn, fitted on {pca.get('data') or 'unlabelled images'}, keeping "
            f"{100 * float(pca.get('explained_variance', 1.0)):.1f} % of the sampled variance. Landmark heads read it "
            "by default (`LandmarkHead(descriptor=\"auto\")`)."), ""]
    if prov:
        lines += ["## Provenance", "```json", json.dumps(prov, indent=2, sort_keys=True), "```", ""]
    if extra:
        lines += [extra.rstrip(), ""]
    return "\n".join(lines)


__all__ = ["model_card", "objective_name", "objective_text"]
