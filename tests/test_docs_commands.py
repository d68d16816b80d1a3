"""Every `hyperland ...` / `hyperland-train ...` command line of README.md and docs/*.md parses with the real
argument parsers and passes the commands' own cheap checks (options JSON, --methods, recipe and model names);
a bad one is reported with its file and line (helpers in tests/doc_commands.py)."""

from __future__ import annotations

from pathlib import Path

from doc_commands import check_command, describe, doc_files, find_commands


def test_every_documented_command_parses() -> None:
    commands = [c for f in doc_files() for c in find_commands(f)]
    found = {(c.source, c.argv) for c in commands}
    assert ("README.md:23", ("demo", "--out", "demo_out")) in found  # after `pip install -e . &&`
    assert len({c.source.split(":")[0] for c in commands}) >= 8 and len(commands) >= 60
    bad = [describe(c, problem) for c in commands if (problem := check_command(c))]
    assert not bad, "documented commands that do not run as written:\n" + "\n".join(bad)


SAMPLE = """# Title
Run `hyperland eval` for tables, or `hyperland-train --recipe mtfl-r18
--data ../shared/data/mtfl --out runs/a`.

```bash
hyperland extract a.jpg \\
    --out f.safetensors   # streams to disk
pip install -e . && hyperland demo --out d
```

```python
print("hyperland fit --train x")  # not a shell block
```

```
HF_HUB_OFFLINE=1 torchrun --nproc_per_node 2 -m hyperland.train --resume runs/a
```
"""


def test_finder_reads_blocks_inline_spans_continuations_and_comments(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text(SAMPLE)
    got = [(c.source.split(":")[1], c.prog, c.argv, c.inline) for c in find_commands(md, root=tmp_path)]
    assert got == [
        ("2", "hyperland", ("eval",), True),
        ("2", "hyperland-train", ("--recipe", "mtfl-r18", "--data", "../shared/data/mtfl", "--out", "runs/a"), True),
        ("6", "hyperland", ("extract", "a.jpg", "--out", "f.safetensors"), False),
        ("8", "hyperland", ("demo", "--out", "d"), False),
        ("16", "hyperland-train", ("--resume", "runs/a"), False),
    ]
    assert all(check_command(c) is None for c in find_commands(md, root=tmp_path))


BAD = """```bash
hyperland fitt --train a.csv
hyperland fit --train a.csv --out h --bogus 1
hyperland extract a.jpg --out f --dtype float8
hyperland fit --train a.csv --out h --options '{"steps": 0}'
hyperland eval --dataset mtfl --root r --methods ridge,bogus
hyperland-train --recipe nope --data d --out o
hyperland-train --recipe mtfl-r18-dense --init mtfl-r18 --data d --out o
hyperland-train --recipe mtfl-r18 --data d --data-format zip --out o
hyperland predict img.jpg
```
An inline mention may leave required flags out, but not misspell one: `hyperland eval --bogus`, nor use an
unknown model: `hyperland extract --model face-r18`.
"""


def test_bad_commands_are_reported_with_file_and_line(tmp_path: Path) -> None:
    md = tmp_path / "bad.md"
    md.write_text(BAD)
    problems = {c.source: check_command(c) for c in find_commands(md, root=tmp_path)}
    expected = {
        "bad.md:2": "'fitt' is not a command of `hyperland` (one of models, extract, fit,",
        "bad.md:3": "--bogus is not an option of `hyperland fit`",
        "bad.md:4": "argument --dtype: invalid choice: 'float8'",
        "bad.md:5": "--options: steps=0. Expected null or an integer >= 1",
        "bad.md:6": "--methods ridge,bogus: unknown ['bogus']",
        "bad.md:7": "Unknown recipe 'nope'",
        "bad.md:8": "model 'mtfl-r18' is unpublished",
        "bad.md:9": "data_format='zip'",
        "bad.md:10": "the following arguments are required: --head",
        "bad.md:12": "--bogus is not an option of `hyperland eval`",
        "bad.md:13": "model 'face-r18' is not a manifest name",
    }
    assert sorted(problems) == sorted(expected)
    for source, words in expected.items():
        assert words in (problems[source] or ""), (source, problems[source])
