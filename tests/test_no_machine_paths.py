"""No committed file names a machine: data, lock files and virtualenvs are named relative to the repository or
by environment variables (issue 12, item 8)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Absolute home / work / mount folders of one machine (spelled in pieces so that this file does not match).
MACHINE = re.compile(r"(?<![\w.~])/(?:" + "|".join(["wo" + "rk", "ho" + "me", "Us" + "ers", "scr" + "atch"])
                     + r")/[\w.-]+")


def _committed() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        return [REPO / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):  # an unpacked sdist: no git
        return [p for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts]


def test_the_pattern_finds_machine_paths():
    assert MACHINE.search("flock /" + "work/bench.lock python") and MACHINE.search('"data": "mtfl:/ho' + 'me/me/mtfl"')
    assert not MACHINE.search("../shared/data/mtfl") and not MACHINE.search("https://example.org/home/x")


def test_no_committed_file_names_a_machine_path():
    hits = []
    for p in _committed():
        if p.suffix in {".safetensors", ".png", ".jpg", ".pt"} or not p.is_file():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{p.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in MACHINE.finditer(text)]
    assert hits == []
