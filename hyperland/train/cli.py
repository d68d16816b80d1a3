"""``hyperland-train`` (also ``python -m hyperland.train`` / ``torchrun -m hyperland.train``).

    hyperland-train --recipe mtfl-r18 --data ../shared/data/mtfl --out runs/mtfl-r18 [--batch-size 128 ...]
    hyperland-train --resume runs/mtfl-r18 [--num-workers 8 --max-steps N ...]
    hyperland-train export runs/mtfl-r18 --out models/mtfl-r18 [--push-to-hub org/name]
    hyperland-train plot runs/mtfl-r18 [--out curves.png]
    hyperland-train recipes

Every TrainConfig field is a flag (``--field-name``); flags override the recipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import types
from collections.abc import Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from .. import __version__
from ..errors import HyperlandError, TrainConfigError
from .config import RUNTIME_FIELDS, TrainConfig, list_recipes, load_recipe

PROG = "hyperland-train"


def _flag_kwargs(tp: Any) -> dict[str, Any]:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _flag_kwargs(inner[0])
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is tuple:
        elem = args[0]
        n = "+" if (len(args) == 2 and args[1] is Ellipsis) else len(args)
        return {"type": elem, "nargs": n, "metavar": elem.__name__.upper()}
    return {"type": tp, "metavar": tp.__name__.upper()}


def _recipe_values(recipe: str | None) -> dict[str, Any] | None:
    """The field values of ``--recipe`` (for --help), or None when none is given or it does not load."""
    if not recipe:
        return None
    try:
        return load_recipe(recipe).to_dict()
    except HyperlandError:
        return None


def peek_recipe(argv: Sequence[str]) -> str | None:
    """``--recipe`` from ``argv`` before the full parser exists (so that --help can show its values)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe")
    return pre.parse_known_args(list(argv))[0].recipe


def build_parser(recipe: str | None = None) -> argparse.ArgumentParser:
    """The training parser; every TrainConfig field is a flag, documented from the dataclass (field_help), with
    its default and, when ``recipe`` is given, the recipe's value."""
    from .field_help import field_help

    p = argparse.ArgumentParser(prog=PROG, description="Train a hyperland backbone with MoCo (one process, one GPU, "
                                "or many processes under torchrun). Subcommands: export, plot, recipes.",
                                epilog="Every TrainConfig field is a flag; see docs/training.md.")
    p.add_argument("--version", action="version", version=f"hyperland {__version__}")
    p.add_argument("--out", help="run directory to create (checkpoints, config.json, metrics.jsonl)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    p.add_argument("--config", metavar="JSON", help="a JSON file of TrainConfig fields (instead of --recipe)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    hints = get_type_hints(TrainConfig)
    docs, values = field_help(), _recipe_values(recipe)
    title = f"TrainConfig fields (override recipe {recipe})" if values else "TrainConfig fields (override the recipe)"
    group = p.add_argument_group(title)
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        if f.name == "recipe":
            helptext = f"{docs['recipe']}: " + ", ".join(list_recipes())
        else:
            shown = f"recipe {recipe}: {values[f.name]!r}; " if values else ""
            helptext = f"{docs[f.name]} ({shown}default {default!r}" + \
                (", may change on --resume)" if f.name in RUNTIME_FIELDS else ")")
        helptext = helptext.replace("%", "%%")
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, help=helptext,
                           **_flag_kwargs(hints[f.name]))
    return p


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} export", description="Run directory → model directory for "
                                "hyperland.load(), its sha256 and the weights_manifest.json entry.")
    p.add_argument("run", help="run directory (holds last.pt)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--name", help="model name (default: the run folder name)")
    p.add_argument("--license", default="other", help="licence for the card and manifest entry")
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload the model directory with huggingface_hub")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--allow-unfinished", action="store_true", help="export a run that has not finished")
    from ..hub import SAVE_DTYPES
    from .pca import PCA_IMAGES

    p.add_argument("--dtype", default="float32", choices=sorted(SAVE_DTYPES),
                   help="precision of the stored weights (default float32; float16 halves the file)")
    p.add_argument("--card-extra", metavar="FILE.md", help="markdown appended to the model card (README.md)")
    p.add_argument("--pca-images", type=int, default=PCA_IMAGES, metavar="N",
                   help="fit the model's descriptor PCA (what heads read by default) on N of the run's training "
                        "images (default 512; 0: none)")
    p.add_argument("--data", help="where the run's training data is now (default: the path it was trained from)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _export(argv: Sequence[str]) -> int:
    from .export import export_run

    parser = export_parser()
    args = parser.parse_args(argv)
    if args.pca_images < 0:
        parser.error(f"--pca-images {args.pca_images}: expected 0 (no descriptor PCA) or a positive image count.")
    _logging(args.verbose)
    res = export_run(args.run, args.out, name=args.name, license=args.license, push_to_hub=args.push_to_hub,
                     private=args.private, allow_unfinished=args.allow_unfinished, dtype=args.dtype,
                     card_extra=Path(args.card_extra).read_text(encoding="utf-8") if args.card_extra else "",
                     pca_images=args.pca_images, data=args.data)
    out = sys.stdout
    out.write(f"wrote {res.directory}\nsha256 model.safetensors: {res.sha256}\n")
    if res.commit_url:
        out.write(f"pushed: {res.commit_url}\n")
    out.write("weights_manifest.json entry (paste under \"models\"; fill repo_id/revision if not pushed):\n")
    out.write(json.dumps(res.manifest_entry, indent=2) + "\n")
    return 0


def plot_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} plot", description="Plot a run's metrics.jsonl: training losses and "
                                "accuracies per step, probe curves (landmark NME, held-out retrieval, dense "
                                "matching) per epoch. Needs matplotlib (pip install \"hyperland[viz]\").")
    p.add_argument("run", help="run directory (holds metrics.jsonl)")
    p.add_argument("--out", metavar="PNG", help="image to write (default RUN/metrics.png)")
    return p


