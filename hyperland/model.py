"""HyperlandModel: preprocessing, a timm backbone, hypercolumn extract() / sample(), save and push."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._memory import empty_large
from .backbone import FeatureRunner
from .config import ModelConfig
from .errors import InvalidKeypointsError, InvalidOptionError
from .hypercolumn import Normalize, check_normalize, sample_layers, stack_layers
from .images import MIN_SIDE, ImageLike, Images, as_list, image_size, is_single, load_image

logger = logging.getLogger(__name__)
SAVE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PROJECTION_PREFIX = "hyperland_projection."  # key prefix of the learned descriptor projection in model.safetensors
Points = np.ndarray | torch.Tensor | Sequence[Any]
Size = tuple[int, int]


def split_projection(state: dict[str, torch.Tensor], config: ModelConfig, *, source: str) -> nn.Conv2d | None:
    """Remove the learned projection's tensors (``hyperland_projection.weight`` (D, C, 1, 1), ``.bias`` (D,)) from
    ``state`` (an explicit prefix filter) and build the 1x1 convolution; None when the model has none."""
    own = {k[len(PROJECTION_PREFIX):]: state.pop(k) for k in list(state) if k.startswith(PROJECTION_PREFIX)}
    if config.projection_layers is None and not own:
        return None
    w, b = own.get("weight"), own.get("bias")
    if config.projection_layers is None or w is None or b is None or set(own) != {"weight", "bias"} \
            or w.ndim != 4 or w.shape[2:] != (1, 1) or b.shape != (w.shape[0],):
        from .errors import WeightsMismatchError

        raise WeightsMismatchError(
            f"'{source}': config.json projection_layers={config.projection_layers} and the file's projection "
            f"tensors {sorted(own)} do not agree. Expected both or neither (weight (D, C, 1, 1) and bias (D,)); "
            "export the model again.")
    return projection_conv(w, b)


def projection_conv(weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """The frozen 1x1 convolution of a learned descriptor projection from its (D, C, 1, 1) weight and (D,) bias."""
    conv = nn.Conv2d(int(weight.shape[1]), int(weight.shape[0]), kernel_size=1)
    conv.load_state_dict({"weight": weight.detach().float().cpu(), "bias": bias.detach().float().cpu()}, strict=True)
    return conv.eval().requires_grad_(False)


def _grid(feats: Sequence[torch.Tensor], size: Size | None) -> Size:
    """The hypercolumn grid: ``size``, or the finest of the feature maps' grids."""
    grid = size or (max(f.shape[-2] for f in feats), max(f.shape[-1] for f in feats))
    return int(grid[0]), int(grid[1])


def _progress(total: int, *, enabled: bool | None, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=None if enabled is None else not enabled, leave=False)


