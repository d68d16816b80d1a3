"""hyperland.load(): one entry point for every model source (see hub.parse_source)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ._defaults import DEFAULT_MODEL
from .assets import embedded_dir, repair_advice
from .backbone import create_backbone, load_state, read_weights
from .config import CONFIG_NAME, WEIGHTS_NAME, ModelConfig
from .errors import InvalidOptionError, ModelNotFoundError, OfflineModeError, WeightsMismatchError
from .hub import fetch_model_dir, parse_source, require_published, split_pca, split_projection
from .integrity import check_finite, sha256_file, verify_recorded_sha256
from .manifest import ManifestEntry, load_manifest
from .model import HyperlandModel

logger = logging.getLogger(__name__)


def _from_files(config_path: Path, weights_path: Path, **overrides: Any) -> HyperlandModel:
    config = ModelConfig.from_file(config_path)
    verify_recorded_sha256(weights_path, config.weights_sha256, record=config_path)
    if overrides:
        config = replace(config, **overrides)
    backbone = create_backbone(config, seed=None)
    state = read_weights(weights_path)
    check_finite(state, path=weights_path)
    projection = split_projection(state, config, source=str(weights_path))
    pca = split_pca(state, config, source=str(weights_path))
    load_state(backbone, state, source=str(weights_path))
    try:
        return HyperlandModel(config, backbone, projection=projection, pca=pca)
    except InvalidOptionError as exc:  # a projection or PCA whose width is not its layers': the file is wrong
        raise WeightsMismatchError(f"'{weights_path}': {exc} Export the model again.") from exc


def _manifest_files(e: ManifestEntry, *, cache_dir: str | Path | None,
                    local_files_only: bool | None) -> tuple[Path, Path]:
    """config.json + weights of a published or embedded entry. An embedded copy is used only when its sha256
    is the manifest's (the same check a download gets); otherwise the Hub copy is fetched and checked."""
    assert e.repo_id is not None
    why_not = ""
    if e.embedded is not None:
        local = embedded_dir(e.embedded)
        weights = local / e.filename
        if weights.is_file() and (local / CONFIG_NAME).is_file():
            got = sha256_file(weights)
            if got == e.sha256:
                return local / CONFIG_NAME, weights
            why_not = (f"The embedded copy of '{e.name}' ({weights}) is damaged: sha256 {got[:12]}... is not the "
                       f"manifest's {str(e.sha256)[:12]}....")
            logger.warning("%s Using the Hub copy %s instead; to repair the package, %s.", why_not, e.repo_id,
                           repair_advice(weights))
        else:
            why_not = f"The embedded copy of '{e.name}' is missing from this install ({local})."
            logger.warning("%s Using the Hub copy %s instead.", why_not, e.repo_id)
    try:
        return fetch_model_dir(e.repo_id, revision=e.revision, filename=e.filename, sha256=e.sha256,
                               cache_dir=cache_dir, local_files_only=local_files_only)
    except (OfflineModeError, ModelNotFoundError) as exc:
        if not why_not:
            raise
        raise type(exc)(f"{why_not} The Hub copy could not be fetched either: {exc} To restore the embedded weights, "
                        f"{repair_advice(embedded_dir(e.embedded or '') / e.filename)}.") from exc


def _timm_config(arch: str, **overrides: Any) -> ModelConfig:
    """Config for ``timm:ARCH``: timm's default feature indices; stride >= 4 maps form the default hypercolumn."""
    import timm

    base = arch.split(".")[0]
    if not timm.is_model(base):
        raise ModelNotFoundError(f"timm has no architecture '{arch}'. See timm.list_models('{base[:4]}*').")
    probe = ModelConfig(architecture=base, out_indices=(0,), **overrides)
    with torch.device("meta"):
        try:
            m = timm.create_model(base, features_only=True, pretrained=False, img_size=probe.input_size)
        except TypeError:
            m = timm.create_model(base, features_only=True, pretrained=False)
    info: Any = m.feature_info
    indices = tuple(info.out_indices)
    layers = tuple(i for i, r in zip(indices, info.reduction()) if r >= 4) or indices
    try:
        cfg = timm.get_pretrained_cfg(arch)
        mean, std = tuple(cfg.mean), tuple(cfg.std)  # type: ignore[union-attr]
    except (AttributeError, RuntimeError, KeyError):
        mean, std = probe.mean, probe.std
    return ModelConfig(architecture=arch, out_indices=indices, layers=layers, mean=mean, std=std,
                       name=f"timm:{arch}", **overrides)


