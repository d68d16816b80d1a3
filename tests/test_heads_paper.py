"""The paper's regressor recipe: its loss, schedule, option set, a tiny fit on real AFLW faces, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hyperland import InvalidOptionError
from hyperland.data import load_samples, read_mtfl
from hyperland.features import encode
from hyperland.heads import LandmarkHead, paper_options
from hyperland.heads.regressor import Schedule, landmark_loss, masked_mse, schedule_for

NAN = float("nan")


@pytest.fixture(scope="module")
def faces(mtfl_root):
    return load_samples(read_mtfl(mtfl_root, "testing")[:10])


def test_smooth_l1_times_ten_against_hand_computed_value() -> None:
    pred = torch.tensor([[[0.0, 0.0], [0.5, 0.5]]])
    target = torch.tensor([[[0.05, -0.2], [NAN, NAN]]])  # the second landmark is missing: masked out
    # scaled errors 10·(0 - 0.05) = -0.5 → 0.5·0.5² = 0.125 and 10·(0 + 0.2) = 2 → 2 - 0.5 = 1.5; mean 0.8125
    out = landmark_loss(pred, target, loss="smooth_l1", scale=10.0)
    assert float(out) == pytest.approx(0.8125, abs=1e-6)
    # DVE's regression_loss(alpha=10): F.smooth_l1_loss(p * 10, t * 10) on the visible coordinates
    assert float(out) == pytest.approx(float(torch.nn.functional.smooth_l1_loss(pred[0, :1] * 10,
                                                                                 target[0, :1] * 10)))
    # the default is unchanged: squared distance averaged over landmarks, 0.05² + 0.2² = 0.0425
    assert float(landmark_loss(pred, target)) == pytest.approx(0.0425, abs=1e-7)
    assert float(masked_mse(pred, target)) == pytest.approx(0.0425, abs=1e-7)
    with pytest.raises(InvalidOptionError, match="loss='l1'"):
        landmark_loss(pred, target, loss="l1")  # type: ignore[arg-type]


def test_cosine_ends_at_final_lr_fraction() -> None:
    s = Schedule(steps=100, final_lr=8e-4)
    assert s.lr_factor(0) == pytest.approx(1.0)
    assert s.lr_factor(50) == pytest.approx(8e-4 + (1 - 8e-4) * 0.5)
    assert s.lr_factor(100) == pytest.approx(8e-4)
    assert s.lr_factor(250) == pytest.approx(8e-4)
    assert Schedule(steps=10).lr_factor(10) == pytest.approx(0.0)  # the default decays to zero as before


def test_option_set_has_exactly_the_papers_values() -> None:
    common = {"method": "regressor", "descriptor": "pca", "n_components": None, "grid": 48, "pool": 1,
              "n_intermediate": 50, "softmax_scale": 100.0, "loss": "smooth_l1", "loss_scale": 10.0,
              "betas": (0.5, 0.999), "final_lr": 8e-4, "batch_size": 32, "val_fraction": 0.0}
    a = math.sqrt(3) * 0.02  # uniform half-width with standard deviation 0.02
    few = {**common, "lr": 1e-2, "weight_decay": 5e-2, "epochs": 1000, "epoch_size": 1000, "augment": True,
           "n_augment": 8, "rotation": pytest.approx(2 * math.sqrt(3)), "scale": pytest.approx((1 - a, 1 + a)),
           "translate": pytest.approx(a), "tps": pytest.approx(a)}
    full = {**common, "lr": 1e-3, "weight_decay": 5e-4, "epochs": 200, "epoch_size": None, "augment": False}
    assert paper_options(few_shot=True) == few
    assert paper_options(few_shot=False) == full
    head = LandmarkHead.paper(5, few_shot=True, epochs=7, random_state=1)
    params = head.get_params()
    assert {k: params[k] for k in few} == {**few, "epochs": 7} and params["random_state"] == 1
    # 50 shots + 8 copies each = 450 maps, repeated to 1,000 per epoch: 7 epochs of 1,000 / 32
    sched = schedule_for(head.get_params(), 450, 50)
    assert (sched.steps, sched.betas, sched.final_lr, sched.loss, sched.loss_scale, sched.weight_decay) == (
        math.ceil(7 * 1000 / 32), (0.5, 0.999), 8e-4, "smooth_l1", 10.0, 5e-2)
    full = LandmarkHead.paper(5, few_shot=False).get_params()
    assert schedule_for(full, 1000, 1000).steps == math.ceil(200 * 1000 / 32)


@pytest.mark.parametrize("bad", [{"loss": "l1"}, {"betas": (1.0, 0.9)}, {"final_lr": -0.1}, {"grid": 0},
                                 {"loss_scale": 0.0}, {"translate": -1.0}, {"epoch_size": 0}])
def test_bad_new_options_are_refused(bad) -> None:
    name = next(iter(bad))
    with pytest.raises(InvalidOptionError, match=name):
        LandmarkHead(5, **bad)


def test_encode_on_a_48_grid(r18, faces) -> None:
    imgs, _ = faces
    f = encode(r18, imgs[:2], size=(48, 48))
    assert f.grid == (48, 48) and f.channels == r18.num_channels()


def test_tiny_paper_fit_predicts_finite_points_and_round_trips(r18, faces, tmp_path) -> None:
    imgs, pts = faces
    head = LandmarkHead.paper(5, few_shot=True, steps=3, n_augment=1, random_state=0, progress=False)
    head.fit(r18, imgs[:6], pts[:6])
    assert head.grid_ == (48, 48) and head.projection_ is None and head.n_features_in_ == r18.num_channels()
    assert head.history_["steps"] == 3 and head.history_["n_train_maps"] == 12 and head.history_["n_val"] == 0
    pred = head.predict(imgs[6:])
    assert pred.shape == (4, 5, 2) and np.isfinite(pred).all()
    head.save(tmp_path / "h")
    back = LandmarkHead.load(tmp_path / "h", model=r18)
    assert back.get_params() == {**head.get_params(), "progress": None}
    assert back.betas == (0.5, 0.999) and back.loss == "smooth_l1" and back.grid == 48
    np.testing.assert_allclose(back.predict(imgs[6:]), pred, atol=1e-4)