class HyperlandModel(nn.Module):
    """A frozen backbone that turns images into hypercolumns. Build with :func:`hyperland.load`."""

    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(self, config: ModelConfig, backbone: nn.Module, *, projection: nn.Conv2d | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone.eval()
        self._runner = FeatureRunner(backbone, config.architecture)
        self._runner.check(config.layers, config.layers or ())
        if (projection is None) != (config.projection_layers is None):
            raise InvalidOptionError("A projection needs config.projection_layers, and projection_layers a projection.")
        if projection is not None and projection.in_channels != self.num_channels(config.projection_layers):
            raise InvalidOptionError(f"The projection reads {projection.in_channels} channels; layers "
                                     f"{config.projection_layers} give {self.num_channels(config.projection_layers)}.")
        self.projection = projection.eval().requires_grad_(False) if projection is not None else None
        self.register_buffer("_mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)
        self._fingerprint: str | None = None
        # What hyperland.load() read this model from (a manifest name, "hf-hub:org/name@commit", an absolute model
        # directory or "timm:ARCH"), so that a saved head can find its model again; None for models built by hand.
        self.source: str | None = None

    # ------------------------------------------------------------------ introspection
    @property
    def name(self) -> str:
        return self.config.name or self.config.architecture

    @property
    def device(self) -> torch.device:
        return self._mean.device

    @property
    def layers(self) -> tuple[int, ...]:
        """Default feature indices that extract() stacks."""
        return tuple(self.config.layers or ())

    @property
    def feature_info(self) -> list[dict[str, int]]:
        """Index, channels and stride of every feature map this backbone builds (from timm)."""
        r = self._runner
        return [{"index": i, "channels": r.channels[i], "reduction": r.reduction[i]} for i in r.indices]

    @property
    def projection_layers(self) -> tuple[int, ...] | None:
        """Layers the learned descriptor projection reads (``extract(projected=True)``), or None without one."""
        return self.config.projection_layers

    @property
    def projection_dim(self) -> int | None:
        return None if self.projection is None else int(self.projection.out_channels)

    def num_channels(self, layers: Sequence[int] | None = None) -> int:
        """Channels of the hypercolumn for ``layers`` (default: the model's default layers)."""
        return sum(self._runner.channels[i] for i in self._runner.check(layers, self.layers))

    @property
    def fingerprint(self) -> str:
        """sha256 (16 hex) of the architecture, feature indices, preprocessing and weights: a head records it."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            c = self.config
            h.update(json.dumps([c.architecture, c.out_indices, c.resize, c.border, c.mean, c.std]).encode())
            state = dict(self.backbone.state_dict())
            if self.projection is not None:
                state.update({PROJECTION_PREFIX + k: v for k, v in self.projection.state_dict().items()})
            for k, v in sorted(state.items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def __repr__(self) -> str:
        """One line that identifies the model (``print(model)``), not the whole module tree."""
        c, proj = self.config, ""
        if self.projection is not None:
            proj = f", projection={self.projection_dim} channels from layers {c.projection_layers}"
        return (f"HyperlandModel(name={self.name!r}, fingerprint={self.fingerprint!r}, architecture={c.architecture!r}, "
                f"layers={self.layers} of {c.out_indices} ({self.num_channels()} channels), input={c.input_size}x"
                f"{c.input_size} (resize {c.resize}, border {c.border}){proj}, device={self.device})")

    def train(self, mode: bool = True) -> HyperlandModel:
        """The backbone stays in eval mode (frozen BN statistics); use hyperland.train to train it."""
        super().train(False)
        return self

    # ------------------------------------------------------------------ preprocessing
    def _resize_crop(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) in [0, 1] → resized to ``resize`` (antialiased bilinear) and border-cropped."""
        r, b = self.config.resize, self.config.border
        x = x.to(self.device)
        if torch.compiler.is_compiling() or tuple(x.shape[-2:]) != (r, r):  # traced: any size (identity at r × r)
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        return x[..., b:r - b, b:r - b] if b else x

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 1], one size → normalised (B, 3, S, S) network input (resize, border crop,
        mean/std); pure tensor ops, also run by a head's ONNX graph (``LandmarkHead.to_onnx``)."""
        return (self._resize_crop(x) - self._mean) / self._std

    def preprocess(self, images: Images) -> torch.Tensor:
        """Images → normalised (B, 3, S, S) input on the model's device (:meth:`prepare`).

        Images of one size are resized in one batched call; mixed sizes one by one.
        """
        loaded = [load_image(im, max_side=2 * self.config.resize, min_side=MIN_SIDE) for im in as_list(images)]
        if len({tuple(t.shape) for t in loaded}) == 1:
            return self.prepare(torch.stack(loaded))
        return torch.cat([self.prepare(t.unsqueeze(0)) for t in loaded], dim=0)

    def to_input_coords(self, points: torch.Tensor, sizes: Sequence[Size]) -> torch.Tensor:
        """(B, K, 2) pixel (x, y) in each original image → pixel coordinates of the network input."""
        r, b = self.config.resize, self.config.border
        hw = torch.tensor(sizes, dtype=points.dtype, device=points.device).view(-1, 1, 2)
        scale = r / hw.flip(-1)  # (x scale, y scale)
        return (points + 0.5) * scale - 0.5 - b

    def from_input_coords(self, points: torch.Tensor, sizes: Sequence[Size] | torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_input_coords` (``sizes`` may also be a (B or 1, 2) tensor of (H, W))."""
        r, b = self.config.resize, self.config.border
        hw = torch.as_tensor(sizes, dtype=points.dtype, device=points.device).view(-1, 1, 2)
        scale = hw.flip(-1) / r
        return (points + b + 0.5) * scale - 0.5

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def forward_features(self, x: torch.Tensor, *, layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Feature maps of a preprocessed batch for ``layers`` (timm indices), running only as deep as needed."""
        return self._runner(self.backbone, x, self._runner.check(layers, self.layers))

    def _projection_layers(self, layers: Sequence[int] | None, normalize: Normalize) -> tuple[int, ...]:
        if self.projection is None or self.config.projection_layers is None:
            raise InvalidOptionError(f"projected=True: model '{self.name}' has no learned projection (models trained "
                                     "with the dense objective have one). Use projected=False.")
        own = self.config.projection_layers
        if layers is not None and tuple(int(i) for i in ((layers,) if isinstance(layers, int) else layers)) != own:
            raise InvalidOptionError(f"projected=True reads layers {own}; got layers={layers}. Drop layers=.")
        if normalize != "l2":
            raise InvalidOptionError("projected=True needs normalize='l2' (the projection was learned on it).")
        return own

    def project(self, hyper: torch.Tensor) -> torch.Tensor:
        """Learned descriptors of a hypercolumn of :attr:`projection_layers`: (B, C, H, W) → (B, D, H, W), unit norm."""
        if self.projection is None:
            raise InvalidOptionError(f"Model '{self.name}' has no learned projection.")
        with torch.no_grad():
            out = self.projection(hyper.float())
            return F.normalize(out, dim=1)

    def preprocessed_batches(self, images: Images, *, batch_size: int = 32, progress: bool | None = None
                             ) -> Iterator[tuple[int, torch.Tensor]]:
        """(start index, :meth:`preprocess` of ``images[start:start + batch_size]``) per batch, with a progress bar."""
        items = as_list(images)
        if batch_size < 1:
            raise InvalidOptionError(f"batch_size={batch_size}; expected a positive integer.")
        with _progress(len(items), enabled=progress, desc="extract") as bar:
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                yield start, self.preprocess(chunk)
                bar.update(len(chunk))

    def hypercolumn(self, x: torch.Tensor, *, layers: Sequence[int] | None = None, size: Size | None = None,
                    normalize: Normalize = "l2", dtype: torch.dtype | None = None, projected: bool = False
                    ) -> torch.Tensor:
        """Hypercolumns (B, C, H, W) of a preprocessed batch (:meth:`prepare`), as :meth:`iter_extract` yields them
        (same options); pure tensor ops, run by :meth:`iter_extract` and by a head's ONNX graph."""
        check_normalize(normalize)
        if projected:
            layers = self._projection_layers(layers, normalize)
        feats = self.forward_features(x, layers=self._runner.check(layers, self.layers))
        with torch.no_grad():
            hyper = stack_layers(feats, size=_grid(feats, size), normalize=normalize,
                                 dtype=None if projected else dtype)
            return self.project(hyper).to(dtype or hyper.dtype) if projected else hyper

    def iter_extract(
        self,
        images: Images,
        *,
        layers: Sequence[int] | None = None,
        size: Size | None = None,
        normalize: Normalize = "l2",
        dtype: torch.dtype | None = None,
        batch_size: int = 32,
        progress: bool | None = None,
        projected: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Yield hypercolumns batch by batch, (b, C, H, W) each; memory stays bounded by ``batch_size``."""
        for _, x in self.preprocessed_batches(images, batch_size=batch_size, progress=progress):
            yield self.hypercolumn(x, layers=layers, size=size, normalize=normalize, dtype=dtype, projected=projected)

    def extract(
        self,
        images: Images,
        *,
        layers: Sequence[int] | None = None,
        size: Size | None = None,
        normalize: Normalize = "l2",
        dtype: torch.dtype | None = None,
        batch_size: int = 32,
        progress: bool | None = None,
        projected: bool = False,
    ) -> torch.Tensor:
        """Hypercolumns: (C, H, W) for one image, (B, C, H, W) for several.

        ``layers`` are timm feature indices (ResNet 1..4 = layer1..layer4; default: the model's layers);
        ``size`` is the output grid (default: the finest selected layer's grid); each layer is resized
        bilinearly (align_corners=False), L2-normalised over channels when ``normalize="l2"``, and
        concatenated. ``dtype`` (e.g. torch.float16) sets the output precision. Each batch is written
        straight into its rows of the result; use :meth:`iter_extract` to keep only one batch in memory.

        ``projected=True`` (models trained with the dense objective) returns the learned D-channel descriptors
        of the hypercolumn of :attr:`projection_layers` instead (unit norm per cell).
        """
        single = is_single(images)
        if projected:
            parts = list(self.iter_extract(images, size=size, dtype=dtype, batch_size=batch_size, progress=progress,
                                           projected=True))
            out_p = torch.cat(parts, dim=0)
            return out_p[0] if single else out_p
        n, idx = len(as_list(images)), self._runner.check(layers, self.layers)
        check_normalize(normalize)
        out: torch.Tensor | None = None
        for start, x in self.preprocessed_batches(images, batch_size=batch_size, progress=progress):
            feats = self.forward_features(x, layers=idx)
            b, grid = feats[0].shape[0], _grid(feats, size)
            if out is None:
                channels = sum(f.shape[1] for f in feats)
                out = empty_large((n, channels, *grid), dtype=dtype or feats[0].dtype, device=feats[0].device)
            with torch.no_grad():
                stack_layers(feats, size=grid, normalize=normalize, out=out[start:start + b])
        if out is None:  # pragma: no cover - as_list rejects empty input
            raise ValueError("no images")
        return out[0] if single else out

    def _points_for(self, items: list[ImageLike], points: Points, single: bool) -> list[torch.Tensor]:
        if single and not isinstance(points, torch.Tensor):
            points = np.asarray(points, dtype=np.float32)
        if isinstance(points, (np.ndarray, torch.Tensor)):
            pts = torch.as_tensor(points, dtype=torch.float32)
            if single and pts.ndim == 2:
                pts = pts.unsqueeze(0)
            if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[0] != len(items):
                raise InvalidKeypointsError(
                    f"points of shape {tuple(pts.shape)} do not fit {len(items)} image(s). Expected "
                    f"({len(items)}, K, 2) pixel (x, y)" + (" or (K, 2) for one image." if single else ".")
                )
            per = list(pts.unbind(0))
        else:
            per = [torch.as_tensor(np.asarray(p, dtype=np.float32)) for p in points]
            if len(per) != len(items):
                raise InvalidKeypointsError(f"Got {len(per)} point sets for {len(items)} images. Expected one each.")
        for i, p in enumerate(per):
            if p.ndim != 2 or p.shape[-1] != 2 or p.shape[0] == 0:
                raise InvalidKeypointsError(f"points[{i}] has shape {tuple(p.shape)}. Expected (K, 2) with K >= 1.")
            if not torch.isfinite(p).all():
                raise InvalidKeypointsError(
                    f"points[{i}] contains NaN or inf. sample() needs finite (x, y); drop missing landmarks first."
                )
        return per

    def sample(
        self,
        images: Images,
        points: Points,
        *,
        layers: Sequence[int] | None = None,
        normalize: Normalize = "l2",
        dtype: torch.dtype | None = None,
        batch_size: int = 32,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """Hypercolumn descriptors at pixel ``points`` (x, y) of each image as passed in: (B, K, C) or (K, C).

        Every selected layer is sampled bilinearly at the points; no full hypercolumn is built. Points may
        lie outside the image (they are clamped to the border, like extract()).
        """
        check_normalize(normalize)
        single = is_single(images)
        items = as_list(images)
        per = self._points_for(items, points, single)
        if batch_size < 1:
            raise InvalidOptionError(f"batch_size={batch_size}; expected a positive integer.")
        idx = self._runner.check(layers, self.layers)
        s = self.config.input_size
        outs = []
        with _progress(len(items), enabled=progress, desc="sample") as bar:
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                pts = per[start:start + batch_size]
                if len({p.shape[0] for p in pts}) != 1:
                    raise InvalidKeypointsError("Every image needs the same number of points K in one sample() call.")
                sizes = [image_size(im) for im in chunk]
                uv = self.to_input_coords(torch.stack(pts).to(self.device), sizes)
                grid = (2 * uv + 1) / s - 1
                feats = self.forward_features(self.preprocess(chunk), layers=idx)
                with torch.no_grad():
                    outs.append(sample_layers(feats, grid, normalize=normalize, dtype=dtype))
                bar.update(len(chunk))
        out = torch.cat(outs, dim=0)
        return out[0] if single else out

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike, *, dtype: str = "float32", card_extra: str = "") -> Path:
        """Write the model directory: config.json, model.safetensors (backbone, timm keys), README.md.

        ``dtype="float16"`` or ``"bfloat16"`` stores the floating-point weights at reduced precision (half the
        file); loading casts them back to the backbone's float32.
        """
        from .hub import save_model_dir

        return save_model_dir(self, directory, dtype=dtype, card_extra=card_extra)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None,
                    commit_message: str = "Upload hyperland model") -> str:
        """save_pretrained() into a temporary folder and upload it with huggingface_hub; returns the commit URL."""
        from .hub import push_saved

        return push_saved(self.save_pretrained, repo_id, private=private, token=token, commit_message=commit_message)


__all__ = ["PROJECTION_PREFIX", "HyperlandModel", "projection_conv", "split_projection"]