_COMMIT = re.compile(r"[0-9a-f]{40}")


def load(
    name: str | os.PathLike = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    pretrained: bool | None = None,
    resize: int | None = None,
    border: int | None = None,
    manifest: dict[str, ManifestEntry] | None = None,
) -> HyperlandModel:
    """Load a model by manifest name, ``hf-hub:org/name[@revision]``, local directory or ``timm:ARCH[.tag]``.

    With no name, the embedded default (``DEFAULT_MODEL``, ``mtfl-dense-r18``: a ResNet-18 trained with the dense
    equivariant objective on MTFL faces) is loaded from the
    package itself: no download, works offline.

    ``cache_dir`` / ``local_files_only`` go to huggingface_hub (``HF_HUB_OFFLINE=1`` and ``HF_ENDPOINT`` are
    honoured). For ``timm:`` sources, ``pretrained`` defaults to True exactly when a tag is given
    (``timm:resnet50.a1_in1k``). ``resize``/``border`` override the preprocessing of the config.
    """
    overrides: dict[str, Any] = {k: v for k, v in (("resize", resize), ("border", border)) if v is not None}
    src = parse_source(name, manifest=manifest)
    source = src.value if src.kind != "timm" else f"timm:{src.value}"  # what load() reads back (see model.source)
    if src.kind == "builtin":
        assert src.entry is not None
        entry = src.entry
        config = ModelConfig(architecture=entry.architecture, name=entry.name, timm_kwargs=dict(entry.timm_kwargs),
                             provenance={"source": "builtin", "seed": entry.seed, "license": entry.license},
                             **overrides)
        model = HyperlandModel(config, create_backbone(config, seed=entry.seed))
    elif src.kind == "manifest":
        assert src.entry is not None
        require_published(src.entry)
        e = src.entry
        cfg_path, w_path = _manifest_files(e, cache_dir=cache_dir, local_files_only=local_files_only)
        model = _from_files(cfg_path, w_path, name=e.name, **overrides)
    elif src.kind == "hub":
        cfg_path, w_path = fetch_model_dir(src.value, revision=src.revision, cache_dir=cache_dir,
                                           local_files_only=local_files_only)
        model = _from_files(cfg_path, w_path, **overrides)
        commit = cfg_path.parent.name  # huggingface_hub's cache: snapshots/<commit>/config.json
        pinned = commit if _COMMIT.fullmatch(commit) else src.revision
        source = f"hf-hub:{src.value}" + (f"@{pinned}" if pinned else "")
    elif src.kind == "dir":
        d = Path(src.value)
        if not d.is_dir():
            raise ModelNotFoundError(f"Model directory '{d}' does not exist.")
        missing = [f for f in (CONFIG_NAME, WEIGHTS_NAME) if not (d / f).is_file()]
        if missing:
            raise ModelNotFoundError(
                f"'{d}' is not a model directory: {', '.join(missing)} missing. Expected {CONFIG_NAME} + "
                f"{WEIGHTS_NAME} (written by save_pretrained or `hyperland-train export`)."
            )
        model = _from_files(d / CONFIG_NAME, d / WEIGHTS_NAME, **overrides)
        source = str(d.resolve())
    else:  # timm
        tagged = "." in src.value
        use_pretrained = tagged if pretrained is None else pretrained
        config = _timm_config(src.value, **overrides)
        model = HyperlandModel(config, create_backbone(config, pretrained=use_pretrained, seed=0))
    model.source = source
    return model.to(device) if device is not None else model


def list_models(*, manifest: dict[str, ManifestEntry] | None = None) -> dict[str, str]:
    """Names in weights_manifest.json and their status ('builtin', 'published' or 'unpublished')."""
    entries = load_manifest() if manifest is None else manifest
    return {name: e.status for name, e in sorted(entries.items())}


__all__ = ["DEFAULT_MODEL", "list_models", "load"]
