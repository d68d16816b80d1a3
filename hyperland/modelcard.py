"""README.md model cards for model directories (Hub metadata in the YAML front matter)."""

from __future__ import annotations

import json

from .config import ModelConfig

_PAPER = "Cheng, Su & Maji, Unsupervised Discovery of Object Landmarks via Contrastive Learning (arXiv:2006.14787)"


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
    if config.recipe:
        lines += ["## Training", f"Recipe `{config.recipe}`.", ""]
    if prov:
        lines += ["## Provenance", "```json", json.dumps(prov, indent=2, sort_keys=True), "```", ""]
    if extra:
        lines += [extra.rstrip(), ""]
    return "\n".join(lines)


__all__ = ["model_card"]
