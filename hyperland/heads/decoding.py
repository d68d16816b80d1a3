"""Decoding a landmark from the cell classifier's score maps: the Gaussian prior (around the readout's estimate,
the labelled mean shape, or a mixture of both), the window soft-argmax of the posterior, the fitted-shape pass and
the confidence at the returned point; :class:`Choice` records one decoding (chosen by :func:`.ridge.select`, saved
in head.json ``selection``). Torch only: the ridge head's ``predict`` and its ONNX graph run these as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..geometry import fit_similarity, gaussian_log_prior, window_soft_argmax
from ..hypercolumn import grid_centers

MIXTURE_FACTOR = 4.0  # prior_centre="mixture": the broad component's width, × the labelled spread
DEFAULT_TAU, DEFAULT_PRIOR_STD, DEFAULT_C = 2.0, 0.3, 0.01  # one labelled image: nothing to validate on (these
# were chosen on a validation split of the aflw pool: 1-shot fits on its first 500 faces, scored on the other 500)
WINDOW = 3  # cells of the soft-argmax around the posterior's best cell
# the fitted-shape pass (Choice.fit_std): after the first decoding, the prior's template (the readout's points, or the
# mean shape) is moved by the similarity transform that best fits the first points (weighted by their confidence),
# and the landmarks are decoded again under a Gaussian FIT_STD wide around it, at temperature FIT_TAU: one shape
# for the whole face, so that one landmark lost to a look-alike is pulled back by the others. aflw-val, 10 seeds
# (benchmarks/fitted_pass.py): 1 shot 11.92 +- 3.26 -> 10.75 +- 1.50 (better in 9 seeds, equal in 1; the worst
# seed 20.60 -> 13.16), 5 shots 7.54 -> 7.38; on top of the one-pass choice of the code before, 10 shots 6.67 ->
# 6.52 and 50 shots 5.40 -> 5.39 (a diagnostic). Widths 0.15 / 0.2 / 0.25 and tau 0.5 / 1: 0.15 and 1 best at
# every count; a third pass gained nothing (diagnostic). select() offers
# every decoding with and without it below SINGLE_SPLIT_FROM labelled images, where five folds hold every image out
# once (aflw-val, 3 seeds: 10 shots 6.70 -> 6.55, 20 shots 5.89 -> 5.84); the single 20 % split above chose it
# where it did not hold (100 / all shots 5.22 / 5.00 -> 5.28 / 5.07), so from there on it is not a candidate
FIT_STD, FIT_TAU = 0.15, 1.0


@dataclass(frozen=True)
class Choice:
    refine: bool
    centre: str  # "coarse": the prior sits on the readout's estimate; "shape": on the labelled mean shape
    tau: float
    prior_std: float  # normalised units ("coarse") or a factor of the labelled spread ("shape")
    C: float  # the cell classifier's inverse regularisation
    val_error: float | None  # mean normalised point error of the choice on held-out images (None: defaults)
    folds: int
    fit_std: float | None = None  # the fitted-shape pass's prior width (normalised; None: one pass)
    fit_tau: float = FIT_TAU  # and its temperature

    def as_dict(self) -> dict[str, Any]:
        return {"refine": self.refine, "centre": self.centre, "tau": self.tau, "prior_std": self.prior_std,
                "C": self.C, "val_error": self.val_error, "folds": self.folds, "fit_std": self.fit_std,
                "fit_tau": self.fit_tau}

    @classmethod
    def from_dict(cls, sel: dict[str, Any]) -> Choice:
        """The decoding recorded in ``head.selection_`` / head.json (its extra keys are ignored)."""
        fit_std = sel.get("fit_std")  # absent from heads saved before the fitted-shape pass: one pass, as then
        return cls(bool(sel["refine"]), str(sel["centre"]), float(sel["tau"]), float(sel["prior_std"]),
                   float(sel["C"]), sel.get("val_error"), int(sel.get("folds", 0)),
                   None if fit_std is None else float(fit_std), float(sel.get("fit_tau", FIT_TAU)))


DEFAULT_CHOICE = Choice(True, "coarse", DEFAULT_TAU, DEFAULT_PRIOR_STD, DEFAULT_C, None, 0, FIT_STD)
# prior_centre="shape" with one labelled image: its own points, the one-image spread (cells.PRIOR_STD_ONE_IMAGE)
DEFAULT_SHAPE_CHOICE = replace(DEFAULT_CHOICE, centre="shape", prior_std=1.0)


def decoding_prior(coarse: torch.Tensor | None, shape: tuple[torch.Tensor, torch.Tensor], grid: tuple[int, int],
                   choice: Choice) -> torch.Tensor:
    """The Gaussian log-prior (B or 1, K, H*W) of :func:`refine` for ``choice`` (its centre and width only)."""
    if choice.centre in ("coarse", "mixture"):
        if coarse is None:
            raise ValueError("refine: a prior centred on the readout needs its estimate (coarse=None)")
        prior = gaussian_log_prior(coarse, choice.prior_std, grid)
        if choice.centre == "mixture":  # an even mixture with a broad Gaussian around the mean shape (normalised)
            broad = MIXTURE_FACTOR * shape[1]
            wide = gaussian_log_prior(shape[0], broad, grid) - 2 * torch.log(broad).unsqueeze(-1)
            prior = torch.logsumexp(torch.stack([prior - 2 * math.log(choice.prior_std), wide.expand_as(prior)]), 0)
        return prior
    return gaussian_log_prior(shape[0], choice.prior_std * shape[1], grid)


def refine(log_probs: torch.Tensor, coarse: torch.Tensor | None, shape: tuple[torch.Tensor, torch.Tensor],
           grid: tuple[int, int], choice: Choice, *, share: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior soft-argmax of ``log_probs / tau`` + a Gaussian log-prior: (points (B, K, 2), confidence (B, K)).

    The prior is centred on the ``coarse`` readout (width ``prior_std``) or on the labelled mean shape (width
    ``prior_std`` × its per-landmark spread), or (``"mixture"``) is an even mixture of the readout's Gaussian and
    one :data:`MIXTURE_FACTOR` × the spread wide around the mean shape. The confidence is the classifier's
    probability of the landmark at the best cell within one cell of the returned point: near 1 where it sees its
    landmark, near 0 where it does not (even when the prior pins the point down)."""
    first = locate_points(log_probs, decoding_prior(coarse, shape, grid, choice), grid, choice)
    xy = fitted_pass(log_probs, first, decoding_template(coarse, shape, choice, first), grid, choice, share=share)
    return xy, point_confidence(log_probs, xy, grid)


