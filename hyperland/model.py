"""HyperlandModel: a timm backbone → hypercolumn extract() / sample() (preprocessing: :mod:`hyperland.preprocess`;
save, push and the projection's weights: :mod:`hyperland.hub`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import preprocess as pre
from ._memory import empty_large
from ._progress import progress_bar
from .backbone import FeatureRunner
from .config import PROJECTION_PREFIX, ModelConfig
from .errors import InvalidImageError, InvalidKeypointsError, InvalidOptionError
from .hypercolumn import Normalize, check_normalize, sample_layers, stack_layers
from .images import ImageLike, Images, as_list, image_size, is_single
from .preprocess import Size

if TYPE_CHECKING:
    from .features import Projection

logger = logging.getLogger(__name__)
Points = np.ndarray | torch.Tensor | Sequence[Any]


def _grid(feats: Sequence[torch.Tensor], size: Size | None) -> Size:
    """The hypercolumn grid: ``size``, or the finest of the feature maps' grids."""
    grid = size or (max(f.shape[-2] for f in feats), max(f.shape[-1] for f in feats))
    return int(grid[0]), int(grid[1])


class HyperlandModel(nn.Module):
    """A frozen backbone that turns images into hypercolumns. Build with :func:`hyperland.load`."""

    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(self, config: ModelConfig, backbone: nn.Module, *, projection: nn.Conv2d | None = None,
                 pca: Projection | None = None) -> None:
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
        if (pca is None) != (config.pca_layers is None):
            raise InvalidOptionError("A descriptor PCA needs config.pca_layers, and pca_layers a PCA.")
        if pca is not None and pca.in_channels != self.num_channels(config.pca_layers):
            raise InvalidOptionError(f"The descriptor PCA reads {pca.in_channels} channels; layers "
                                     f"{config.pca_layers} give {self.num_channels(config.pca_layers)}.")
        # The descriptor PCA fitted on the model's own (unlabelled) training images, if it ships one: what a head
        # reads by default (descriptor="auto"). Not part of the fingerprint: features record its key themselves.
        self.pca = pca
        mean, std = pre.channel_stats(config)
        self.register_buffer("_mean", mean, persistent=False)
        self.register_buffer("_std", std, persistent=False)
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
    def pca_layers(self) -> tuple[int, ...] | None:
        """Layers the model's descriptor PCA (:attr:`pca`) reads, or None without one."""
        return self.config.pca_layers

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
        if self.pca is not None:
            proj += f", pca={self.pca.n_components} components of layers {c.pca_layers}"
        return (f"HyperlandModel(name={self.name!r}, fingerprint={self.fingerprint!r}, "
                f"architecture={c.architecture!r}, layers={self.layers} of {c.out_indices} "
                f"({self.num_channels()} channels), input={c.input_size}x{c.input_size} "
                f"(resize {c.resize}, border {c.border}){proj}, device={self.device})")

    def train(self, mode: bool = True) -> HyperlandModel:
        """The backbone stays in eval mode (frozen BN statistics); use hyperland.train to train it."""
        super().train(False)
        return self

    # ------------------------------------------------------------------ preprocessing (hyperland.preprocess)
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 1], one size → normalised (B, 3, S, S) network input on the model's device
        (:func:`hyperland.preprocess.prepare`); pure tensor ops, also run by a head's ONNX graph."""
        return pre.prepare(x, self.config, stats=(self._mean, self._std), device=self.device)

    def preprocess(self, images: Images) -> torch.Tensor:
        """Images → normalised (B, 3, S, S) input on the model's device (:func:`hyperland.preprocess.preprocess`)."""
        return pre.preprocess(images, self.config, stats=(self._mean, self._std), device=self.device)

    def to_input_coords(self, points: torch.Tensor, sizes: Sequence[Size]) -> torch.Tensor:
        """(B, K, 2) pixel (x, y) in each original image (``sizes``: (H, W) each) → pixel coordinates of the network
        input (:func:`hyperland.preprocess.to_input_coords`)."""
        return pre.to_input_coords(points, sizes, self.config)

    def from_input_coords(self, points: torch.Tensor, sizes: Sequence[Size] | torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_input_coords` (``sizes`` may also be a (B or 1, 2) tensor of (H, W))."""
        return pre.from_input_coords(points, sizes, self.config)

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
        with progress_bar(len(items), enabled=progress, desc="extract") as bar:
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
            raise InvalidImageError("extract: no images given. Pass at least one image.")
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
        with progress_bar(len(items), enabled=progress, desc="sample") as bar:
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
    def with_pca(self, images: Images, *, n_components: int = 128, layers: Sequence[int] | None = None,
                 max_images: int = 512, per_image: int = 96, random_state: int | None = 0, data: str = "",
                 progress: bool | None = None) -> HyperlandModel:
        """This model with a descriptor PCA (:attr:`pca`) of the hypercolumn of ``layers`` (default: the model's)
        fitted on ``images`` — unlabelled images like its training images; ``data`` says which, for the
        provenance — by :func:`hyperland.features.fit_projection`. Heads read it by default
        (``descriptor="auto"``) and :meth:`save_pretrained` ships it in model.safetensors, so that a 1-shot fit
        reads the same descriptors as a 1,000-shot one. The backbone is shared and the fingerprint unchanged."""
        from dataclasses import replace

        from .features import fit_projection

        used = tuple(int(i) for i in (layers if layers is not None else self.layers))
        proj = fit_projection(self, images, n_components=n_components, layers=used, max_images=max_images,
                              per_image=per_image, random_state=random_state, progress=progress)
        record = {"data": data, "images": min(len(as_list(images)), max_images), "cells_per_image": per_image,
                  "n_components": n_components, "layers": list(used), "explained_variance": round(proj.explained, 4),
                  "random_state": random_state}
        config = replace(self.config, pca_layers=used, provenance={**self.config.provenance, "pca": record})
        model = HyperlandModel(config, self.backbone, projection=self.projection, pca=proj).to(self.device)
        model.source = self.source  # the same backbone: a head fitted on either finds it there
        return model

    def save_pretrained(self, directory: str | os.PathLike, *, dtype: str = "float32", card_extra: str = "") -> Path:
        """Write the model directory (:func:`hyperland.hub.save_model_dir`): config.json, model.safetensors
        (backbone, timm keys; the learned projection and the descriptor PCA), README.md.

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


__all__ = ["HyperlandModel"]
