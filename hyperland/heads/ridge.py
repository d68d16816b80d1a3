"""The default head: a global ridge readout of the descriptor map, refined per landmark by a cell classifier.

Coarse: ridge regression (scikit-learn RidgeCV's estimator with its leave-one-out choice of alpha per target,
computed block by block in :mod:`.gcv`) from the descriptor map average-pooled to ``readout_grid`` ×
``readout_grid`` and flattened, to the 2K normalised coordinates, each fitted on the images where it is labelled
(missing landmarks are NaN).

Fine: a multinomial logistic regression scores every descriptor cell as landmark k or background
(:mod:`.cells`). A new map's landmark (:mod:`.decoding`) is the soft-argmax, in the 3 × 3 cells around its best cell, of
``log p(k | cell) / tau`` plus a Gaussian log-prior centred on the coarse estimate or on the labelled mean shape
(``prior_centre``: "auto" chooses among both; "shape" never uses the readout; "mixture" mixes a Gaussian around
the readout with a broad one around the mean shape, so that a wrong readout cannot pin the answer down).
A second, fitted-shape pass (:func:`.decoding.fitted_pass`) moves the prior's shape by the similarity transform
that best fits those points and decodes again under a narrow Gaussian around it, so that the landmarks agree on
one pose.
The classifier's ``C``, the prior's centre and width, ``tau``, the second pass and whether to refine at all are
chosen on held-out labelled images (:func:`select`), never on test data; the classifier's probability at the
returned point is the landmark's confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._rowfile import Rows
from ..errors import InvalidOptionError, WeightsMismatchError
from .cells import CellClassifier, fit_cell_classifiers, label_share, point_errors, shape_prior
from .decoding import (
    DEFAULT_CHOICE,
    DEFAULT_SHAPE_CHOICE,
    FIT_STD,
    Choice,
    decoding_prior,
    decoding_template,
    fitted_pass,
    locate_points,
    refine,
)
from .gcv import mean_square_norm, ridge_gcv, ridge_gcv_primal
from .options import AUGMENT, Rule, integer

OPTIONS: dict[str, Rule] = {  # what this method reads besides options.COMMON (LandmarkHead checks them)
    **AUGMENT,
    "readout_grid": (integer(1), "an integer >= 1 (cells)"),
    "refine": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    "prior_centre": (lambda v: v in ("auto", "shape", "mixture"), '"auto", "shape" or "mixture"'),
    "val_blocks": (lambda v: isinstance(v, bool), "true or false (from 50 labelled images on, the validation split is "
                   "one run of the labelled images in the order given: consecutive video frames)"),
}
POOL = 1  # the descriptor grid's default average-pooling: the full grid
CONFIDENCE = True  # locate() returns per-landmark confidences
FORMATS = (3,)  # head formats that hold this method's state (format 2 had linear filters, since replaced)

ALPHAS = tuple(float(a) for a in np.logspace(-4, 2, 13))  # × mean squared row norm of the design matrix
CS = (0.01, 0.1, 1.0)  # the cell classifier's inverse regularisation (on standardised descriptors)
TAUS = (0.5, 1.0, 2.0)  # temperature of the log-probabilities
PRIOR_STDS = (0.05, 0.1, 0.2, 0.4)  # prior width around the coarse estimate, normalised units
SHAPE_FACTORS = (0.5, 1.0, 2.0)  # prior width around the mean shape, × the labelled spread
# prior_centre="shape" (the readout out of the decoding: an object anywhere in the frame): widths up to nearly flat.
# On openfield's pool (4 blocks of 20 frames held out in turn, the framed head's coarse stage), 4x was chosen in
# 9 of 15 fits
SHAPE_ONLY_FACTORS = (1.0, 2.0, 4.0)
# five validation folds below this many labelled images, one 20 % split from it on. 250 (at least 50 images held
# out) fixed the 80-frame openfield test fit (17.8 -> 7.6 px) but was mixed on the pool's validation splits
# (15.5 -> 24.7 and 7.0 -> 6.5 px, aflw-val 6.56 -> 6.54), and worse on openfield's pool CV with 60 frames (4 blocks of
# 20 held out in turn: 6.7 -> 8.4 px, benchmarks/openfield.py --pool-cv), so it stays at 50
SINGLE_SPLIT_FROM = 50
# below this many labelled images (prior_centre="auto") the decoding is not chosen but DEFAULT_CHOICE: five folds of
# one held-out image each cannot tell 70 decodings apart. aflw-val, 10 seeds: 5 shots 8.18 +- 0.42 chosen against
# 7.85 +- 0.29 fixed (better in 7 of 10 seeds), 10 shots 7.06 +- 0.29 against 7.05 +- 0.21
MIN_SELECT = 10
# the held-out score of a decoding: (1 - w) x the held-out originals' mean point error + w x their warped and
# mirrored copies' (where they have any). Scored on originals alone, folds of faces cropped around their own landmarks
# chose the narrowest prior around a readout that had learned where such crops put the face, and a handful of
# held-out images let the choice flip between seeds. aflw-val, 3 seeds, 10 / 20 / 50 / 100 / all (500) shots:
# w = 0: 7.45 +- 0.65 / 6.17 / 5.68 / 5.77 +- 0.34 / 5.29; w = 0.5: 7.02 +- 0.06 / 6.14 / 5.56 / 5.43 +- 0.10 / 5.20;
# w = 0.89 (every held-out row alike at <= 100 images): 7.06 / 6.15 / 5.57 / 5.45 / 5.26
COPY_WEIGHT = 0.5


def readout_inputs(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, D, H, W) → (N, D·grid²) float32: the map average-pooled to grid × grid, flattened (one traceable op:
    the ONNX graph keeps a dynamic batch; :func:`fit` pools a large stack in chunks itself)."""
    return F.adaptive_avg_pool2d(maps.float(), grid).flatten(1)


