"""weights_manifest.json: one validated, frozen entry per model name."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from .errors import ManifestError

Status = Literal["published", "embedded", "unpublished", "builtin"]
_STATUSES = ("published", "embedded", "unpublished", "builtin")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_EMBEDDED = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ManifestEntry:
    """One model name. ``published`` entries pin repo_id + revision (a commit) + filename + sha256.

    ``embedded`` entries ship their model directory inside the package (``embedded``: a folder relative to
    ``hyperland/assets``) and name the Hub copy of the same file (repo_id, optional revision, sha256): the
    embedded copy is used when its sha256 matches, else the Hub copy is downloaded and checked the same way.
    """

    name: str
    status: Status
    architecture: str
    data: str
    license: str
    description: str = ""
    recipe: str | None = None
    paper: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    filename: str = "model.safetensors"
    sha256: str | None = None
    embedded: str | None = None
    seed: int | None = None
    timm_kwargs: dict[str, Any] = field(default_factory=dict)  # builtins: extra timm.create_model options
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def published(self) -> bool:
        """Weights can be had without training: from the Hub, or from the package for embedded entries."""
        return self.status in ("published", "embedded")

    def how_to_get(self) -> str:
        """Instructions for an entry whose weights are not published."""
        arch = self.architecture
        steps = []
        if self.recipe:
            steps.append(
                f"train them: `hyperland-train --recipe {self.recipe} --data /path/to/{self.data.split()[0].lower()}"
                f" --out runs/{self.name}` then `hyperland-train export runs/{self.name} --out models/{self.name}`"
            )
        steps.append(
            f"or convert the authors' checkpoint: `hyperland convert CKPT.pth --arch {arch} --out models/{self.name}`"
        )
        steps.append(f"then `hyperland.load('models/{self.name}')`")
        return "; ".join(steps) + "."


_FIELDS = set(ManifestEntry.__dataclass_fields__)


def _entry(name: str, raw: Any, source: str) -> ManifestEntry:
    where = f"{source}: entry '{name}'"
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} is a {type(raw).__name__}. Expected a JSON object.")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ManifestError(f"{where} has unknown fields {sorted(unknown)}. Allowed: {sorted(_FIELDS)}.")
    data = dict(raw)
    data.setdefault("name", name)
    if data["name"] != name:
        raise ManifestError(f"{where} says name '{data['name']}'. The key and the name must agree.")
    if not _NAME.match(name):
        raise ManifestError(f"{where}: names are lower-case letters, digits, '.', '_' and '-'.")
    for req in ("status", "architecture", "data", "license"):
        if not isinstance(data.get(req), str) or not data[req]:
            raise ManifestError(f"{where} lacks the string field '{req}'.")
    if data["status"] not in _STATUSES:
        raise ManifestError(f"{where} has status '{data['status']}'. Expected one of {_STATUSES}.")
    status = data["status"]
    if status in ("published", "embedded"):
        checks = [("repo_id", _REPO, "org/name"), ("revision", _COMMIT, "a 40-hex commit"),
                  ("sha256", _SHA256, "64 lower-case hex digits")]
        for key, rx, what in checks:
            val = data.get(key)
            if key == "revision" and status == "embedded" and val is None:
                continue  # the sha256 pins the content; the Hub fallback reads the default branch
            if not isinstance(val, str) or not rx.match(val):
                raise ManifestError(f"{where} is {status}, so '{key}' must be {what}. Got {val!r}.")
    embedded = data.get("embedded")
    if (status == "embedded") != (embedded is not None):
        raise ManifestError(f"{where}: 'embedded' (a folder under hyperland/assets) goes with status 'embedded', "
                            "and only with it.")
    if embedded is not None and (not isinstance(embedded, str) or not _EMBEDDED.match(embedded)
                                 or ".." in embedded.split("/")):
        raise ManifestError(f"{where}: 'embedded' must be a relative folder under hyperland/assets such as "
                            f"'models/NAME'. Got {embedded!r}.")
    if data["status"] == "builtin" and not isinstance(data.get("seed"), int):
        raise ManifestError(f"{where} is builtin, so it needs an integer 'seed'.")
    if not isinstance(data.get("timm_kwargs", {}), dict):
        raise ManifestError(f"{where}: 'timm_kwargs' must be an object of timm.create_model options.")
    if not isinstance(data.get("metrics", {}), dict):
        raise ManifestError(f"{where}: 'metrics' must be an object.")
    return ManifestEntry(**data)


def parse_manifest(raw: Any, *, source: str = "weights_manifest.json") -> dict[str, ManifestEntry]:
    """Validate the decoded JSON of a manifest and return its entries by name."""
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ManifestError(f"{source}: expected an object with a 'models' object of entries.")
    if raw.get("format") != 1:
        raise ManifestError(f"{source}: unknown manifest format {raw.get('format')!r}. This hyperland reads format 1.")
    return {name: _entry(name, entry, source) for name, entry in raw["models"].items()}


def load_manifest(path: str | Path | None = None) -> dict[str, ManifestEntry]:
    """Read and validate a manifest: ``path`` or the one shipped inside the package."""
    if path is None:
        text = resources.files("hyperland").joinpath("weights_manifest.json").read_text(encoding="utf-8")
        source = "hyperland/weights_manifest.json"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source} is not valid JSON ({exc}).") from exc
    return parse_manifest(raw, source=source)


__all__ = ["ManifestEntry", "load_manifest", "parse_manifest"]