def point_confidence(log_probs: torch.Tensor, xy: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, K) the classifier's probability of each landmark at the best cell within one cell of its point xy."""
    cells = grid_centers(grid, device=log_probs.device)
    step = 2.0 / torch.tensor([grid[1], grid[0]], dtype=cells.dtype, device=cells.device)
    near = ((cells - xy.unsqueeze(-2)).abs() / step <= 1.0).all(-1)  # (B, K, HW)
    return log_probs.masked_fill(~near, float("-inf")).amax(-1).exp().clamp(0.0, 1.0)


def locate_points(log_probs: torch.Tensor, prior: torch.Tensor, grid: tuple[int, int], choice: Choice
                  ) -> torch.Tensor:
    """The first pass of :func:`refine` (no confidence): the window soft-argmax of the posterior."""
    return window_soft_argmax(log_probs / choice.tau + prior, grid, window=WINDOW)[0]


def decoding_template(coarse: torch.Tensor | None, shape: tuple[torch.Tensor, torch.Tensor], choice: Choice,
                      first: torch.Tensor) -> torch.Tensor:
    """The shape that the fitted-shape pass moves onto the first points: the readout's estimate where the prior
    sits on it, else the labelled mean shape (B, K, 2)."""
    if choice.centre in ("coarse", "mixture") and coarse is not None:
        return coarse
    return shape[0].expand_as(first)


def fitted_pass(log_probs: torch.Tensor, first: torch.Tensor, template: torch.Tensor, grid: tuple[int, int],
                choice: Choice, *, share: torch.Tensor | None = None) -> torch.Tensor:
    """The points after the fitted-shape pass (:data:`FIT_STD`): ``template`` moved by the similarity that best
    fits the ``first`` points (weighted by their confidence × ``share`` (K,), each landmark's labelled images over
    the best-labelled one's: a part labelled in 1 of 10 frames steers the pose a tenth as much; default 1), then the
    window soft-argmax of ``log_probs / fit_tau`` under a Gaussian ``fit_std`` wide around it. ``first`` unchanged
    where ``choice.fit_std`` is None."""
    if choice.fit_std is None:
        return first
    weight = point_confidence(log_probs, first, grid)
    if share is not None:
        weight = weight * share.to(weight)
    centre = fit_similarity(template, first, weight)
    prior = gaussian_log_prior(centre, choice.fit_std, grid)
    return window_soft_argmax(log_probs / choice.fit_tau + prior, grid, window=WINDOW)[0]


__all__ = ["DEFAULT_CHOICE", "DEFAULT_SHAPE_CHOICE", "FIT_STD", "FIT_TAU", "MIXTURE_FACTOR", "WINDOW", "Choice",
           "decoding_prior", "decoding_template", "fitted_pass", "locate_points", "point_confidence", "refine"]
