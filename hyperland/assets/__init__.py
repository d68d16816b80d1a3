"""Files shipped inside the package: the embedded default model(s) and the demo faces.

* ``models/NAME/`` — a model directory (config.json, model.safetensors, README.md) that a manifest entry with
  ``"status": "embedded"`` names in its ``embedded`` field. It is the same file as the Hub copy
  (``repo_id``), verified against the same sha256, so either can stand in for the other.
* ``faces/`` — 40 AFLW test crops of the MTFL release with their labels (``train.csv``/``test.csv``), used by
  ``hyperland demo``, the examples and the tests. See ``faces/README.md``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def faces_dir() -> Path:
    """The bundled demo faces (``train.csv``, ``test.csv`` and their images)."""
    return ROOT / "faces"


def embedded_dir(relative: str) -> Path:
    """The package folder that a manifest entry's ``embedded`` field names (relative to this folder)."""
    return ROOT / relative


def repair_advice(path: Path) -> str:
    """How to restore a damaged or missing packaged file: from git in a source checkout (an editable install),
    else by reinstalling the package."""
    for parent in Path(path).absolute().parents:
        if (parent / ".git").exists():  # a git work tree (a worktree's .git is a file)
            rel = Path(path).absolute().relative_to(parent).as_posix()
            return f"restore it from git: `git -C {parent.name} checkout -- {rel}` (an editable install of a checkout)"
    return "reinstall hyperland: `pip install --force-reinstall hyperland`"


__all__ = ["ROOT", "embedded_dir", "faces_dir", "repair_advice"]