def _plot(argv: Sequence[str]) -> int:
    from .plot import save_plot

    args = plot_parser().parse_args(argv)
    _logging(False)
    sys.stdout.write(f"wrote {save_plot(args.run, args.out)}\n")
    return 0


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


def _configs(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    from .trainer import resume_config

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if f.name != "recipe" and getattr(args, f.name) is not None}
    if args.recipe and args.config:
        raise TrainConfigError("Pass --recipe or --config, not both.")
    base: TrainConfig | None = None
    if args.recipe:
        base = load_recipe(args.recipe)
    elif args.config:
        base = TrainConfig.from_file(args.config)
    if args.resume:
        run = Path(args.resume)
        if args.out and Path(args.out).resolve() != run.resolve():
            raise TrainConfigError(f"--out {args.out} and --resume {args.resume} differ; --resume continues in "
                                   "place: drop --out.")
        runtime = {"max_steps": None, **{k: v for k, v in given.items() if k in RUNTIME_FIELDS}}  # one-shot
        defining = {k: v for k, v in given.items() if k not in RUNTIME_FIELDS}
        requested = base.override(**given) if base is not None else None
        if requested is None and defining:
            requested = resume_config(run).override(**defining)
        return resume_config(run, requested, **runtime), run, True
    if not args.out:
        raise TrainConfigError("--out RUN_DIR is required for a new run (or pass --resume RUN_DIR).")
    return (base or TrainConfig()).override(**given), Path(args.out), False


def _train(argv: Sequence[str]) -> int:
    from . import dist
    from .trainer import RunFinishedError, start

    args = build_parser(peek_recipe(argv)).parse_args(argv)
    info = dist.init_from_env()
    _logging(args.verbose and info.is_main)
    try:
        config, run_dir, resume = _configs(args)
        try:
            trainer = start(config, run_dir, resume=resume)
        except RunFinishedError as exc:
            if info.is_main:
                sys.stdout.write(f"{exc}\n")
            return 0
        if info.is_main:
            sys.stdout.write(f"run {run_dir}: {trainer.split.description}; {trainer.steps_per_epoch} steps/epoch x "
                             f"{config.epochs} epochs on {info.world_size} process(es), {trainer.device}"
                             f"{', bf16' if trainer.amp else ''}; starting at step {trainer.state.step}\n")
        state = trainer.fit()
        stopped_by = trainer.stopped_by
        if stopped_by is not None:  # SIGTERM / SIGINT: a checkpoint was written after the current step
            if info.is_main:
                sys.stdout.write(f"stopped by {signal.Signals(stopped_by).name} at epoch {state.epoch}, step "
                                 f"{state.step}; checkpoint {run_dir / 'last.pt'}; continue with "
                                 f"`{PROG} --resume {run_dir}`\n")
            del trainer
            dist.barrier()
            return 128 + stopped_by
        if info.is_main:
            what = "finished" if state.finished else "paused"
            sys.stdout.write(f"{what} at epoch {state.epoch}, step {state.step}; {state.images_skipped} unreadable "
                             f"image reads skipped; checkpoint {run_dir / 'last.pt'}\n")
        # Leave together and drop DDP before the group goes: a rank that destroys the gloo group while its
        # peer still saves, or with a live DDP reducer, can abort at exit ("terminate called ...").
        del trainer
        dist.barrier()
        return 0
    finally:
        dist.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["export"]:
            return _export(argv[1:])
        if argv[:1] == ["plot"]:
            return _plot(argv[1:])
        if argv[:1] == ["recipes"]:
            for name in list_recipes():
                c = load_recipe(name)
                sys.stdout.write(f"{name:<14} {c.architecture:<9} {c.epochs} epochs, batch {c.batch_size}, "
                                 f"{c.resize}/{c.border} → {c.input_size} px, data {c.data_format}\n")
            return 0
        rc = _train(argv)
    except HyperlandError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        rc = 2
    except KeyboardInterrupt:  # outside the training loop (which checkpoints and returns on one signal), or a second
        sys.stderr.write(f"{PROG}: interrupted (Ctrl-C); files being written were discarded and the last "
                         "checkpoint, if any, is intact.\n")
        rc = 130
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, everything is written and the process group is gone: leave without running C++
        # static destructors, which now and then abort a gloo rank at interpreter exit ("terminate called
        # without an active exception", seen about once in ten 2-process runs).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


__all__ = ["build_parser", "main"]
