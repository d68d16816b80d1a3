"""Named datasets for ``hyperland eval``: how to build (labelled pool, test) and how to score it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError, InvalidOptionError
from .base import Sample
from .mtfl import PROTOCOLS as MTFL_PROTOCOLS

Split = tuple[list[Sample], list[Sample]]


@dataclass(frozen=True)
class DatasetSpec:
    """``metric`` is "nme" (normalised by the distance of landmarks ``eyes``) or "pck"."""

    name: str
    protocols: tuple[str, ...]
    metric: str
    eyes: tuple[int, int] | None
    description: str
    build: Callable[[Path, str], Split]


def _mtfl(root: Path, protocol: str) -> Split:
    from .mtfl import mtfl_protocol

    return mtfl_protocol(root, protocol)


def _mafl(root: Path, protocol: str) -> Split:
    from .celeba_mafl import mafl_protocol

    return mafl_protocol(root)


def _aflw_m(root: Path, protocol: str) -> Split:
    from .aflw import aflw_m_protocol

    return aflw_m_protocol(root)


def _w300(root: Path, protocol: str) -> Split:
    from .w300 import afw_protocol, read_w300

    if protocol == "afw":
        return afw_protocol(root)
    return read_w300(root, "train", outside="ignore"), read_w300(root, protocol, outside="ignore")


def _cub(root: Path, protocol: str) -> Split:
    from .cub import cub_protocol

    return cub_protocol(root, train=protocol)


def _generic(root: Path, protocol: str) -> Split:
    from .generic import read_keypoints

    if not root.is_dir():
        raise DatasetError(f"--dataset generic expects --root to be a folder holding train.csv/test.csv (or "
                           f".json), got '{root}'.")
    found = []
    for split in ("train", "test"):
        path = next((root / f"{split}{ext}" for ext in (".csv", ".json") if (root / f"{split}{ext}").is_file()),
                    None)
        if path is None:
            raise DatasetError(f"'{root}' has no {split}.csv or {split}.json.")
        found.append(read_keypoints(path, outside="ignore"))
    return found[0], found[1]


DATASETS: dict[str, DatasetSpec] = {
    "mtfl": DatasetSpec("mtfl", MTFL_PROTOCOLS, "nme", (0, 1),
                        "MTFL release (training.txt / testing.txt)", _mtfl),
    "mafl": DatasetSpec("mafl", ("mafl",), "nme", (0, 1), "CelebA aligned + MAFL lists", _mafl),
    "aflw_m": DatasetSpec("aflw_m", ("aflw_m",), "nme", (0, 1),
                          "cropped AFLW training faces + MTFL AFLW test", _aflw_m),
    "300w": DatasetSpec("300w", ("test", "common", "challenging", "afw"), "nme", (36, 45),
                        "300W .pts files + iBUG boxes (afw: the 337 pre-cut AFW faces, pool 200 / test 137)", _w300),
    "cub": DatasetSpec("cub", ("train_1241", "train_500", "train_250", "train_100", "train_50", "train_10"),
                       "pck", None, "CUB-200-2011 with contrast-landmark split lists", _cub),
    "generic": DatasetSpec("generic", ("default",), "nme", (0, 1),
                           "folder with train.csv/test.csv (or .json) in hyperland's keypoint format", _generic),
}


def dataset_protocol(name: str, root: str | Path, protocol: str | None = None) -> tuple[DatasetSpec, Split]:
    """(spec, (pool, test)) for a named dataset; ``protocol`` defaults to the spec's first."""
    if name not in DATASETS:
        raise InvalidOptionError(f"Unknown dataset '{name}'. Expected one of {tuple(DATASETS)}.")
    spec = DATASETS[name]
    protocol = protocol or spec.protocols[0]
    if protocol not in spec.protocols:
        raise InvalidOptionError(f"Dataset '{name}' has no protocol '{protocol}'. Expected one of {spec.protocols}.")
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"Dataset root '{root}' does not exist. Pass --root pointing at the {name} folder.")
    pool, test = spec.build(root, protocol)
    for what, split in (("labelled pool", pool), ("test", test)):
        if not split:
            raise DatasetError(f"{name}/{protocol}: the {what} split is empty.")
    return spec, (pool, test)


__all__ = ["DATASETS", "DatasetSpec", "dataset_protocol"]
