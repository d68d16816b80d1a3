"""TrainConfig: the one dataclass behind recipes, CLI flags and the run directory's config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from ..config import IMAGENET_MEAN, IMAGENET_STD
from ..errors import TrainConfigError

CONFIG_FILE = "config.json"

# Fields that only steer how a run executes; they may differ when a run is resumed. Every other field
# defines the run, and resuming with a different value is an error.
RUNTIME_FIELDS = frozenset({
    "data", "num_workers", "max_steps", "checkpoint_every", "checkpoint_every_steps", "log_every",
    "probe_every", "probe_images", "device", "compile", "progress", "tensorboard",
})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a MoCo run needs. Recipes (``hyperland/train/recipes/*.json``) set a subset of these fields;
    CLI flags (``--batch-size 128``) override them; the resolved config is saved as ``config.json``."""

    recipe: str | None = None
    # -- data
    data: str | None = None  # folder of images, text file listing images, an MTFL root, or a video file
    data_format: str = "auto"  # auto | folder | list | mtfl | video
    video_frames: int = 1000  # a video --data: this many frames, evenly spaced, decoded once into RUN_DIR/frames
    data_crop: str = "none"  # none | centroid (MTFL only: square around the labelled points, AFLW framing) | celeba
    # (the fixed (0, 30, 178, 208) box of the aligned CelebA images, as the paper and data/celeba_mafl.py cut them)
    val_count: int | None = 0  # held-out images at the end of the list; null: min(500, 10% of them); 0: none
    # -- model
    architecture: str = "resnet18"
    out_indices: tuple[int, ...] = (1, 2, 3, 4)
    feature_dim: int = 128
    hidden_dim: int = 0  # projection MLP hidden width; 0 = the backbone's last channel count (MoCo v2)
    init: str | None = None  # start from this model's weights (a name, hf-hub:..., or model directory): adaptation
    zero_init_last: bool = False  # timm's zero-gamma init of each residual block's last BN (off: ordinary init)
    queue_size: int = 0  # MoCo negatives; 0 = auto: min(4096, 10% of the training images, rounded to the batch)
    key_momentum: float = 0.999
    temperature: float = 0.07
    shuffle_groups: int = 4  # BN groups per process for the shuffle-BN equivalent (see moco.py)
    # -- objective: moco_weight × image-level MoCo InfoNCE + dense_weight × dense equivariant InfoNCE (dense.py)
    moco_weight: float = 1.0  # 0 = no MoCo term (no key encoder pass)
    dense_weight: float = 0.0  # 0 = MoCo alone
    dense_layers: tuple[int, ...] = (1, 2, 3)  # hypercolumn layers the dense projection reads
    dense_dim: int = 64  # output channels of the learned 1x1 projection (exported with the backbone)
    dense_points: int = 128  # query cells per image and direction
    dense_temperature: float = 0.1
    dense_other_images: int = 1  # other images of the batch whose cells are negatives too
    # -- views (face recipe of the paper)
    resize: int = 136
    border: int = 20
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    color_jitter: float = 0.4
    hue: float = 0.0
    pca_lighting: float = 0.1
    jpeg_quality: tuple[int, int] = (30, 95)  # JPEG re-encoding quality ~ U(lo, hi) in the loader workers
    jpeg_p: float = 1.0
    tps: float = 0.0
    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate: float = 0.0  # warp shift ~ U(±translate) of the half-side
    blur_p: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # -- optimisation
    epochs: int = 800
    batch_size: int = 256  # global: split evenly over the processes
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.03
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | constant
    warmup_epochs: float = 0.0
    # -- runtime
    seed: int = 0
    num_workers: int = 4
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 elsewhere) | bf16 | fp32
    channels_last: bool = True
    compile: bool = False
    checkpoint_every: int = 10  # epochs
    checkpoint_every_steps: int = 0  # 0 = off
    log_every: int = 10  # steps
    probe_every: int = 0  # epochs; 0 = off
    probe_images: int = 200
    max_steps: int | None = None  # pause after this many optimiser steps in total (resume continues)
    progress: bool | None = None  # tqdm: None = only on a TTY
    tensorboard: bool = False  # also write scalars to RUN_DIR/tensorboard (pip install "hyperland[train]")

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            val = getattr(self, f.name)
            if isinstance(val, list) and get_origin(hints[f.name]) is tuple:
                object.__setattr__(self, f.name, tuple(val))
        problems = []
        if self.data_format not in ("auto", "folder", "list", "mtfl", "video"):
            problems.append(f"data_format={self.data_format!r} (expected auto, folder, list, mtfl or video)")
        if self.data_crop not in ("none", "centroid", "celeba"):
            problems.append(f"data_crop={self.data_crop!r} (expected none, centroid or celeba)")
        if self.optimizer not in ("sgd", "adamw"):
            problems.append(f"optimizer={self.optimizer!r} (expected sgd or adamw)")
        if self.moco_weight < 0 or self.dense_weight < 0 or self.moco_weight + self.dense_weight <= 0:
            problems.append(f"moco_weight={self.moco_weight}, dense_weight={self.dense_weight} (expected >= 0, "
                            "at least one > 0)")
        if self.dense_weight > 0 and (not self.dense_layers or not set(self.dense_layers) <= set(self.out_indices)):
            problems.append(f"dense_layers={self.dense_layers} (expected a non-empty subset of out_indices "
                            f"{self.out_indices})")
        if self.schedule not in ("cosine", "constant"):
            problems.append(f"schedule={self.schedule!r} (expected cosine or constant)")
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision={self.precision!r} (expected auto, bf16 or fp32)")
        for name in ("video_frames", "epochs", "batch_size", "feature_dim", "shuffle_groups", "log_every", "dense_dim",
                     "dense_points"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (expected >= 1)")
        for name in ("queue_size", "dense_other_images", "num_workers", "val_count", "checkpoint_every",
                     "checkpoint_every_steps", "probe_every", "hidden_dim", "border"):
            if (getattr(self, name) or 0) < 0:
                problems.append(f"{name}={getattr(self, name)} (expected >= 0)")
        if self.resize - 2 * self.border < 8:
            problems.append(f"resize={self.resize}, border={self.border} leave fewer than 8 input pixels")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            problems.append(f"crop_scale={self.crop_scale} (expected 0 < lo <= hi <= 1)")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            problems.append(f"jpeg_quality={self.jpeg_quality} (expected 1 <= lo <= hi <= 100)")
        if self.dense_temperature <= 0 or self.translate < 0:
            problems.append(f"dense_temperature={self.dense_temperature}, translate={self.translate} "
                            "(expected > 0, >= 0)")
        if not 0 < self.key_momentum < 1 or self.temperature <= 0:
            problems.append(f"key_momentum={self.key_momentum}, temperature={self.temperature} "
                            "(expected 0 < momentum < 1, temperature > 0)")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps={self.max_steps} (expected >= 1 or None)")
        if problems:
            raise TrainConfigError("Invalid training config: " + "; ".join(problems) + ".")

    @property
    def input_size(self) -> int:
        return self.resize - 2 * self.border

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "config") -> TrainConfig:
        if not isinstance(raw, dict):
            raise TrainConfigError(f"{source}: expected a JSON object of TrainConfig fields, got {type(raw).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TrainConfigError(f"{source}: unknown fields {unknown}. Known fields: {sorted(known)}.")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise TrainConfigError(f"{source}: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        p = Path(path)
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainConfigError(f"Cannot read training config '{p}' ({exc}).") from exc
        return cls.from_dict(raw, source=str(p))

    def override(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TrainConfigError(f"Unknown config fields {unknown}. Known fields: {sorted(known)}.")
        return replace(self, **changes)

    def differences(self, other: TrainConfig, *, ignore: frozenset[str] = RUNTIME_FIELDS) -> dict[str, tuple[Any, Any]]:
        """Fields (outside ``ignore``) whose values differ: name → (self, other)."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}


def list_recipes() -> list[str]:
    """Names of the recipes shipped in ``hyperland/train/recipes``."""
    folder = resources.files("hyperland.train").joinpath("recipes")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_recipe(name: str) -> TrainConfig:
    """The shipped recipe ``name`` (e.g. ``celeba-r50``) or a JSON file path, as a TrainConfig."""
    if name.endswith(".json") and Path(name).is_file():
        cfg = TrainConfig.from_file(name)
        return cfg if cfg.recipe else cfg.override(recipe=Path(name).stem)
    if name not in list_recipes():
        raise TrainConfigError(f"Unknown recipe '{name}'. Shipped recipes: {', '.join(list_recipes())}; "
                               "or pass a path to a JSON file of TrainConfig fields.")
    text = resources.files("hyperland.train").joinpath("recipes").joinpath(f"{name}.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    raw.setdefault("recipe", name)
    return TrainConfig.from_dict(raw, source=f"recipe '{name}'")


__all__ = ["CONFIG_FILE", "RUNTIME_FIELDS", "TrainConfig", "list_recipes", "load_recipe"]
