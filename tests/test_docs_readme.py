"""README.md's Python quick start runs as written (a fresh process in a scratch folder, one torch thread, the
bundled faces), and no relative Markdown link of README.md or docs/ leaves the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICK_START = "## Quick start (Python)"
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target "title"), images too
_FENCE = re.compile(r"^\s*```")


def quick_start_code(readme: str) -> str:
    """The ```python blocks of README.md's quick-start section (up to the next ``## `` heading), joined."""
    start = readme.index(QUICK_START) + len(QUICK_START)
    end = readme.find("\n## ", start)
    section = readme[start:end if end >= 0 else None]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))


def test_readme_quick_start_runs_and_keeps_landmark_names(tmp_path: Path) -> None:
    code = quick_start_code((REPO / "README.md").read_text(encoding="utf-8"))
    assert "read_keypoints" in code and ".fit(" in code and ".score(" in code, "the quick start lost its fit"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    check = "\nprint(tuple(feats.shape), tuple(desc.shape), tuple(pred.shape))\n"  # the shapes its comments state
    script = "import torch\ntorch.set_num_threads(1)\n" + code + check  # the shared CI machine: one thread
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
                         timeout=300)
    assert res.returncode == 0, f"README quick start failed:\n{res.stderr[-3000:]}"
    out = res.stdout.splitlines()
    nme = float(re.fullmatch(r"NME (\d+\.\d) %", out[0]).group(1))  # type: ignore[union-attr]
    assert 3.0 < nme < 15.0, out  # the embedded model on 20 AFLW faces (the mean shape scores about 25 %)
    names = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]  # train.csv's header
    assert out[1] == f"{names} (1, 5, 2)"
    assert out[-1] == "(2, 960, 48, 48) (2, 5, 960) (20, 5, 2)"
    assert json.loads((tmp_path / "face5.hyperland" / "head.json").read_text())["landmarks"] == names


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every relative link outside code blocks and inline code (no scheme, no #anchor-only)."""
    found, in_code = [], False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        for m in _LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = m.group(1)
            if not re.match(r"^[a-zA-Z][\w+.-]*:|^#", target):  # http:, mailto:, ... and same-page anchors
                found.append((lineno, target))
        found += [(lineno, t) for t in re.findall(r"`(\.\./[^`\s]*\.md)`", line)]  # `../notes.md` named as code
    return found


def test_relative_links_resolve_inside_the_repository() -> None:
    bad = []
    for md in markdown_files():
        for lineno, target in relative_links(md.read_text(encoding="utf-8")):
            path = (md.parent / target.split("#")[0]).resolve()
            where = f"{md.relative_to(REPO)}:{lineno}: ({target})"
            if not path.is_relative_to(REPO):
                bad.append(f"{where} leaves the repository")
            elif not path.exists():
                bad.append(f"{where} does not exist")
    assert not bad, "broken relative links:\n" + "\n".join(bad)


def test_link_check_catches_outside_and_missing_targets() -> None:
    text = ("see [design](../shared/DESIGN.md) and ![plot](docs/x.png \"t\")\n```\n[not](a link)\n```\n"
            "[web](https://x.org), [here](#top), `../notes.md`, `../shared/data`")
    assert relative_links(text) == [(1, "../shared/DESIGN.md"), (1, "docs/x.png"), (5, "../notes.md")]
