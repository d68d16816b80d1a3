"""``hyperland extract``: hypercolumns of many images, streamed batch by batch into one .safetensors file.

The file holds one tensor ``features`` (N, C, H, W) and, in the safetensors metadata, the image list (JSON),
the model name and fingerprint, layers, size, normalisation and dtype. Read it with
``safetensors.safe_open(path, "pt")``: ``f.get_slice("features")[i]`` loads one image's map only.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__  # hyperland/__init__ is light: its public API is imported on first use
from .._io import AtomicFile, check_writable
from ..errors import InvalidOptionError, ShapeMismatchError
from ._args import add_model_argument, add_quiet_argument, int_list, progress

_ST_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}  # torch dtype name → safetensors dtype
DTYPES = tuple(_ST_DTYPES)  # --dtype choices (torch is imported only when a command runs)

if TYPE_CHECKING:
    import torch


class SafetensorsStreamWriter:
    """Write one safetensors tensor of known shape piece by piece along its first axis.

    The safetensors library only writes whole in-memory dicts (``save_file``), which would hold every
    hypercolumn at once — gigabytes for a few thousand images. The format is simple enough to stream: an
    8-byte little-endian header length, a JSON header (dtype, shape, byte offsets, string metadata) padded
    with spaces to a multiple of 8, then the raw little-endian C-order bytes. Shape and dtype are known
    before the first batch, so the header is written first and each batch's bytes are appended; memory
    stays at one batch. The file is written under a temporary name and renamed when complete, so an
    interrupted run never leaves a truncated file that looks valid.
    """

    def __init__(self, path: str | os.PathLike, name: str, shape: Sequence[int], dtype: torch.dtype,
                 metadata: dict[str, str] | None = None) -> None:
        import torch

        st_dtype = _ST_DTYPES.get(str(dtype).removeprefix("torch."))
        if st_dtype is None:
            raise InvalidOptionError(f"dtype {dtype} cannot be streamed; use one of {list(_ST_DTYPES)}.")
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.row_bytes = torch.empty((), dtype=dtype).element_size()
        for s in self.shape[1:]:
            self.row_bytes *= s
        self.nbytes = self.row_bytes * self.shape[0]
        self.rows = 0
        header: dict[str, object] = {name: {"dtype": st_dtype, "shape": list(self.shape),
                                            "data_offsets": [0, self.nbytes]}}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        self._out = AtomicFile(self.path)  # the one atomic writer: umask permissions, disk-full errors
        self._out.write(struct.pack("<Q", len(raw)))
        self._out.write(raw)

    def write(self, part: torch.Tensor) -> None:
        if tuple(part.shape[1:]) != self.shape[1:] or part.dtype != self.dtype:
            raise ShapeMismatchError(f"batch {tuple(part.shape)} {part.dtype} does not fit the file's tensor "
                                     f"{self.shape} {self.dtype}: write rows of shape {self.shape[1:]} in that dtype.")
        if self.rows + part.shape[0] > self.shape[0]:
            raise ShapeMismatchError(f"{self.rows} + {part.shape[0]} rows is more than the {self.shape[0]} rows "
                                     "declared for the file.")
        import torch

        data = part.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy()
        if sys.byteorder != "little":  # pragma: no cover - safetensors is little-endian
            data = part.detach().cpu().contiguous().numpy().byteswap().view("u1").reshape(-1)
        self._out.write(memoryview(data))  # type: ignore[arg-type]  # ndarray is a buffer
        self.rows += part.shape[0]

    def close(self) -> Path:
        """Finish the file; it must have received exactly ``shape[0]`` rows."""
        if self.rows != self.shape[0]:
            self.abort()
            raise ShapeMismatchError(f"wrote {self.rows} of {self.shape[0]} rows; file discarded. Write every "
                                     "declared row before close().")
        return self._out.commit()

    def abort(self) -> None:
        self._out.abort()


def _size(text: str) -> tuple[int, int]:
    vals = int_list(text)
    if len(vals) not in (1, 2) or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W or S (positive integers); got '{text}'")
    return (vals[0], vals[-1])


def extract_to_file(model, images: Sequence[str], out: str | os.PathLike, *, layers: Sequence[int] | None = None,
                    size: tuple[int, int] | None = None, normalize: str | None = "l2",
                    dtype: torch.dtype | None = None, batch_size: int = 32,
                    progress: bool | None = None) -> Path:
    """Stream ``model.extract`` of ``images`` into ``out`` (see :class:`SafetensorsStreamWriter`); ``dtype``
    defaults to torch.float32."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    layers = tuple(layers) if layers is not None else model.layers
    writer: SafetensorsStreamWriter | None = None
    try:
        for part in model.iter_extract(list(images), layers=layers, size=size, normalize=normalize,  # type: ignore[arg-type]
                                       dtype=dtype, batch_size=batch_size, progress=progress):
            if writer is None:
                meta = {
                    "format": "hyperland-features/1",
                    "images": json.dumps([str(p) for p in images]),
                    "model": model.name,
                    "fingerprint": model.fingerprint,
                    "layers": json.dumps(list(layers)),
                    "size": json.dumps(list(part.shape[-2:])),
                    "normalize": str(normalize).lower(),
                    "hyperland_version": __version__,
                }
                writer = SafetensorsStreamWriter(out, "features", (len(images), *part.shape[1:]), part.dtype, meta)
            writer.write(part)
        assert writer is not None, "iter_extract yields at least one batch"
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def run(args: argparse.Namespace) -> int:
    import torch

    from ..images import expand_paths
    from ..loading import load

    images = expand_paths(args.images)
    check_writable(args.out, flag="--out")
    model = load(args.model, device=args.device)
    path = extract_to_file(model, images, args.out, layers=args.layers, size=args.size,
                           normalize=None if args.normalize == "none" else args.normalize,
                           dtype=getattr(torch, args.dtype), batch_size=args.batch_size,
                           progress=progress(args))
    c = model.num_channels(args.layers)
    sys.stdout.write(f"wrote {len(images)} hypercolumns ({c} channels, {args.dtype}) from {model.name} to {path}\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="write hypercolumns of images to a .safetensors file (streamed)",
                       description="Hypercolumns of IMAGES (files, folders or glob patterns) streamed into one "
                                   "safetensors file: tensor 'features' (N, C, H, W) plus metadata.")
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files, folders of images or glob patterns "
                   "(quoted: 'faces/*.jpg')")
    add_model_argument(p)
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--layers", type=int_list, default=None, help="feature indices, e.g. 1,2,3,4 (default: model's)")
    p.add_argument("--size", type=_size, default=None, help="output grid H,W or S (default: finest layer's grid)")
    p.add_argument("--normalize", choices=("l2", "none"), default="l2", help="per-layer normalisation (default l2)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="stored precision (default float32)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda:0 (default cpu)")
    add_quiet_argument(p)
    p.set_defaults(func=run)
