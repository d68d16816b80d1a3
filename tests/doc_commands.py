"""The `hyperland ...` / `hyperland-train ...` command lines of the Markdown docs, checked against the real argument
parsers (tests/test_docs_commands.py; tests/test_train_data.py runs the adaptation command's config).

A command is found in a shell-like fenced block (```bash, ```sh, ```console or a bare ```; line continuations
joined, `# comments` dropped, `a && b` split) or in inline code (a backtick span, which may wrap lines).
Synopsis notation is read as the reader would: `[--flag VALUE]` is an optional flag, an upper-case VALUE (N, NAME,
RUN_DIR, ...) after a flag is a placeholder replaced by a valid value, `IMAGES...` a positional.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHELL_FENCES = ("", "bash", "sh", "shell", "console", "text")
PROGS = {"hyperland": "hyperland", "hyperland-train": "hyperland-train", "hyperland.train": "hyperland-train",
         "hyperland.cli": "hyperland"}  # console scripts and `python -m` / `torchrun -m` modules
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
_PLACEHOLDER = re.compile(r"^([A-Z][A-Z0-9_]*(\.[A-Za-z]+)?(\.\.\.)?|\.\.\.)$")
_SEPARATORS = ("&&", "||", ";", "|")


@dataclass(frozen=True)
class DocCommand:
    source: str  # "docs/training.md:76"
    text: str  # the command as written (continuations joined)
    prog: str  # "hyperland" or "hyperland-train"
    argv: tuple[str, ...]
    inline: bool  # from inline code: may be a mention ("`hyperland eval` writes ...") rather than a full command


def _segments(text: str) -> list[list[str]]:
    """Shell words of ``text`` split at &&, ||, ; and |; `# comments` dropped."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: not a command line
        return []
    out: list[list[str]] = [[]]
    for w in words:
        if w in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(w)
    return [s for s in out if s]


def _command(words: list[str]) -> tuple[str, list[str]] | None:
    """(prog, argv) when ``words`` run hyperland (directly, after VAR=value assignments, or via ``-m``)."""
    while words and (words[0] == "$" or re.match(r"^[A-Za-z_]\w*=", words[0])):
        words = words[1:]
    if words and words[0] in ("hyperland", "hyperland-train"):
        return PROGS[words[0]], words[1:]
    if "-m" in words[:-1]:
        module = words[words.index("-m") + 1]
        if module in PROGS:
            return PROGS[module], words[words.index("-m") + 2:]
    return None


def _found(rel: str, line: int, text: str, inline: bool) -> list[DocCommand]:
    cmds = []
    for words in _segments(text):
        hit = _command(words)
        if hit:
            cmds.append(DocCommand(f"{rel}:{line}", text.strip(), hit[0], tuple(hit[1]), inline))
    return cmds


