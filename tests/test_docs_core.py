"""The ```python blocks of docs/loading.md and docs/extraction.md run as written (from a scratch folder
; the bundled faces come from hyperland.assets)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ("loading.md", "extraction.md")


def _blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "docs" / name).read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("doc", DOCS)
def test_doc_snippets_run(doc, tmp_path, monkeypatch):
    blocks = _blocks(doc)
    assert blocks, f"docs/{doc} has no runnable blocks"
    monkeypatch.chdir(tmp_path)
    bindir = str(Path(sys.executable).parent)  # so `hyperland` resolves to this environment's script
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    if shutil.which("hyperland") is None:
        pytest.skip("the hyperland console script is not installed in this environment")
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/{doc}[python block {i}]", "exec"), {"__name__": "__doc__"})  # noqa: S102
