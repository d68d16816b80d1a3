"""Arguments that several subcommands share, defined once (no torch import: ``--help`` stays fast)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._defaults import DEFAULT_MODEL
from ..errors import InvalidOptionError
from ..heads import DEFAULT_METHOD, METHODS

FIT_FLAGS = {"n_landmarks": "the data", "method": "--method", "random_state": "--seed", "progress": "-q/--quiet"}
EVAL_FLAGS = {**FIT_FLAGS, "method": "--methods", "random_state": "--seeds", "layers": "--layers",
              "val_fraction": "the protocol"}


def add_model_argument(p: argparse.ArgumentParser, *, from_head: bool = False) -> None:
    """``--model``; default the embedded DEFAULT_MODEL, or (``from_head``) the model named in the head's head.json."""
    if from_head:
        p.add_argument("--model", default=None, help="model name, hf-hub:org/repo, timm:ARCH or directory (default: "
                       "the model recorded in the head's head.json)")
    else:
        p.add_argument("--model", default=DEFAULT_MODEL, help="model name, hf-hub:org/repo, timm:ARCH or directory "
                       f"(default {DEFAULT_MODEL}, embedded in the package)")


def add_device_argument(p: argparse.ArgumentParser) -> None:
    """``--device``: where the network runs (torch device string); heads and baselines run on the CPU."""
    p.add_argument("--device", default=None, help="torch device for the network, e.g. cuda:0 or mps (default cpu)")


def load_head(args: argparse.Namespace) -> Any:
    """The head of ``--head`` with ``--model`` if given, else the model its head.json records, on ``--device``."""
    import hyperland
    from hyperland.heads import LandmarkHead

    device = getattr(args, "device", None)
    model = hyperland.load(args.model, device=device) if args.model else None
    if str(args.head).startswith("hf-hub:"):  # a head shared on the Hub (LandmarkHead.push_to_hub)
        head = LandmarkHead.from_pretrained(args.head, model=model, device=device)
    else:
        head = LandmarkHead.load(args.head, model=model, device=device,
                                 allow_backbone_mismatch=getattr(args, "allow_backbone_mismatch", False))
    head.progress = progress(args)
    return head


def add_head_arguments(p: argparse.ArgumentParser) -> None:
    """``--method``, ``--seed``, ``--options``: every LandmarkHead option, with the library's defaults."""
    p.add_argument("--method", choices=METHODS, default=None,
                   help=f"head method (default {DEFAULT_METHOD}, LandmarkHead's default)")
    p.add_argument("--seed", type=int, default=None, help="random_state of the head (default 0)")
    p.add_argument("--options", default="", help="any other LandmarkHead option as JSON, e.g. "
                   '\'{"readout_grid": 6, "n_augment": 4}\' (all options: python -c "help(hyperland.LandmarkHead)")')


def head_options(args: argparse.Namespace) -> dict[str, Any]:
    """LandmarkHead keyword arguments from the flags and ``--options`` (every constructor option; checked before any
    data is read). A flag and the JSON may both name an option only when they agree."""
    from ..heads.estimator import LandmarkHead

    options = parse_head_options(args.options, flag="--options", own={})
    flags = {"method": args.method, "random_state": args.seed}
    for name, value in flags.items():
        if value is None:
            continue
        if name in options and options[name] != value:
            flag = "--method" if name == "method" else "--seed"
            given = json.dumps({name: options[name]})
            raise InvalidOptionError(f"{flag} {value} and --options '{given}' disagree. Give it once.")
        options[name] = value
    options.setdefault("random_state", 0)  # the CLI is reproducible by default
    LandmarkHead.check_options(options, where="--options")  # e.g. steps= on the ridge head: an error
    if "n_landmarks" in options:
        raise InvalidOptionError("--options sets n_landmarks: the labels decide it. Drop it from the JSON.")
    options["progress"] = progress(args)
    return options


def int_list(text: str) -> tuple[int, ...]:
    """argparse type of comma-separated integers (``--layers 1,2,3``): at least one."""
    try:
        vals = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,3,4; got '{text}'") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return vals


def parse_head_options(text: str | None, *, flag: str, own: Mapping[str, str] = FIT_FLAGS) -> dict[str, Any]:
    """A CLI JSON object of LandmarkHead options (``--options`` / ``--head-options``), checked now. ``own``: the
    options that the command sets itself (name → the flag that sets them), refused in the JSON."""
    from ..heads.methods import check_params

    if not text:
        return {}
    example = f"Example: {flag} '{{\"n_augment\": 4}}'."
    try:
        opts = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOptionError(f"{flag} is not valid JSON ({exc.msg}): {text!r}. {example}") from exc
    if not isinstance(opts, dict):
        raise InvalidOptionError(f"{flag} must be a JSON object, got {type(opts).__name__}: {text!r}. {example}")
    taken = [f"{k} (set by {own[k]})" for k in opts if k in own]
    if taken:
        raise InvalidOptionError(f"{flag} sets {', '.join(taken)}; drop them from the JSON.")
    check_params(opts, where=flag)
    return opts


def check_methods(methods: Sequence[str]) -> None:
    """``hyperland eval --methods`` checked before the dataset is read."""
    if not methods:
        raise InvalidOptionError(f"--methods is empty. Expected a comma-separated list of {list(METHODS)}.")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InvalidOptionError(f"--methods {','.join(methods)}: unknown {bad}. Expected a comma-separated list of "
                                 f"{list(METHODS)}.")


def add_quiet_argument(p: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: progress bars are shown on a terminal unless this is given (never when not a TTY)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")


def progress(args: argparse.Namespace) -> bool | None:
    """The ``progress=`` value for the library: False with --quiet, else None (tqdm's automatic TTY check)."""
    return False if getattr(args, "quiet", False) else None


def landmark_labels(names: Sequence[str] | None, k: int) -> list[str]:
    """Column stems: the head's landmark names, else ``0 .. K-1``."""
    return [str(n) for n in names] if names and len(names) == k else [str(i) for i in range(k)]


__all__ = ["EVAL_FLAGS", "FIT_FLAGS", "add_device_argument", "add_head_arguments", "add_model_argument",
           "add_quiet_argument", "check_methods", "head_options", "int_list", "landmark_labels", "load_head",
           "parse_head_options", "progress"]
