"""``hyperland eval``: the few-shot benchmark protocol on a named dataset, written as JSON + a markdown table
(mean ± std over seeds per shot count, the mean-shape baseline beside it) + a PNG plot of NME vs shots.

Built on :func:`hyperland.evaluate.run_sweep`, which loads only the images the run uses (the labelled subsets'
union and the test set) once, sends them through the network once for every layer setting, and reuses the
features across shot counts, seeds, head methods and baselines. ``--layers 1``, ``--layers 2``, … or
``--layers-sweep "1;2;3;4;1,2,3,4"`` (one table) reproduce the paper's per-layer vs hypercolumn comparison.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from .._io import atomic_write_bytes, atomic_write_text, check_writable
from ..errors import InvalidOptionError, MissingDependencyError
from ._args import (
    EVAL_FLAGS,
    add_device_argument,
    add_model_argument,
    add_quiet_argument,
    check_methods,
    parse_head_options,
    progress,
)

logger = logging.getLogger(__name__)
Shot = Union[int, str]  # noqa: UP007 (a runtime alias)


def parse_shots(text: str) -> list[Shot]:
    """"1,5,all" → [1, 5, "all"]; positive integers and "all" only."""
    out: list[Shot] = []
    for v in text.split(","):
        v = v.strip().lower()
        if v == "all":
            out.append("all")
            continue
        try:
            n = int(v)
        except ValueError:
            n = 0
        if n < 1:
            raise InvalidOptionError(f"--shots entry '{v}' is not a positive integer or 'all'. "
                                     "Example: --shots 1,5,10,all.")
        out.append(n)
    if not out:
        raise InvalidOptionError("--shots is empty. Example: --shots 1,5,10,all.")
    return out


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise InvalidOptionError(f"--layers '{text}': expected comma-separated feature indices, e.g. 1,2,3,4."
                                 ) from exc


def check_shots(shots: Sequence[Shot], pool_size: int) -> None:
    """More shots requested than the labelled pool holds is an error, not a silent clip."""
    too_many = [s for s in shots if s != "all" and int(s) > pool_size]
    if too_many:
        raise InvalidOptionError(f"--shots asks for {too_many} labelled images but the labelled pool holds "
                                 f"{pool_size}. Request at most {pool_size} (or 'all').")


def _fmt(mean: Any, std: Any, digits: int = 2) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _baseline(run: dict[str, Any], shots: Shot) -> float | None:
    b = run.get("mean_shape_nme")
    if isinstance(b, dict):
        b = b.get(str(shots), b.get(shots))  # type: ignore[call-overload]
    if isinstance(b, list):
        b = next((r.get("mean") for r in b if str(r.get("shots")) == str(shots)), None)
    return None if b is None else float(b)


def _models(runs: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r.get("model", "")) for r in runs))


def _layers(run: dict[str, Any]) -> str:
    return ",".join(map(str, run.get("layers") or [])) or "default"


def _rows(run: dict[str, Any], by_model: bool) -> list[tuple[str, str]]:
    """(row label cells, method) for each method of a run."""
    prefix = f"{run.get('model', '')} | " if by_model else ""
    methods = list(dict.fromkeys(r["method"] for r in run["summary"]))
    return [(f"{prefix}{m} | {_layers(run)}", m) for m in methods]


def relative_markdown(runs: Sequence[dict[str, Any]]) -> str:
    """For runs of several models: each model's NME change against the first model's run with the same method
    and layers, per shot count (negative = lower error)."""
    models = _models(runs)
    if len(models) < 2:
        return ""
    ref = models[0]
    means = {(str(run.get("model", "")), _layers(run), r["method"], str(r["shots"])): r["mean"]
             for run in runs for r in run["summary"]}
    shots = list(dict.fromkeys(str(r["shots"]) for run in runs for r in run["summary"]))
    lines = [f"Change of the mean against {ref} (same method and layers); negative = lower error.", "",
             "| model | method | layers | " + " | ".join(shots) + " |", "|---|---|---|" + "---|" * len(shots)]
    for run in runs:
        model = str(run.get("model", ""))
        if model == ref:
            continue
        for label, m in _rows(run, True):
            cells = []
            for s in shots:
                a, b = means.get((model, _layers(run), m, s)), means.get((ref, _layers(run), m, s))
                ok = a is not None and b and not (math.isnan(a) or math.isnan(b))
                cells.append(f"{100.0 * (a / b - 1.0):+.1f} %" if ok else "–")  # type: ignore[operator]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(runs: Sequence[dict[str, Any]], *, title: str) -> str:
    """One table: a row per (layers, method) plus the mean-shape row, a column per shot count."""
    metric = runs[0].get("metric", "nme")
    shots: list[Shot] = []
    for run in runs:
        for row in run["summary"]:
            if row["shots"] not in shots:
                shots.append(row["shots"])
    pool = runs[0].get("n_pool")
    head = [f"all ({pool})" if s == "all" and pool else str(s) for s in shots]
    unit = "NME (%), lower is better" if metric == "nme" else "PCK (%), higher is better"
    by_model = len(_models(runs)) > 1
    first = "| model | method | layers | " if by_model else "| method | layers | "
    one_seed = all(r.get("n") == 1 for run in runs for r in run["summary"])  # no spread to show
    lines = [f"### {title}", "", f"{unit}; " + ("one seed." if one_seed else "mean ± std over seeds."), "",
             first + " | ".join(head) + " |", "|---|---|" + "---|" * (len(shots) + by_model)]
    for run in runs:
        for label, m in _rows(run, by_model):
            cells = {str(r["shots"]): _fmt(r["mean"], None if r.get("n") == 1 else r.get("std"))
                     for r in run["summary"] if r["method"] == m}
            lines.append(f"| {label} | " + " | ".join(cells.get(str(s), "–") for s in shots) + " |")
    has_rows = any(r["method"] == "mean shape" for r in runs[0]["summary"])
    if metric == "nme" and not has_rows and any(_baseline(runs[0], s) is not None for s in shots):
        base = [_fmt(_baseline(runs[0], s), None) for s in shots]
        lines.append("| mean shape | – | " + "– | " * by_model + " | ".join(base) + " |")
        lines += ["", "Mean shape: the labelled pool's average shape placed in every test frame (no image used)."]
    if has_rows:
        lines += ["", ("Baselines fitted on the same labelled images and seeds: mean shape (their average shape in "
                       "every test frame), HOG → ridge (scikit-image HOG of the network input, 8 px cells → RidgeCV), "
                       "ridge probe (the raw hypercolumn pooled to 8×8 → RidgeCV) and pixel classifier (the default "
                       "head's descriptors, per-cell logistic regression landmark vs background + a Gaussian shape "
                       "prior, argmax then 3×3 soft-argmax).")]
    conf = confidence_markdown(runs)
    if conf:
        lines += ["", conf.rstrip("\n")]
    return "\n".join(lines) + "\n"


def confidence_markdown(runs: Sequence[dict[str, Any]]) -> str:
    """Per (method, shots): Spearman of confidence vs error and the NME of the most confident half of the points."""
    rows = [(run, r) for run in runs for r in run.get("confidence") or []]
    if not rows:
        return ""
    by_model = len(_models(runs)) > 1
    lines = ["Confidence per landmark on the test set: Spearman correlation with the point error (negative: "
             "confident points err less) and NME of the most confident half of the points vs the other half.", "",
             ("| model " if by_model else "") + "| method | shots | Spearman | NME confident half | NME other half |",
             "|---|---|---|---|---|" + ("---|" if by_model else "")]
    for run, r in rows:
        lines.append((f"| {run.get('model')} " if by_model else "") + f"| {r['method']} | {r['shots']} | "
                     f"{r['spearman']:.2f} | {r['nme_confident_half']:.2f} | {r['nme_other_half']:.2f} |")
    return "\n".join(lines) + "\n"


def _plot(runs: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path | None:
    try:
        from ..viz import plot_shots
    except ImportError:  # pragma: no cover - viz itself has no hard matplotlib import
        return None
    rows = []
    by_model = len(_models(runs)) > 1
    for run in runs:
        label = f"{run.get('model')}: " if by_model else ""
        for r in run["summary"]:
            rows.append({**r, "label": label + (f"{r['method']} (layers {_layers(run)})" if len(runs) > 1
                                                else r["method"]), "n_pool": run.get("n_pool")})
    baseline = _baseline(runs[0], "all")
    if baseline is None:
        baseline = next((_baseline(runs[0], r["shots"]) for r in rows if _baseline(runs[0], r["shots"])), None)
    try:
        fig = plot_shots(rows, baseline=baseline if runs[0].get("metric", "nme") == "nme" else None,
                         metric=runs[0].get("metric", "nme"), title=title)
    except MissingDependencyError as exc:
        logger.warning("No plot: %s", exc)
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _json_options(text: str | None) -> dict[str, Any]:
    return parse_head_options(text, flag="--head-options", own=EVAL_FLAGS)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the protocol for every layer setting (one load, one network pass); return the JSON document."""
    import hyperland
    from hyperland.data import dataset_protocol
    from hyperland.evaluate import run_sweep

    shots = parse_shots(args.shots)
    sweep = ([parse_layers(t) for t in args.layers_sweep.split(";")] if args.layers_sweep
             else [parse_layers(args.layers)])
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    from hyperland.heads.baselines import BASELINES

    baselines = tuple(BASELINES) if args.baselines else ()
    if args.seeds < 1:
        raise InvalidOptionError(f"--seeds {args.seeds}: expected at least 1.")
    for flag, value in (("--limit-pool", args.limit_pool), ("--limit-test", args.limit_test)):
        if value is not None and value < 1:
            raise InvalidOptionError(f"{flag} {value}: expected a positive number of samples (leave it out for "
                                     "all).")
    head_options = _json_options(args.head_options)
    check_methods(methods)
    spec, (pool, test) = dataset_protocol(args.dataset, args.root, args.protocol)
    if args.limit_pool:
        pool = pool[:args.limit_pool]
    if args.limit_test:
        test = test[:args.limit_test]
    check_shots(shots, len(pool))
    model = hyperland.load(args.model, device=args.device)
    for layers in sweep:
        model.num_channels(layers)  # an InvalidLayerError now, before any image is read
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"shots": tuple(shots), "seeds": args.seeds, "methods": methods, "baselines": baselines,
                              "metric": spec.metric, "progress": progress(args)}
    if spec.eyes is not None:
        kwargs["eyes"] = spec.eyes
    if head_options:
        kwargs["head_options"] = head_options
    runs = run_sweep(model, pool, test, sweep=sweep, **kwargs)
    for run, layers in zip(runs, sweep):
        run.setdefault("layers", list(layers) if layers else list(model.layers))
        run.setdefault("metric", spec.metric)
        run.setdefault("n_pool", len(pool))
        run.setdefault("n_test", len(test))
    return {
        "dataset": spec.name, "protocol": args.protocol or spec.protocols[0], "root": str(args.root),
        "model": args.model, "fingerprint": model.fingerprint, "metric": spec.metric,
        "command": "hyperland " + " ".join(sys.argv[1:]) if sys.argv and "eval" in sys.argv else None,
        "wall_seconds": time.perf_counter() - t0, "hyperland": hyperland.__version__,
        "platform": platform.platform(), "runs": runs,
    }


