"""What a fitted LandmarkHead does besides fitting and predicting: save / load (:mod:`.io`), share on the Hub
(:mod:`.sharing`) and export one ONNX graph (:mod:`.onnx_export`). A mixin of :class:`.estimator.LandmarkHead`,
so that the estimator module keeps to the estimator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import NotFittedError
from .io import load_head, save_head

if TYPE_CHECKING:
    from ..model import HyperlandModel
    from .estimator import LandmarkHead


class PersistenceMixin:
    """save / load / save_pretrained / push_to_hub / from_pretrained / to_onnx of a LandmarkHead."""

    model_: HyperlandModel

    def _require_fitted(self) -> None:
        if not hasattr(self, "fingerprint_"):
            raise NotFittedError("This LandmarkHead is not fitted yet. Call fit(model, images, points) or "
                                 "LandmarkHead.load(path, model=model) first.")

    def to_onnx(self, path: str | os.PathLike, *, model: HyperlandModel | None = None, verify: bool = True) -> Path:
        """One ONNX graph from uint8 RGB images (N, H, W, 3) to landmarks (N, K, 2) in their pixels and confidences
        (N, K): see :func:`hyperland.heads.onnx_export.export_onnx` (needs ``pip install "hyperland[onnx]"``)."""
        from .onnx_export import export_onnx

        self._require_fitted()
        return export_onnx(cast("LandmarkHead", self), path, model=model or self.model_, verify=verify)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path/head.json`` and ``path/head.safetensors``."""
        self._require_fitted()
        save_head(cast("LandmarkHead", self), path)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """The saved head plus a model card (README.md), ready to share (:mod:`.sharing`)."""
        from .sharing import save_pretrained

        self._require_fitted()
        return save_pretrained(cast("LandmarkHead", self), directory)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None,
                    commit_message: str = "Upload hyperland head") -> str:
        """Upload :meth:`save_pretrained`'s folder with huggingface_hub; return the commit URL."""
        from .sharing import push_to_hub

        self._require_fitted()
        return push_to_hub(cast("LandmarkHead", self), repo_id, private=private, token=token,
                           commit_message=commit_message)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, model: HyperlandModel | None = None, device: Any = None,
                        cache_dir: str | os.PathLike | None = None,
                        local_files_only: bool | None = None) -> LandmarkHead:
        """A head from ``hf-hub:org/name[@revision]`` (through huggingface_hub's cache) or a local folder, with
        the model its head.json records unless ``model`` is given."""
        from .sharing import from_pretrained

        return from_pretrained(cast("type[LandmarkHead]", cls), source, model=model, device=device,
                               cache_dir=None if cache_dir is None else Path(cache_dir),
                               local_files_only=local_files_only)

    @classmethod
    def load(cls, path: str | os.PathLike, *, model: HyperlandModel | None = None, device: Any = None,
             allow_backbone_mismatch: bool = False, n_landmarks: int | None = None) -> LandmarkHead:
        """Read a saved head. Without ``model``, the model recorded in its head.json is loaded (on ``device``):
        a manifest name, an ``hf-hub:`` reference or a model folder stored relative to the head. A backbone
        other than the one it was fitted on raises BackboneMismatchError unless allowed, and ``n_landmarks``
        (when given) must match the saved K."""
        return load_head(cast("type[LandmarkHead]", cls), path, model=model, device=device,
                         allow_backbone_mismatch=allow_backbone_mismatch, n_landmarks=n_landmarks)


__all__ = ["PersistenceMixin"]
