"""``hyperland-train --help`` text for every TrainConfig field, from the dataclass itself: a field's trailing
``# comment`` in train/config.py, or its line in :data:`EXTRA` (fields whose comment is missing or only a
unit). A test fails when a new field has neither."""

from __future__ import annotations

import inspect
import io
import re
import tokenize
from dataclasses import fields

from .config import TrainConfig

EXTRA = {
    "recipe": "recipe name or a recipe JSON file; its values are the defaults of every other flag",
    "architecture": "timm architecture of the backbone, e.g. resnet18, resnet50",
    "out_indices": "timm feature indices the backbone builds (ResNet 1..4 = layer1..layer4)",
    "feature_dim": "output dimension of the MoCo projection head",
    "key_momentum": "momentum of the key encoder's moving average (MoCo's m)",
    "temperature": "softmax temperature of the MoCo InfoNCE loss",
    "resize": "views are resized to RESIZE x RESIZE before the border crop",
    "border": "pixels cropped from every side after the resize (network input = resize - 2 * border)",
    "crop_scale": "random-resized-crop area range (fraction of the image)",
    "crop_ratio": "random-resized-crop aspect-ratio range",
    "color_jitter": "brightness / contrast / saturation jitter strength",
    "hue": "hue jitter strength",
    "pca_lighting": "AlexNet-style PCA lighting noise strength",
    "jpeg_p": "probability of the JPEG re-encoding of a view",
    "init": "start from this model's weights (manifest name, hf-hub:org/name or model directory): adaptation",
    "tps": "thin-plate-spline warp strength (control-point shift, fraction of the side)",
    "rotation": "warp rotation ~ U(+-rotation) degrees",
    "scale": "warp scale ~ U(low, high)",
    "blur_p": "probability of a Gaussian blur of a view",
    "mean": "per-channel input mean (RGB, [0, 1] pixels)",
    "std": "per-channel input standard deviation",
    "epochs": "passes over the training images",
    "lr": "peak learning rate (for the global batch)",
    "sgd_momentum": "SGD momentum",
    "weight_decay": "weight decay",
    "warmup_epochs": "linear learning-rate warm-up length in epochs",
    "seed": "seed of every random draw (weights, data order, views)",
    "num_workers": "data-loader worker processes per training process",
    "channels_last": "channels-last memory format (faster convolutions on GPUs)",
    "compile": "torch.compile the encoders",
    "probe_images": "images the landmark probe fits and scores",
    "dense_temperature": "softmax temperature of the dense InfoNCE term",
    "checkpoint_every": "write RUN_DIR/last.pt every N epochs (and always at the end)",
    "checkpoint_every_steps": "also write last.pt every N optimiser steps; 0 = off",
    "log_every": "write a metrics.jsonl line every N optimiser steps",
    "probe_every": "run the landmark probe every N epochs; 0 = off",
}
_FIELD = re.compile(r"^\s*(\w+)\s*:")


def _comments() -> dict[str, str]:
    """Trailing comments of the field lines of TrainConfig's source."""
    out: dict[str, str] = {}
    source = inspect.getsource(TrainConfig)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            m = _FIELD.match(tok.line)
            if m and tok.line.strip()[0] != "#":
                out.setdefault(m.group(1), tok.string.lstrip("#").strip())
    return out


def field_help() -> dict[str, str]:
    """Field name → help text (an empty string only for an undocumented field: see the tests)."""
    comments = _comments()
    return {f.name: EXTRA.get(f.name) or comments.get(f.name, "") for f in fields(TrainConfig)}


__all__ = ["EXTRA", "field_help"]