@dataclass
class Readout:
    """Linear map (coef (2K, F), intercept (2K,)) from pooled descriptors to normalised coordinates."""

    coef: torch.Tensor
    intercept: torch.Tensor
    alpha: list[float | None]

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        out = torch.as_tensor(x).float() @ self.coef.T + self.intercept
        return out.unflatten(-1, (-1, 2))


def fit_readout(x: Rows, targets: torch.Tensor, *, rows: np.ndarray | None = None) -> Readout:
    """RidgeCV on (N, F) inputs and (N, K, 2) normalised targets, each coordinate fitted on the rows where it is
    labelled (NaN: missing).

    Ridge regression with one alpha per target is one independent problem per target column, so fitting a
    column on its labelled rows only is the exact masked fit; columns that share the same labelled rows are
    fitted together (one RidgeCV per pattern of missing labels; with full labels, one fit as before). Imputing
    a missing target (e.g. with its column mean) would instead teach the readout to answer the mean shape for
    those images. A column labelled in one row is that value; one labelled nowhere (possible inside a held-out
    fold) is 0, the frame centre. ``alpha`` holds each column's alpha (None where there was nothing to fit).

    ``rows``: the rows of ``x`` that ``targets`` label, in their order (default all); ``x`` is never copied whole.
    Both forms are RidgeCV's estimator (its leave-one-out choice of alpha per target), computed block by block
    (:mod:`.gcv`): wide problems (no more rows than features) in kernel form (RidgeCV's float64 copies of an
    (8000, 61440) input need 8 GB), tall ones in covariance form (about 1 GB for (8000, 4096))."""
    index = np.arange(len(x)) if rows is None else np.asarray(rows)
    y = targets.reshape(len(targets), -1).double().numpy()
    labelled = np.isfinite(y)
    coef, icpt = np.zeros((y.shape[1], x.shape[1])), np.zeros(y.shape[1])
    alpha: list[float | None] = [None] * y.shape[1]
    patterns: dict[bytes, list[int]] = {}
    for j in range(y.shape[1]):
        patterns.setdefault(labelled[:, j].tobytes(), []).append(j)
    for cols in patterns.values():
        sel, yr = index[labelled[:, cols[0]]], y[labelled[:, cols[0]]][:, cols]
        if len(sel) < 2:  # one labelled row: its value is the estimate; none: the frame centre
            icpt[cols] = yr.mean(0) if len(sel) else 0.0
            continue
        scale = mean_square_norm(x, sel)
        alphas = [a * scale for a in ALPHAS]
        solve = ridge_gcv if len(sel) <= x.shape[1] else ridge_gcv_primal
        coef[cols], icpt[cols], chosen = solve(x, yr, alphas, rows=sel)
        for j, a in zip(cols, chosen):
            alpha[j] = float(a) / scale
    return Readout(torch.from_numpy(coef).float(), torch.from_numpy(icpt).float(),
                   [] if all(a is None for a in alpha) else alpha)


