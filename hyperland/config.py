"""ModelConfig: the config.json of a model directory (architecture, feature indices, preprocessing, provenance)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ManifestError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PROJECTION_PREFIX = "hyperland_projection."  # key prefix of the learned descriptor projection in model.safetensors
PCA_PREFIX = "hyperland_pca."  # key prefix of the model's descriptor PCA (mean, components) in model.safetensors
CONFIG_FORMAT = 1


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a backbone and preprocess images for it.

    Preprocessing follows the paper: resize the whole image to ``resize`` × ``resize`` pixels, then crop
    ``border`` pixels from every side, so the network sees ``resize - 2 * border`` pixels (136 → 96).
    ``out_indices`` are the timm feature indices the backbone builds; ``layers`` the default subset that
    ``extract()`` stacks.
    """

    architecture: str
    out_indices: tuple[int, ...] = (1, 2, 3, 4)
    layers: tuple[int, ...] | None = None
    resize: int = 136
    border: int = 20
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    timm_kwargs: dict[str, Any] = field(default_factory=dict)
    projection_layers: tuple[int, ...] | None = None  # layers a learned 1x1 descriptor projection reads, if any
    pca_layers: tuple[int, ...] | None = None  # layers the model's descriptor PCA reads, if it has one
    name: str | None = None
    recipe: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None  # of model.safetensors, recorded by save_pretrained, verified by load

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_indices", tuple(int(i) for i in self.out_indices))
        layers = self.out_indices if self.layers is None else tuple(int(i) for i in self.layers)
        object.__setattr__(self, "layers", layers)
        for name in ("projection_layers", "pca_layers"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(int(i) for i in getattr(self, name)))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        problems = []
        if not self.architecture:
            problems.append("'architecture' is empty")
        if not self.out_indices:
            problems.append("'out_indices' is empty")
        for name in ("projection_layers", "pca_layers"):
            if getattr(self, name) is not None and not set(getattr(self, name)) <= set(self.out_indices):
                problems.append(f"'{name}' {getattr(self, name)} are not all in 'out_indices'")
        if not set(layers) <= set(self.out_indices):
            problems.append(f"'layers' {layers} are not all in 'out_indices' {self.out_indices}")
        if self.resize < 8 or self.border < 0 or self.resize - 2 * self.border < 8:
            problems.append(f"resize={self.resize}, border={self.border} leave fewer than 8 input pixels")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            problems.append("'mean' and 'std' need 3 values each, std > 0")
        sha = self.weights_sha256
        if sha is not None and not (isinstance(sha, str) and len(sha) == 64
                                    and all(c in "0123456789abcdef" for c in sha)):
            problems.append(f"'weights_sha256' {sha!r} is not 64 lower-case hex digits")
        if problems:
            raise ManifestError("Invalid model config: " + "; ".join(problems) + ".")

    @property
    def input_size(self) -> int:
        """Side of the square the backbone sees."""
        return self.resize - 2 * self.border

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = CONFIG_FORMAT
        for k in ("out_indices", "layers", "mean", "std"):
            d[k] = list(d[k])
        if d["weights_sha256"] is None:
            del d["weights_sha256"]  # folders written without a checksum stay as they were
        for name in ("projection_layers", "pca_layers"):
            if d[name] is None:
                del d[name]  # configs without a projection (or a PCA) stay as they were
            else:
                d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = CONFIG_NAME) -> ModelConfig:
        if not isinstance(raw, dict):
            raise ManifestError(f"{source}: expected a JSON object, got {type(raw).__name__}.")
        raw = dict(raw)
        fmt = raw.pop("format", CONFIG_FORMAT)
        if fmt != CONFIG_FORMAT:
            raise ManifestError(f"{source}: config format {fmt!r}; this hyperland reads format {CONFIG_FORMAT}.")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ManifestError(f"{source}: unknown keys {sorted(unknown)}. Known: {sorted(known)}.")
        if "architecture" not in raw:
            raise ManifestError(f"{source}: missing 'architecture' (a timm model name such as 'resnet50').")
        try:
            return cls(**raw)
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{source}: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        p = Path(path)
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{p} is not valid JSON ({exc}).") from exc
        return cls.from_dict(raw, source=str(p))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


__all__ = ["CONFIG_NAME", "IMAGENET_MEAN", "IMAGENET_STD", "PCA_PREFIX", "PROJECTION_PREFIX", "WEIGHTS_NAME",
           "ModelConfig"]
