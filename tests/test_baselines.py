"""The baselines as estimators: the pixel classifier on hand-made descriptor maps with known answers, the mean
shape, and their identifiers and table names."""

from __future__ import annotations

import torch

from hyperland.heads.baselines import BASELINES, MeanShape, PixelClassifier
from hyperland.heads.cells import PRIOR_STD_ONE_IMAGE, landmark_cells
from hyperland.hypercolumn import grid_centers

GRID = (8, 8)


def _maps(points: torch.Tensor, *, seed: int, marked: tuple[int, ...]) -> torch.Tensor:
    """(N, 6, 8, 8) noise maps where channel j + 1 is 4 at landmark j's cell, for j in ``marked``."""
    g = torch.Generator().manual_seed(seed)
    n, k, _ = points.shape
    maps = 0.3 * torch.randn(n, k + 1, *GRID, generator=g)
    cells = grid_centers(GRID)
    for i in range(n):
        for j in marked:
            c = int(((cells - points[i, j]) ** 2).sum(-1).argmin())
            maps[i, j + 1].view(-1)[c] += 4.0
    return maps


def _points(n: int, seed: int) -> torch.Tensor:
    """Every landmark on a random cell centre, but landmark 4 within one cell of (0.125, 0.125)."""
    g = torch.Generator().manual_seed(seed)
    cells = grid_centers(GRID)
    pts = cells[torch.randint(0, 64, (n, 5), generator=g)]
    pts[:, 4] = 0.125 + 0.25 * torch.randint(-1, 2, (n, 2), generator=g)
    return pts


def test_landmark_cells_mark_the_nearest_cell_skip_missing_and_keep_neighbours():
    nan = float("nan")
    t = torch.tensor([[[-0.875, -0.875], [0.70, 0.90], [nan, nan], [0.60, 0.85]],  # 2 and 4 share a cell
                      [[nan, nan], [-0.80, -0.90], [0.0, 0.0], [nan, nan]]])
    cells, classes = landmark_cells(t, GRID)
    # top-left cell centre (-0.875, -0.875); x 0.70 / 0.60 → column 6 (centre 0.625), y 0.90 / 0.85 → row 7;
    # (0, 0) is a corner of four cells: the first (row 3, column 3) wins; the missing landmarks label nothing
    assert cells.tolist() == [0, 7 * 8 + 6, 7 * 8 + 6, 64 + 0, 64 + 3 * 8 + 3]
    assert classes.tolist() == [1, 2, 4, 2, 3]


def test_pixel_classifier_finds_marked_cells_and_falls_back_on_the_prior():
    train, test = _points(40, 0), _points(20, 1)
    marked = (0, 1, 2, 3)  # landmark 4 has no signal in the maps
    clf = PixelClassifier(random_state=0).fit(_maps(train, seed=0, marked=marked), train)
    assert clf.classifier_.C in (0.01, 0.1, 1.0)
    pred = clf.predict(_maps(test, seed=1, marked=marked))
    err = (pred - test).norm(dim=-1)  # normalised units; one cell is 0.25
    assert float(err[:, :4].max()) < 0.1
    # the unmarked landmark follows the shape prior: within its spread (about one cell) of the labelled mean
    assert float(clf.prior_std_[4]) < 0.3 < float(clf.prior_std_[:4].min())
    assert float((pred[:, 4] - train[:, 4].mean(0)).norm(dim=-1).max()) < 0.5


def test_one_image_uses_the_default_prior_spread():
    train = _points(1, 2)
    clf = PixelClassifier().fit(_maps(train, seed=2, marked=(0, 1, 2, 3, 4)), train)
    assert clf.classifier_.C == 1.0
    assert torch.allclose(clf.prior_std_, torch.full((5,), PRIOR_STD_ONE_IMAGE))
    assert torch.equal(clf.prior_mean_, train[0])


def test_mean_shape_is_the_nan_aware_mean_for_every_row():
    t = torch.tensor([[[0.0, 1.0], [float("nan"), float("nan")]], [[2.0, 3.0], [0.5, -0.5]]])
    pred = MeanShape().fit(None, t).predict(range(3))
    assert pred.shape == (3, 2, 2)
    assert torch.equal(pred[2], torch.tensor([[1.0, 2.0], [0.5, -0.5]]))


def test_baselines_are_selected_by_identifier_and_shown_by_name():
    assert {k: v.display for k, v in BASELINES.items()} == {
        "mean_shape": "mean shape", "hog_ridge": "HOG → ridge", "ridge_probe": "ridge probe",
        "pixel_classifier": "pixel classifier"}