def predict(readout: Readout, classifier: CellClassifier, shape: tuple[torch.Tensor, torch.Tensor], choice: Choice,
            maps: torch.Tensor, *, readout_grid: int, share: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D, H, W) maps → (normalised points (B, K, 2), confidence (B, K)) of a fitted ridge head: torch only
    (``LandmarkHead.predict`` runs it batch by batch, and its ONNX graph runs it as is)."""
    coarse = readout(readout_inputs(maps, readout_grid))
    xy, conf = refine(classifier.log_probs(maps), coarse, shape, (int(maps.shape[-2]), int(maps.shape[-1])), choice,
                      share=share)
    return (xy if choice.refine else coarse), conf


def validation_folds(ids: np.ndarray, *, rng: np.random.Generator, blocks: bool, max_folds: int,
                     single_split_from: int) -> list[np.ndarray]:
    """The held-out groups of each fold: ``min(#ids, max_folds)`` folds drawn at random, or from
    ``single_split_from`` ids on one 20 % split: drawn at random, or with ``blocks`` one contiguous run of the
    sorted ids (the labelled images in the order given, from a random start, wrapping around). Consecutive video
    frames are alike, and a random split of many labelled frames keeps each held-out frame's neighbours in
    training, which flatters a readout of absolute position (openfield's orientation CV, 60 frames: the framed
    head's coarse centre 30.4 -> 17.3 px off). Below ``single_split_from`` every image is held out once either
    way and the labelled frames lie far apart, so the folds stay random (blocks there lost the mouse on one
    5-frame openfield draw: the choice moved with the fold order)."""
    n_held = max(1, round(0.2 * len(ids)))
    if blocks and len(ids) >= single_split_from:
        start = int(rng.integers(len(ids)))
        return [np.sort(ids)[(start + np.arange(n_held)) % len(ids)]]
    perm = rng.permutation(ids)
    if len(ids) >= single_split_from:
        return [perm[:n_held]]
    n_folds = min(len(ids), max_folds)
    return [perm[i::n_folds] for i in range(n_folds)]


def select(maps: torch.Tensor, pooled: np.ndarray, targets: torch.Tensor, groups: np.ndarray, *,
           refine_mode: bool | str, rng: np.random.Generator, prior_centre: str = "auto", max_folds: int = 5,
           single_split_from: int = SINGLE_SPLIT_FROM, min_select: int = MIN_SELECT,
           copy_weight: float | None = None, blocks: bool = False
           ) -> tuple[Choice, CellClassifier | None]:
    """Choose the classifier's ``C`` and the decoding (refine or not, prior centre and width, tau) by the mean
    normalised point error on held-out labelled images.

    Images (``groups``: augmented copies share their original's group and fold) are split into
    ``min(#groups, max_folds)`` folds, or one 20 % split from ``single_split_from`` groups on (drawn at random, or
    with ``blocks`` one run of the groups in order: :func:`validation_folds`); with a single
    labelled image there is nothing to hold out and :data:`DEFAULT_CHOICE` is used, as with fewer than
    ``min_select`` (:data:`MIN_SELECT`) under ``prior_centre="auto"``. ``prior_centre="shape"``
    keeps the readout out of the decoding: only priors around the labelled mean shape (:data:`SHAPE_ONLY_FACTORS`)
    are candidates, always refined (a readout of absolute position from the whole pooled map places an object
    where the labelled frames had it; the cell classifier finds it anywhere); ``"mixture"`` replaces every prior
    around the readout by an even mixture of it and a Gaussian :data:`MIXTURE_FACTOR` × the labelled spread wide
    around the mean shape (the mean-shape-only candidates stay). Below ``single_split_from`` groups every refined
    decoding is a candidate with and without the fitted-shape pass (:data:`.decoding.FIT_STD`). A decoding's score is
    (1 - ``copy_weight``) × the held-out originals' mean error + ``copy_weight`` × that of their augmented copies
    (default :data:`COPY_WEIGHT`; an original is its group's first row), so that a choice must also hold on the shifted,
    turned and mirrored views the head is fitted for, not only on images framed as the labelled ones. Missing
    labels (NaN) are left out of every fit and score: a held-out landmark counts only where it is labelled and
    the other folds label it in at least one image (a fold that could teach it nothing is not scored on it); when
    no fold has anything to score, :data:`DEFAULT_CHOICE` is used.

    Also returns the last fold's classifier at the chosen ``C`` (None when none was fitted): the final fit on
    all images starts from it (:func:`.cells.fit_cell_classifiers` ``init``), as each fold's sweep starts from
    the previous fold's first ``C``; a strictly convex objective, so only the solver's path changes."""
    copy_weight = COPY_WEIGHT if copy_weight is None else copy_weight
    ids = np.unique(groups)
    shape_only = prior_centre == "shape"
    mixture = prior_centre == "mixture"
    default = {"shape": DEFAULT_SHAPE_CHOICE, "mixture": replace(DEFAULT_CHOICE, centre="mixture")}.get(
        prior_centre, DEFAULT_CHOICE)
    if refine_mode is False:
        return replace(DEFAULT_CHOICE, refine=False, fit_std=None), None
    if len(ids) < 2 or (prior_centre == "auto" and len(ids) < min_select):
        return default, None
    folds = validation_folds(ids, rng=rng, blocks=blocks, max_folds=max_folds, single_split_from=single_split_from)
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    around_readout = [] if shape_only else [("mixture" if mixture else "coarse", t, s) for t in TAUS
                                            for s in PRIOR_STDS]
    factors = SHAPE_FACTORS if prior_centre == "auto" else SHAPE_ONLY_FACTORS
    decodings = around_readout + [("shape", t, f) for t in TAUS for f in factors]
    passes = (None, FIT_STD) if len(ids) < single_split_from else (None,)  # see FIT_STD
    options = [Choice(True, c, t, s, cc, None, len(folds), f) for cc in CS for c, t, s in decodings for f in passes]
    if refine_mode == "auto" and prior_centre == "auto":
        options.append(replace(DEFAULT_CHOICE, refine=False, folds=len(folds), fit_std=None))
    errs: dict[Choice, list[torch.Tensor]] = {o: [] for o in options}
    copy_errs: dict[Choice, list[torch.Tensor]] = {o: [] for o in options}
    fitted: dict[float, CellClassifier] = {}  # the latest fold's classifiers by C
    originals = _originals(groups)
    for held in folds:
        val = np.isin(groups, held) & (originals | (copy_weight > 0))
        tr = ~np.isin(groups, held)
        # score a held-out landmark only where it is labelled and the training folds label it somewhere
        taught = torch.isfinite(targets[tr]).all(-1).any(0)  # (K,)
        truth = targets[val].masked_fill(~taught[None, :, None], float("nan"))
        orig = torch.from_numpy(originals[val])
        if not torch.isfinite(truth[orig]).any():
            continue
        coarse = None if shape_only else fit_readout(pooled[tr], targets[tr])(pooled[val])
        shape = shape_prior(targets[tr], grid, groups=groups[tr])
        share = label_share(targets[tr], groups[tr])
        classifiers = fit_cell_classifiers(maps, targets[tr], CS, rng=rng, index=np.flatnonzero(tr),
                                           init=fitted.get(CS[0]))
        fitted = {clf.C: clf for clf in classifiers}
        log_probs = {clf.C: clf.log_probs(maps[val]) for clf in classifiers}
        priors: dict[tuple[str, float], torch.Tensor] = {}  # one per centre and width, shared by every tau and C
        firsts: dict[Choice, torch.Tensor] = {}  # first passes, shared with and without the fitted-shape pass
        for o in options:
            if o.refine or coarse is None:
                prior = priors.get((o.centre, o.prior_std))
                if prior is None:
                    prior = priors[o.centre, o.prior_std] = decoding_prior(coarse, shape, grid, o)
                one = replace(o, fit_std=None)
                first = firsts.get(one)
                if first is None:
                    first = firsts[one] = locate_points(log_probs[o.C], prior, grid, o)
                pred = fitted_pass(log_probs[o.C], first, decoding_template(coarse, shape, o, first), grid, o,
                                   share=share)
            else:
                pred = coarse
            errs[o].append(point_errors(pred[orig], truth[orig]))
            copy_errs[o].append(point_errors(pred[~orig], truth[~orig]))
    if not errs[options[0]]:  # no held-out image labels a landmark its training folds teach: nothing to compare
        return replace(default, folds=len(folds)), fitted.get(default.C)
    mean = {o: float(torch.cat(v).mean()) for o, v in errs.items()}
    if copy_weight > 0 and any(len(e) for e in copy_errs[options[0]]):
        mean = {o: (1 - copy_weight) * m + copy_weight * float(torch.cat(copy_errs[o]).mean())
                for o, m in mean.items()}
    best = min(options, key=lambda o: mean[o])
    return replace(best, val_error=mean[best]), fitted.get(best.C)


def _originals(groups: np.ndarray) -> np.ndarray:
    """True for the first row of each group (the labelled image itself, not an augmented copy)."""
    first = np.zeros(len(groups), dtype=bool)
    _, idx = np.unique(groups, return_index=True)
    first[idx] = True
    return first


@dataclass
class State:
    """A fitted ridge head: readout, cell classifier (its matrix; ``selection["C"]``), shape prior (mean (K, 2),
    spread (K,)) and the choices made on held-out images (``selection``, saved as head.json ``selection``)."""

    readout: Readout
    classifier: torch.Tensor
    prior_mean: torch.Tensor
    prior_std: torch.Tensor
    selection: dict[str, Any]
    readout_grid: int

    def locate(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, H, W) maps → normalised points (B, K, 2) and confidences (B, K): :func:`predict`."""
        choice = Choice.from_dict(self.selection)
        share = self.selection.get("label_share")  # absent from heads saved before it: every landmark alike
        return predict(self.readout, CellClassifier(self.classifier, choice.C), (self.prior_mean, self.prior_std),
                       choice, maps, readout_grid=self.readout_grid,
                       share=None if share is None else torch.tensor(share, dtype=torch.float32))


    def tensors(self) -> dict[str, torch.Tensor]:
        return {"readout.coef": self.readout.coef, "readout.intercept": self.readout.intercept,
                "classifier": self.classifier, "prior.mean": self.prior_mean, "prior.std": self.prior_std}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], cfg: dict[str, Any], *, options: dict[str, Any],
                     where: str) -> State:
        """The state saved by :meth:`tensors` and head.json (``cfg``); WeightsMismatchError if they disagree."""
        k, c = int(options["n_landmarks"]), int(cfg["n_features_in"])
        names = ("readout.coef", "readout.intercept", "classifier", "prior.mean", "prior.std")
        coef, icpt, clf, pmean, pstd = (tensors.get(n) for n in names)
        sel = cfg.get("selection")
        if coef is None or icpt is None or clf is None or pmean is None or pstd is None \
                or not isinstance(sel, dict) or not {"refine", "centre", "tau", "prior_std", "C"} <= set(sel) \
                or tuple(icpt.shape) != (2 * k,) or coef.shape[0] != 2 * k or tuple(clf.shape) != (c + 1, k + 1) \
                or tuple(pmean.shape) != (k, 2) or tuple(pstd.shape) != (k,):
            raise WeightsMismatchError(f"'{where}': the ridge head's readout/classifier/prior/selection do not match "
                                       f"head.json (K={k}, C={c}). Save it again.")
        return cls(Readout(coef, icpt, list(sel.get("ridge_alpha") or [])), clf, pmean, pstd, sel,
                   int(options["readout_grid"]))


def fit(maps: torch.Tensor, targets: torch.Tensor, options: dict[str, Any], *, groups: np.ndarray,
        val: tuple[torch.Tensor, torch.Tensor] | None, rng: np.random.Generator, generator: torch.Generator,
        seed: int) -> State:
    """Fit on (N, D, H, W) maps and (N, K, 2) normalised targets (NaN: missing); ``groups`` (N,) names each map's
    labelled image (augmented copies share it): the folds of :func:`select` keep an image and its copies
    together. The ridge head holds out its own folds, so ``val`` is not read."""
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    # 256 maps at a time: a large float16 stack (8,000 faces: 0.6 GB) is never converted to float32 whole
    pooled = torch.cat([readout_inputs(maps[i:i + 256], options["readout_grid"]) for i in range(0, len(maps), 256)]
                       ).numpy()
    if options["refine"] is False and options["prior_centre"] != "auto":
        raise InvalidOptionError(f"refine=False answers with the readout alone, so prior_centre="
                                 f"'{options['prior_centre']}' (where the "
                                 "refinement's prior sits) has nothing to do. Set refine=True or 'auto', or leave "
                                 "prior_centre='auto'.")
    choice, warm = select(maps, pooled, targets, groups, refine_mode=options["refine"], rng=rng,
                          prior_centre=options["prior_centre"], blocks=bool(options.get("val_blocks", False)))
    readout = fit_readout(pooled, targets)
    classifier = fit_cell_classifiers(maps, targets, [choice.C], rng=rng, init=warm)[0].matrix
    prior_mean, prior_std = shape_prior(targets, grid, groups=groups)
    selection = {**choice.as_dict(), "ridge_alpha": readout.alpha, "n_train_maps": len(maps),
                 "n_labelled": len(np.unique(groups)), "label_share": label_share(targets, groups).tolist()}
    return State(readout, classifier, prior_mean, prior_std, selection, int(options["readout_grid"]))


__all__ = ["CONFIDENCE", "DEFAULT_CHOICE", "DEFAULT_SHAPE_CHOICE", "FORMATS", "OPTIONS", "POOL", "Choice", "Readout",
           "State", "fit", "fit_readout", "predict", "readout_inputs", "refine", "select",
           "validation_folds"]
