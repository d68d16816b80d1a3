"""Export a training run to a model directory that :func:`hyperland.load` reads (strict keys), with the descriptor
PCA fitted on its training images (:func:`training_pca`), plus its sha256 and the weights_manifest.json entry to
paste; optionally push it to the Hub."""

from __future__ import annotations

import datetime as _dt
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..backbone import create_backbone, load_state
from ..config import WEIGHTS_NAME
from ..errors import CheckpointError, DatasetError
from ..hub import projection_conv, push_folder, sha256_file
from ..model import HyperlandModel
from ..modelcard import objective_name
from .build import backbone_config
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import RUNTIME_FIELDS, TrainConfig
from .data import resolve_data
from .pca import PCA_IMAGES, training_pca

logger = logging.getLogger(__name__)
BACKBONE_PREFIX = "encoder_q.backbone."
DENSE_PREFIX = "dense.proj."
_COMMIT = re.compile(r"([0-9a-f]{40})/?$")


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    sha256: str
    manifest_entry: dict[str, Any]
    commit_url: str | None = None


def checkpoint_backbone_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The query encoder's backbone with timm key names. The projection head, the key encoder and the queue
    are dropped by this explicit prefix filter."""
    out = {k[len(BACKBONE_PREFIX):]: v for k, v in model_state.items() if k.startswith(BACKBONE_PREFIX)}
    if not out:
        raise CheckpointError(f"The checkpoint's model has no '{BACKBONE_PREFIX}*' weights; it was not written by "
                              "hyperland-train.")
    return out


def path_free(text: str) -> str:
    """``text`` with absolute filesystem paths reduced to their last component (model cards name data, not machines)."""
    return re.sub(r"(?<![\w.])(?:/[^\s/():,]+)+/?", lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def dense_projection(model_state: dict[str, torch.Tensor]) -> torch.nn.Conv2d | None:
    """The dense term's learned 1x1 projection (``dense.proj.*``), exported beside the backbone; None without it."""
    w, b = model_state.get(DENSE_PREFIX + "weight"), model_state.get(DENSE_PREFIX + "bias")
    if w is None or b is None:
        return None
    return projection_conv(w, b)


def _manifest_entry(name: str, config: TrainConfig, data: str, sha: str, *, license_: str,
                    repo_id: str | None, revision: str | None) -> dict[str, Any]:
    return {name: {
        "status": "published",
        "architecture": config.architecture,
        "data": data,
        "recipe": config.recipe,
        "license": license_,
        "repo_id": repo_id or "ORG/NAME (fill in after uploading)",
        "revision": revision or "40-hex commit of the upload (fill in)",
        "filename": WEIGHTS_NAME,
        "sha256": sha,
        "description": f"{objective_name(config.to_dict())} {config.architecture} "
                       f"({config.recipe or 'custom recipe'}), {config.epochs} epochs, "
                       f"{config.input_size} px input ({config.resize} px resize, {config.border} px border crop).",
    }}


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    name: str | None = None,
    license: str = "other",
    push_to_hub: str | None = None,
    private: bool = False,
    allow_unfinished: bool = False,
    dtype: str = "float32",
    card_extra: str = "",
    pca_images: int = PCA_IMAGES,
    data: str | Path | None = None,
) -> ExportResult:
    """Write ``out`` (config.json with recipe, data and provenance; model.safetensors: the backbone, the learned
    projection and, unless ``pca_images=0``, the descriptor PCA fitted on that many of the run's training images,
    read from ``data`` (default: where the run read them))."""
    run = Path(run_dir)
    ckpt = load_checkpoint(run / CHECKPOINT_NAME)
    config = TrainConfig.from_dict(ckpt["config"], source=str(run / CHECKPOINT_NAME))
    state = ckpt["state"]
    if not state.get("finished") and not allow_unfinished:
        raise CheckpointError(f"The run in '{run}' has not finished (epoch {state['epoch']}/{config.epochs}, step "
                              f"{state['step']}). Resume it with `hyperland-train --resume {run}`, or export this "
                              "intermediate state with --allow-unfinished.")
    name = name or run.resolve().name
    described = path_free(str(ckpt.get("data", config.data)))
    provenance = {
        "source": "hyperland-train",
        "hyperland_version": ckpt.get("hyperland_version", __version__),
        "exported_with": __version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": described,
        "license": license,
        "epochs_done": state["epoch"],
        "steps": state["step"],
        "finished": bool(state.get("finished")),
        "world_size": ckpt.get("world_size", 1),
        "train_config": {k: v for k, v in config.to_dict().items() if k not in RUNTIME_FIELDS},
    }
    projection = dense_projection(ckpt["model"])
    mcfg = replace(backbone_config(config), name=name, provenance=provenance,
                   projection_layers=tuple(config.dense_layers) if projection is not None else None)
    backbone = create_backbone(mcfg, seed=None)
    load_state(backbone, checkpoint_backbone_state(ckpt["model"]), source=str(run / CHECKPOINT_NAME))
    model = HyperlandModel(mcfg, backbone, projection=projection)
    if pca_images > 0:
        try:
            split = resolve_data(replace(config, data=str(data or config.data)), run_dir=run)
        except DatasetError as exc:
            raise DatasetError(f"{exc} The descriptor PCA is fitted on the run's training images: pass --data PATH "
                               "where they are now, or --pca-images 0 to export without one.") from exc
        model = training_pca(model, split.train, n_images=pca_images, data=data_name(config, data))
    directory = model.save_pretrained(out, dtype=dtype, card_extra=card_extra)
    sha = sha256_file(directory / WEIGHTS_NAME)
    commit_url = revision = None
    if push_to_hub:
        commit_url = push_folder(directory, push_to_hub, private=private,
                                 commit_message=f"Upload {name} (hyperland-train export)")
        m = _COMMIT.search(commit_url or "")
        revision = m.group(1) if m else None
    entry = _manifest_entry(name, config, described, sha, license_=license, repo_id=push_to_hub, revision=revision)
    return ExportResult(directory, sha, entry, commit_url)


def data_name(config: TrainConfig, data: str | Path | None) -> str:
    """The training data as the model card names it: its folder or file name, no machine path."""
    return f"'{Path(str(data or config.data)).name}'"


__all__ = ["BACKBONE_PREFIX", "ExportResult", "checkpoint_backbone_state", "export_run"]