def compare(paths: Sequence[str]) -> dict[str, Any]:
    """Several ``hyperland eval`` JSON documents of one dataset/protocol → one document with every run,
    each labelled by its model."""
    docs = []
    for p in paths:
        try:
            docs.append(json.loads(Path(p).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidOptionError(f"--compare: cannot read '{p}' as a `hyperland eval` JSON document ({exc})."
                                     ) from exc
        if not isinstance(docs[-1], dict) or "runs" not in docs[-1]:
            raise InvalidOptionError(f"--compare: '{p}' has no 'runs'; it was not written by `hyperland eval`.")
    keys = {(d.get("dataset"), d.get("protocol"), d.get("metric")) for d in docs}
    if len(keys) > 1:
        raise InvalidOptionError(f"--compare: the documents are of different datasets/protocols/metrics "
                                 f"{sorted(keys)}; compare runs of one protocol only.")
    dataset, protocol, metric = keys.pop()
    runs = [{**r, "model": d.get("model"), "fingerprint": d.get("fingerprint")} for d in docs for r in d["runs"]]
    return {"dataset": dataset, "protocol": protocol, "metric": metric, "compare": [str(p) for p in paths],
            "models": _models(runs), "runs": runs}


def run(args: argparse.Namespace) -> int:
    out = check_writable(args.out, flag="--out", folder=True)  # now, not after minutes of extraction
    if args.compare:
        doc = compare(args.compare)
        title = args.title or f"{doc['dataset']} / {doc['protocol']} · {' vs '.join(doc['models'])}"
        default_name = f"{doc['dataset']}-{doc['protocol']}-compare"
    else:
        if not (args.dataset and args.root):
            raise InvalidOptionError("`hyperland eval` needs --dataset and --root (or --compare A.json B.json ... "
                                     "to tabulate earlier runs).")
        doc = evaluate(args)
        title = args.title or f"{doc['dataset']} / {doc['protocol']} · {args.model} ({doc['fingerprint']})"
        default_name = f"{doc['dataset']}-{doc['protocol']}-{Path(str(args.model)).name.replace(':', '_')}"
    name = args.name or default_name
    table = markdown(doc["runs"], title=title)
    rel = relative_markdown(doc["runs"])
    if rel:
        table += "\n" + rel
    sys.stdout.write(table)  # before any file: a write that fails still leaves the table on the terminal
    sys.stdout.flush()
    atomic_write_text(out / f"{name}.json", json.dumps(doc, indent=2, default=str) + "\n")
    atomic_write_text(out / f"{name}.md", table)
    png = _plot(doc["runs"], out / f"{name}.png", title=title)
    took = f" ({doc['wall_seconds']:.0f} s)" if "wall_seconds" in doc else ""
    sys.stdout.write(f"\nwrote {out / (name + '.json')}, {out / (name + '.md')}" + (f", {png}" if png else "") +
                     took + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from hyperland.data import DATASETS

    p = sub.add_parser("eval", help="few-shot benchmark: shots x seeds x methods → JSON, markdown table, PNG plot")
    add_model_argument(p)
    add_device_argument(p)
    add_quiet_argument(p)
    p.add_argument("--dataset", choices=sorted(DATASETS), help="dataset layout (required unless --compare)")
    p.add_argument("--root", help="dataset folder (required unless --compare)")
    p.add_argument("--compare", nargs="+", metavar="RUN.json", help="no evaluation: tabulate and plot earlier "
                   "`hyperland eval` JSON documents of one protocol together (one row per model), with each "
                   "model's change against the first")
    p.add_argument("--title", default=None, help="table and plot title")
    p.add_argument("--protocol", default=None,
                   help="split protocol (mtfl: mtfl-aflw | aflw | lfwnet | aflw-val | lfwnet-val; 300w: test | "
                        "common | challenging | afw; cub: train_1241 ... train_10; default: the dataset's first)")
    p.add_argument("--shots", default="1,5,10,20,50,100,all", help="labelled pool sizes (default 1,5,10,20,50,100,all)")
    p.add_argument("--seeds", type=int, default=3, help="random draws per shot count (default 3)")
    p.add_argument("--methods", default="ridge", help="head methods: ridge (the default head), regressor, prototype; "
                   "comma-separated (default ridge)")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the baselines (mean shape, HOG → ridge, hypercolumn ridge probe, pixel classifier + "
                   "shape prior) printed beside the heads")
    p.add_argument("--layers", default=None, help="feature layers, e.g. 4 or 1,2,3,4 (default: the model's)")
    p.add_argument("--layers-sweep", default=None, metavar="L1;L2;...",
                   help='several layer settings in one table, e.g. "1;2;3;4;1,2,3,4"')
    p.add_argument("--head-options", default=None, metavar="JSON",
                   help='extra LandmarkHead options as JSON, e.g. \'{"n_augment": 4}\'')
    p.add_argument("--limit-pool", type=int, default=None, help="use only the first N pool samples (smoke tests)")
    p.add_argument("--limit-test", type=int, default=None, help="score only the first N test samples (smoke tests)")
    p.add_argument("--out", default="results", help="output folder (default results/)")
    p.add_argument("--name", default=None, help="file stem of the outputs (default DATASET-PROTOCOL-MODEL)")
    p.set_defaults(func=run)
