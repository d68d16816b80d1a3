"""The model's descriptor PCA (``HyperlandModel.pca``, ``with_pca``): shipped in model.safetensors, strict to
load, read by heads by default, and the same descriptors from Python, eval's one-pass extraction and a saved head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import hyperland
from hyperland.config import ModelConfig
from hyperland.data import dataset_protocol, load_samples
from hyperland.errors import InvalidOptionError, ManifestError, WeightsMismatchError
from hyperland.evaluate import run_protocol
from hyperland.features import encode, fit_projection
from hyperland.heads import LandmarkHead
from hyperland.metrics import nme
from hyperland.protocol import Descriptor, Setting, extract_once

SIZE = 136


@pytest.fixture(scope="module")
def faces(mtfl_root: Path):
    _, (pool, test) = dataset_protocol("mtfl", mtfl_root, "mtfl-aflw")
    return pool[:12], test[:4]


@pytest.fixture(scope="module")
def dense():
    return hyperland.load("mtfl-dense-r18")


def test_the_default_model_ships_its_pca_and_keeps_its_fingerprint(dense) -> None:
    """128 orthonormal components of the 960-channel layer 1-4 hypercolumn; the fingerprint (backbone and learned
    projection) is the one saved heads of this model recorded before the PCA was added."""
    assert dense.pca is not None and dense.pca_layers == (1, 2, 3, 4)
    assert (dense.pca.n_components, dense.pca.in_channels) == (128, 960)
    gram = dense.pca.components @ dense.pca.components.T
    assert torch.allclose(gram, torch.eye(128), atol=2e-3)  # float16 storage
    assert dense.fingerprint == "72af328ee9fa705a"
    assert dense.config.provenance["pca"]["images"] == 512


def test_with_pca_is_fit_projection_and_survives_save_and_load(r18, faces, tmp_path) -> None:
    imgs = load_samples(faces[0], size=SIZE)[0]
    model = r18.with_pca(imgs, n_components=16, layers=(2, 3), max_images=8, data="twelve faces")
    ref = fit_projection(r18, imgs, n_components=16, layers=(2, 3), max_images=8, random_state=0)
    assert torch.equal(model.pca.components, ref.components) and torch.equal(model.pca.mean, ref.mean)
    assert model.fingerprint == r18.fingerprint and r18.pca is None  # the original is left as it was
    assert model.config.provenance["pca"]["data"] == "twelve faces"
    assert model.source == r18.source == "random-r18"  # a head fitted on it finds the same backbone
    back = hyperland.load(str(model.save_pretrained(tmp_path / "m")))
    assert back.pca_layers == (2, 3) and back.pca.key == model.pca.key and back.fingerprint == r18.fingerprint


def test_pca_tensors_and_pca_layers_must_agree(r18, faces, tmp_path) -> None:
    imgs = load_samples(faces[0][:4], size=SIZE)[0]
    d = r18.with_pca(imgs, n_components=4, layers=(4,), max_images=4).save_pretrained(tmp_path / "m")
    state = load_file(d / "model.safetensors")
    cfg = json.loads((d / "config.json").read_text())

    def rewrite(tensors: dict, config: dict) -> None:
        save_file(tensors, d / "model.safetensors", metadata={"format": "pt"})
        import hashlib
        config["weights_sha256"] = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
        (d / "config.json").write_text(json.dumps(config))

    rewrite(state, {k: v for k, v in cfg.items() if k != "pca_layers"})  # tensors without pca_layers
    with pytest.raises(WeightsMismatchError, match="pca_layers=None"):
        hyperland.load(str(d))
    rewrite({k: v for k, v in state.items() if k != "hyperland_pca.mean"}, cfg)  # pca_layers, one tensor missing
    with pytest.raises(WeightsMismatchError, match=r"hyperland_pca\.\* tensors \['components'\]"):
        hyperland.load(str(d))
    rewrite({**state, "hyperland_pca.components": torch.zeros(4, 7), "hyperland_pca.mean": torch.zeros(7)}, cfg)
    with pytest.raises(WeightsMismatchError, match="The descriptor PCA reads 7 channels"):
        hyperland.load(str(d))
    with pytest.raises(ManifestError, match="'pca_layers' \\(5,\\) are not all in 'out_indices'"):
        ModelConfig(architecture="resnet18", pca_layers=(5,))


def test_heads_read_the_model_pca_by_default(dense, r18) -> None:
    auto = LandmarkHead(5)
    assert auto.descriptor_source(dense) == "model_pca"
    assert LandmarkHead(5, layers=(1, 2)).descriptor_source(dense) == "pca"  # chosen layers: their own PCA
    assert LandmarkHead(5, descriptor="learned").descriptor_source(dense) == "learned"
    assert auto.descriptor_source(r18) == "pca"
    with pytest.raises(InvalidOptionError, match="has no descriptor PCA"):
        LandmarkHead(5, descriptor="model_pca").descriptor_source(r18)


def test_python_eval_and_a_saved_head_read_the_same_descriptors(dense, faces, tmp_path) -> None:
    """extract_once's model_pca maps equal encode()'s; a 6-shot fit scores the same in eval as in Python; the saved
    head predicts the same points, and records the PCA it reads."""
    pool, test = faces
    imgs, pts = load_samples(pool, size=SIZE)
    timgs, tpts = load_samples(test, size=SIZE)
    [ex] = extract_once(dense, imgs, settings=[Setting(descriptors=(Descriptor("model_pca", 1),))], keep=[1, 4],
                        progress=False)
    ref = encode(dense, imgs, layers=dense.pca_layers, projection=dense.pca, progress=False)
    got = ex.descriptors[Descriptor("model_pca", 1)]
    assert torch.equal(got.maps, ref.maps[[1, 4]]) and got.projection is dense.pca and got.layers == (1, 2, 3, 4)
    opts = {"n_augment": 1, "mirror": False}
    run = run_protocol(dense, pool, test, shots=(6,), seeds=1, baselines=(), head_options=opts, confidence=False,
                       progress=False)
    [rec] = run["results"]
    idx = np.random.default_rng(0).permutation(len(pool))[:6]
    head = LandmarkHead(5, random_state=0, progress=False, val_fraction=0.1, **opts)
    head.fit(dense, [imgs[i] for i in idx], pts[idx])
    assert head.projection_.key == dense.pca.key and head.layers_ == (1, 2, 3, 4) and not head.learned_
    pred = head.predict(timgs)
    assert rec["nme"] == pytest.approx(100 * nme(pred, tpts), abs=1e-6)
    head.save_pretrained(tmp_path / "h")
    back = LandmarkHead.from_pretrained(tmp_path / "h", model=dense)
    np.testing.assert_allclose(back.predict(timgs), pred, atol=1e-4)
