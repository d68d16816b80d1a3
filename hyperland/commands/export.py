"""``hyperland export``: a saved head and its model as one ONNX graph, images in, landmarks and confidences out.

The graph takes uint8 (N, H, W, 3) RGB images (any N, H, W; one size per batch) and returns ``landmarks`` (N, K, 2)
in their pixels and ``confidence`` (N, K); see docs/deploy.md. Needs ``pip install "hyperland[onnx]"``.
"""

from __future__ import annotations

import argparse
import json
import sys

from .._io import check_writable
from ._args import add_model_argument, add_quiet_argument, load_head


def run(args: argparse.Namespace) -> int:
    from ..heads.onnx_export import require_onnx

    require_onnx("`hyperland export`")  # before any model is loaded
    check_writable(args.onnx, flag="--onnx")
    head = load_head(args)  # on the CPU: the graph is device-free
    path = head.to_onnx(args.onnx, verify=not args.no_verify)
    info = {"onnx": str(path), "bytes": path.stat().st_size, "model": head.model_.name, "method": head.method,
            "landmarks": head.n_landmarks, "verified": not args.no_verify,
            "input": "images uint8 (N, H, W, 3) RGB", "outputs": ["landmarks (N, K, 2) pixels", "confidence (N, K)"]}
    sys.stdout.write(json.dumps(info) + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a saved head and its model as one ONNX graph (images -> landmarks)")
    p.add_argument("--head", required=True, help="folder written by `hyperland fit` / LandmarkHead.save")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    add_model_argument(p, from_head=True)
    p.add_argument("--allow-backbone-mismatch", action="store_true")
    add_quiet_argument(p)
    p.add_argument("--no-verify", action="store_true",
                   help="skip the check that onnxruntime reproduces the head's predictions on two bundled faces")
    p.set_defaults(func=run)
