"""Arguments that several subcommands share, defined once (no torch import: ``--help`` stays fast)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._defaults import DEFAULT_MODEL
from ..errors import InvalidOptionError


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
    from ..heads.params import DEFAULT_METHOD, METHODS

    p.add_argument("--method", choices=METHODS, default=None,
                   help=f"head method (default {DEFAULT_METHOD}, LandmarkHead's default)")
    p.add_argument("--seed", type=int, default=None, help="random_state of the head (default 0)")
    p.add_argument("--options", default="", help="any other LandmarkHead option as JSON, e.g. "
                   '\'{"readout_grid": 6, "n_augment": 4}\' (all options: python -c "help(hyperland.LandmarkHead)")')


def head_options(args: argparse.Namespace) -> dict[str, Any]:
    """LandmarkHead keyword arguments from the flags and ``--options`` (every constructor option; checked before any
    data is read). A flag and the JSON may both name an option only when they agree."""
    from ..heads.params import check_method_reads, option_defaults, parse_head_options

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
    check_method_reads(options, option_defaults(), where="--options")
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


def add_quiet_argument(p: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: progress bars are shown on a terminal unless this is given (never when not a TTY)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")


def progress(args: argparse.Namespace) -> bool | None:
    """The ``progress=`` value for the library: False with --quiet, else None (tqdm's automatic TTY check)."""
    return False if getattr(args, "quiet", False) else None


__all__ = ["add_device_argument", "add_head_arguments", "add_model_argument", "add_quiet_argument", "head_options",
           "int_list", "load_head", "progress"]
