"""One ONNX graph of a fitted head: a batch of images in, landmarks in their pixels and confidences out.

The graph is the head's own torch path, traced once by ``torch.onnx.export`` (the dynamo exporter, opset
:data:`OPSET`), not a re-implementation: :meth:`HyperlandModel.prepare` (resize to ``resize`` × ``resize``,
antialiased bilinear; border crop; mean/std), the backbone, :func:`hyperland.features.encode_batch` (hypercolumn,
learned or PCA projection, pooling), the float16 rounding of the stored descriptors that ``predict`` reads, the
method state's ``locate`` (ridge readout, cell classifier, shape prior and window soft-argmax; or the prototype head)
and :func:`~hyperland.geometry.normalised_to_pixels`.

* input ``images``: uint8 (N, H, W, 3) RGB, channels last, as ``numpy.asarray(PIL.Image.open(p).convert("RGB"))``
  gives it; N, H and W are dynamic (one size per batch, at least 8 pixels a side).
* outputs ``landmarks``: float32 (N, K, 2), (x, y) in the pixels of the images as given; ``confidence``: float32
  (N, K) in [0, 1].

``LandmarkHead.predict`` first shrinks an image larger than ``2 × resize`` pixels a side with PIL; the graph resizes
every image in one antialiased step, so on such images its points can differ slightly. On images up to that size
it matches ``predict`` (checked on a bundled face after every export unless ``verify=False``).
Needs onnx, onnxruntime and onnxscript: ``pip install "hyperland[onnx]"``.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_write_bytes
from ..errors import ExportError, MissingDependencyError
from ..features import STORE_DTYPE, encode_batch
from ..geometry import normalised_to_pixels
from .methods import MODULES
from .mirror import average_mirrored

if TYPE_CHECKING:
    from ..model import HyperlandModel
    from .estimator import LandmarkHead

logger = logging.getLogger(__name__)
OPSET = 18  # antialiased Resize needs opset 18; onnxruntime runs it from version 1.14
REQUIRES = ("onnx", "onnxruntime", "onnxscript")
INSTALL = 'pip install "hyperland[onnx]"'
INPUT, OUTPUTS = "images", ("landmarks", "confidence")
MAX_POINT_DIFF = 0.05  # pixels: the exported graph against LandmarkHead.predict (verify=True)
MAX_CONF_DIFF = 1e-4
EXPORTABLE = tuple(name for name, module in MODULES.items() if module.CONFIDENCE)  # ridge, prototype


def require_onnx(what: str = "Exporting a head to ONNX") -> None:
    """MissingDependencyError naming the missing packages and the command that installs them."""
    missing = [m for m in REQUIRES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"{what} needs {', '.join(REQUIRES)}; not installed: {', '.join(missing)}. Install them with "
            f"`{INSTALL}` (or `pip install {' '.join(REQUIRES)}`).")


class HeadGraph(nn.Module):
    """uint8 (N, H, W, 3) RGB images → (landmarks (N, K, 2) in their pixels, confidence (N, K)) of a fitted head."""

    def __init__(self, head: LandmarkHead, model: HyperlandModel) -> None:
        super().__init__()
        self.model = model
        self.head = head  # not an nn.Module: its fitted tensors become constants of the graph

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pts, conf = self._read(images)
        mirror = self.head._predict_mirror()  # the head's own rule: averaged with the mirrored images' reading
        if mirror is not None:
            mpts, mconf = self._read(torch.flip(images, dims=[2]))
            widths = torch.full((images.shape[0],), images.shape[2], dtype=pts.dtype)
            out, both = average_mirrored(pts, conf, mpts, mconf, widths, mirror[0], torch.from_numpy(mirror[1]))
            assert both is not None  # exported heads have confidences
            return out, both
        return pts, conf

    def _read(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.model.prepare(images.permute(0, 3, 1, 2).float() / 255.0)  # as load_image reads uint8 RGB
        maps = encode_batch(self.model, x, **self.head.encoding_).to(STORE_DTYPE).float()  # as predict reads them
        xy, conf = self.head.state_.locate(maps)
        hw = torch.tensor([[images.shape[1], images.shape[2]]], dtype=xy.dtype)  # (H, W) of this batch
        return normalised_to_pixels(self.model, xy, hw), conf


def export_onnx(head: LandmarkHead, path: str | os.PathLike, *, model: HyperlandModel, verify: bool = True) -> Path:
    """Write ``head`` with ``model`` as one ONNX graph to ``path`` (atomically) and return the path.

    Input ``images`` uint8 (N, H, W, 3) RGB, N, H, W dynamic; outputs ``landmarks`` (N, K, 2) pixels and
    ``confidence`` (N, K). The model's metadata records the hyperland version, the head's method, backbone
    fingerprint, model name and landmark names. ``verify`` runs the graph in onnxruntime on two bundled faces
    and raises :class:`ExportError` unless it matches ``head.predict`` (≤ :data:`MAX_POINT_DIFF` px,
    confidence ≤ :data:`MAX_CONF_DIFF`). Regressor heads (no confidence) are refused.
    """
    require_onnx()
    if head.method not in EXPORTABLE:
        raise ExportError(f"method={head.method!r}: only {' and '.join(EXPORTABLE)} heads can be exported to ONNX "
                          "(the graph returns landmarks and per-landmark confidences; the regressor head has no "
                          "confidence). Fit a head with method='ridge' (the default) and export that.")
    if getattr(head, "framing", "none") != "none":
        raise ExportError(f"framing={head.framing!r}: a framed head (a coarse head, then crops around the object "  # type: ignore[attr-defined]
                          "for a fine head) is not one fixed graph and cannot be exported to ONNX yet. Export a head "
                          "fitted with framing='none' (the default) on images framed like its inputs.")
    probe = _probe_images()
    reference = head.predict(list(probe), model=model, return_confidence=True)  # also checks the backbone
    if model.device.type != "cpu":  # trace on the CPU (the graph's constants live there); the caller's model stays
        model = copy.deepcopy(model).cpu()
    graph = HeadGraph(head, model).eval()
    sample = torch.from_numpy(probe)
    batch, side = torch.export.Dim("batch", min=1), {"min": 8, "max": 8192}
    dims = {"images": {0: batch, 1: torch.export.Dim("height", **side), 2: torch.export.Dim("width", **side)}}
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), _quiet("onnx_ir", "onnxscript"), \
                torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's own progress lines, deprecation and tracing notices
            program = torch.onnx.export(graph, (sample,), dynamo=True, opset_version=OPSET, input_names=[INPUT],
                                        output_names=list(OUTPUTS), dynamic_shapes=dims, verbose=False)
    except Exception as exc:  # torch.export / onnxscript failures have many types
        raise ExportError(f"torch.onnx.export could not export this {head.method} head on {model.name} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Please report "
                          "it with the model name and `pip list`.") from exc
    if program is None:  # pragma: no cover - the dynamo exporter returns its program
        raise ExportError("torch.onnx.export returned no ONNX program. Upgrade torch (>= 2.6).")
    proto = program.model_proto
    _metadata(proto, head, model)
    data = proto.SerializeToString()
    if verify:
        _verify(data, probe, reference)  # type: ignore[arg-type]
    return atomic_write_bytes(path, data)


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Loggers ``names`` at WARNING while the exporter runs (its graph passes log every step at INFO)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _metadata(proto: Any, head: LandmarkHead, model: HyperlandModel) -> None:
    from .. import __version__

    meta = {"hyperland_version": __version__, "method": head.method, "fingerprint": head.fingerprint_,
            "model": model.name, "n_landmarks": str(head.n_landmarks),
            "landmarks": json.dumps(getattr(head, "landmark_names_", None)),
            "input": "images: uint8 (N, H, W, 3) RGB; outputs landmarks (N, K, 2) pixels (x, y), confidence (N, K)"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _probe_images() -> np.ndarray:
    """(2, 150, 150, 3) uint8: two bundled AFLW faces, the export's example input and its verification batch."""
    from PIL import Image

    from ..assets import faces_dir

    paths = sorted(faces_dir().glob("*.jpg"))[:2]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def run_onnx(graph: bytes | str | os.PathLike, images: np.ndarray, *, threads: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks, confidence) of uint8 (N, H, W, 3) ``images`` from an exported graph, in onnxruntime."""
    require_onnx("Running an exported head")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    src = graph if isinstance(graph, bytes) else str(graph)
    session = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    pts, conf = session.run(list(OUTPUTS), {INPUT: np.ascontiguousarray(images, dtype=np.uint8)})
    return pts, conf


def _verify(data: bytes, images: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> None:
    pts, conf = run_onnx(data, images)
    ref_pts, ref_conf = reference
    dp, dc = float(np.abs(pts - ref_pts).max()), float(np.abs(conf - ref_conf).max())
    if not (dp <= MAX_POINT_DIFF and dc <= MAX_CONF_DIFF):
        raise ExportError(f"The exported graph disagrees with head.predict on the bundled faces: points differ by up "
                          f"to {dp:.4f} px (allowed {MAX_POINT_DIFF}), confidences by {dc:.2e} (allowed "
                          f"{MAX_CONF_DIFF}). Nothing was written. Please report it with the model name and "
                          "`pip list`; verify=False writes the graph anyway.")
    logger.info("ONNX graph verified on %d faces: points within %.2e px, confidence within %.1e", len(images), dp, dc)


__all__ = ["EXPORTABLE", "INPUT", "MAX_CONF_DIFF", "MAX_POINT_DIFF", "OPSET", "OUTPUTS", "HeadGraph", "export_onnx",
           "require_onnx", "run_onnx"]