def find_commands(path: Path, *, root: Path = REPO) -> list[DocCommand]:
    """Every hyperland command line of one Markdown file, with its file:line."""
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    cmds: list[DocCommand] = []
    prose = list(lines)  # code blocks blanked, so that inline spans keep their line numbers
    fence: str | None = None
    shell = False
    pending, start = "", 0
    for i, line in enumerate(lines, start=1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence, shell = m.group(1), m.group(2).lower() in SHELL_FENCES
            prose[i - 1] = ""
            continue
        if fence is not None:
            prose[i - 1] = ""
            if line.strip().startswith(fence):
                fence = None
            elif shell:
                start = start if pending else i
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                cmds += _found(rel, start, pending + line, inline=False)
                pending = ""
    offset = 0
    for para in re.split(r"(\n\s*\n)", "\n".join(prose)):
        for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", para):
            line = offset + para.count("\n", 0, m.start()) + 1
            cmds += _found(rel, line, " ".join(m.group(1).split()), inline=True)
        offset += para.count("\n")
    return sorted(cmds, key=lambda c: (c.source.rsplit(":", 1)[0], int(c.source.rsplit(":", 1)[1])))


def doc_files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


# ------------------------------------------------------------------------------------------------ parsers
class _ParseError(Exception):
    pass


def _raising(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` and its subparsers raise _ParseError instead of printing usage and exiting."""
    def error(message: str) -> None:
        raise _ParseError(message)

    parser.error = error  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _raising(sub)
    return parser


def _parser(prog: str, argv: list[str]) -> tuple[argparse.ArgumentParser, list[str], str]:
    """The real parser for ``prog argv`` (hyperland-train dispatches export / plot / recipes by hand)."""
    if prog == "hyperland":
        from hyperland.cli import build_parser

        return build_parser(), argv, prog
    from hyperland.train import cli

    if argv[:1] == ["export"]:
        return cli.export_parser(), argv[1:], f"{prog} export"
    if argv[:1] == ["plot"]:
        return cli.plot_parser(), argv[1:], f"{prog} plot"
    if argv[:1] == ["recipes"]:
        return argparse.ArgumentParser(prog=f"{prog} recipes", add_help=False), argv[1:], f"{prog} recipes"
    return cli.build_parser(cli.peek_recipe(argv)), argv, prog


def _valid_value(action: argparse.Action) -> str | None:
    """A value that ``action`` accepts, to stand in for a placeholder such as N or NAME."""
    candidates = [str(c) for c in action.choices] if action.choices else ["1", "0,1", "x"]
    for c in candidates:
        try:
            if action.type is None or action.type(c) is not None:  # type: ignore[misc, operator]
                return c
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            continue
    return None


def _is_flag(tok: str) -> bool:
    return tok.startswith("-") and len(tok) > 1 and not re.match(r"^-\d", tok)


def _walk(parser: argparse.ArgumentParser, argv: list[str], prog: str) -> tuple[list[str], list[str]]:
    """Synopsis notation resolved ([ ] dropped, placeholders replaced), and every flag that the (sub)parser in
    force does not define."""
    out: list[str] = []
    unknown: list[str] = []
    depth, current = 0, parser
    expect: argparse.Action | None = None
    owed = 0  # values the previous flag still takes (-1: any number)
    for raw in argv:
        tok = raw
        if tok.startswith("[") and tok != "[":
            tok, depth = tok[1:], depth + 1
        if tok.endswith("]") and depth:
            tok, depth = tok[:-1], depth - 1
        if not tok or tok == "...":
            continue
        if expect is not None and owed != 0 and not (owed < 0 and _is_flag(tok)):
            typed = expect.type is not None or expect.choices is not None
            out.append((_valid_value(expect) or tok) if typed and _PLACEHOLDER.match(tok) else tok)
            owed -= 1 if owed > 0 else 0
            continue
        expect = None
        if _is_flag(tok):
            action = current._option_string_actions.get(tok.split("=", 1)[0])
            if action is None:
                unknown.append(f"{tok.split('=', 1)[0]} is not an option of `{prog}`")
            elif "=" not in tok and action.nargs != 0:
                expect = action
                owed = action.nargs if isinstance(action.nargs, int) else (1 if action.nargs in (None, "?") else -1)
        else:
            subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
            if subs and tok in subs[0].choices:
                current, prog = subs[0].choices[tok], f"{prog} {tok}"
            elif subs:
                unknown.append(f"'{tok}' is not a command of `{prog}` (one of {', '.join(subs[0].choices)})")
                break
        out.append(tok)
    return out, unknown


def _prechecks(prog: str, ns: argparse.Namespace) -> None:
    """The commands' own cheap checks of their values (what they check before reading any data)."""
    from hyperland.commands._args import EVAL_FLAGS, check_methods, parse_head_options

    if isinstance(getattr(ns, "options", None), str):
        parse_head_options(ns.options, flag="--options")
    if isinstance(getattr(ns, "head_options", None), str):
        parse_head_options(ns.head_options, flag="--head-options", own=EVAL_FLAGS)
    if isinstance(getattr(ns, "methods", None), str):
        check_methods([m.strip() for m in ns.methods.split(",") if m.strip()])
    names = [n for n in (getattr(ns, "model", None), getattr(ns, "init", None))
             if isinstance(n, str) and not _PLACEHOLDER.match(n)]
    if names:
        from hyperland import list_models

        known = list_models()
        for name in names:  # a bare name (not a folder, hf-hub: or timm:) must be a usable manifest name
            if re.fullmatch(r"[\w.-]+", name) and not Path(name).exists() and known.get(name, "unpublished") == "unpublished":
                raise ValueError(f"model '{name}' is {'unpublished' if name in known else 'not a manifest name'} "
                                 f"(usable: {sorted(n for n, s in known.items() if s != 'unpublished')})")
    if prog == "hyperland-train" and ns.resume is None and ns.config is None:
        from hyperland.train.cli import _configs

        if ns.recipe and ns.recipe.endswith(".json"):
            return  # the reader's own recipe file
        if ns.out is None:
            ns.out = "runs/x"  # a mention such as `hyperland-train --recipe mtfl-r18 --data D` needs no --out
        _configs(ns)  # the recipe name, TrainConfig's values and their combinations


def _relax(parser: argparse.ArgumentParser) -> None:
    """No argument of ``parser`` (or its subparsers) is required: an inline mention names a few flags only."""
    for action in parser._actions:
        action.required = False
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _relax(sub)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    _raising(parser)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        return parser.parse_args(argv)


def check_command(cmd: DocCommand) -> str | None:
    """None when ``cmd`` parses with the real parser and passes the command's own pre-checks, else why not.
    An inline mention may leave required arguments (or the value of its last flag) out; what it gives is checked."""
    from hyperland.errors import HyperlandError

    parser, argv, prog = _parser(cmd.prog, list(cmd.argv))
    argv, unknown = _walk(parser, argv, prog)
    if unknown:
        return "; ".join(unknown)
    if prog == "hyperland-train recipes":
        return f"`{prog}` takes no arguments, got {argv}" if argv else None
    try:
        ns = _parse(parser, argv)
    except SystemExit as exc:  # --help / --version
        return None if exc.code in (0, None) else f"exit {exc.code}"
    except _ParseError as exc:
        msg = str(exc)
        required = msg.startswith("the following arguments are required")
        trailing = msg.endswith(("expected one argument", "expected at least one argument")) and bool(argv) and _is_flag(argv[-1])
        if not (cmd.inline and (required or trailing)):
            return msg
        _relax(parser)
        try:
            ns = _parse(parser, argv[:-1] if trailing else argv)
        except (_ParseError, SystemExit) as again:
            return str(again)
        if ns.__dict__.get("command", "") is None or ns.__dict__.get("viz", "") is None:
            return None  # `hyperland` / `hyperland viz` alone: nothing more to check
    try:
        _prechecks(prog, ns)
    except (HyperlandError, ValueError) as exc:
        return str(exc)
    return None


def describe(cmd: DocCommand, problem: str) -> str:
    return f"{cmd.source}: `{cmd.text}`\n    {problem}"


__all__: list[Any] = ["DocCommand", "check_command", "describe", "doc_files", "find_commands"]
