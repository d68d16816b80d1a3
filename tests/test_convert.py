"""hyperland convert: a synthetic checkpoint in the authors' layout → model directory → hyperland.load()."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import timm
import torch

import hyperland
from hyperland.cli import main as cli_main
from hyperland.convert import convert_checkpoint, encoder_state
from hyperland.errors import CheckpointError, WeightsMismatchError


def _authors_checkpoint(path: Path, *, arch: str = "resnet18", extra: dict | None = None,
                        drop_nbt: bool = False) -> dict[str, torch.Tensor]:
    """Layout of contrast-landmark's ckpt_epoch_*.pth: model = query encoder under encoder.module.*, with the
    classifier replaced by a 128-d projection fc; opt = the argparse Namespace of the run."""
    torch.manual_seed(1)
    net = timm.create_model(arch, num_classes=128)
    state = {k: v for k, v in net.state_dict().items() if not (drop_nbt and k.endswith("num_batches_tracked"))}
    with torch.no_grad():
        for k, v in state.items():
            if k.endswith("running_var"):
                v.uniform_(0.5, 2.0)  # non-trivial BN statistics, so a wrong mapping would show
    ckpt = {
        "opt": argparse.Namespace(arch=arch, dataset="celeba", feat_dim=128, nce_k=4096, nce_t=0.07, epochs=800,
                                  learning_rate=0.03, image_crop=20, model_path="/ckpt", gpu=None),
        "model": {f"encoder.module.{k}": v for k, v in state.items()},
        "contrast": {"memory": torch.randn(4096, 128), "params": torch.tensor([4096, 0.07, -1, 0.5])},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.03, "params": [0, 1]}]},
        "epoch": 800,
        **(extra or {}),
    }
    torch.save(ckpt, path)
    return state


def test_convert_round_trip(tmp_path: Path, aflw_images: list[Path]) -> None:
    ckpt = tmp_path / "ckpt_epoch_800_resnet18_celeba.pth"
    state = _authors_checkpoint(ckpt)
    model = convert_checkpoint(ckpt, arch="resnet18", out=tmp_path / "model")
    assert model.config.provenance["dropped_keys"] == ["fc.bias", "fc.weight"]
    loaded = hyperland.load(tmp_path / "model")
    own = loaded.backbone.state_dict()
    assert set(own) == {k for k in state if not k.startswith("fc.")}
    assert all(torch.equal(own[k], state[k]) for k in own)
    prov = loaded.config.provenance
    assert prov["epoch"] == 800 and prov["options"]["dataset"] == "celeba" and prov["options"]["gpu"] is None
    # the converted backbone computes what the authors' encoder computes up to layer4
    net = timm.create_model("resnet18", num_classes=128)
    net.load_state_dict(state)
    net.eval()
    x = loaded.preprocess(aflw_images[:2])
    with torch.no_grad():
        ref = net.forward_features(x)
    assert torch.allclose(loaded.forward_features(x, layers=(4,))[0], ref, atol=1e-5)


def test_cli_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "c.pth"
    _authors_checkpoint(ckpt, drop_nbt=True)  # old PyTorch files lack num_batches_tracked
    assert cli_main(["convert", str(ckpt), "--arch", "resnet18", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "dropped: fc.bias, fc.weight" in out and "sha256 model.safetensors:" in out
    assert hyperland.load(tmp_path / "m").config.architecture == "resnet18"


class _Payload:
    """What a hostile checkpoint would do when unpickled: run a shell command."""

    def __reduce__(self):
        return (os.system, (f"touch {os.environ['HYPERLAND_TEST_MARKER']}",))


def test_pickled_code_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "executed"
    monkeypatch.setenv("HYPERLAND_TEST_MARKER", str(marker))
    ckpt = tmp_path / "evil.pth"
    _authors_checkpoint(ckpt, extra={"hook": _Payload()})
    with pytest.raises(CheckpointError, match="safe loader"):
        convert_checkpoint(ckpt, arch="resnet18", out=tmp_path / "m")
    assert not marker.exists() and not (tmp_path / "m").exists()


def test_strict_keys_and_arch_checks(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.pth"
    _authors_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="arch='resnet18', but --arch resnet50"):
        convert_checkpoint(ckpt, arch="resnet50", out=tmp_path / "m")
    _authors_checkpoint(ckpt, extra={"model": {"encoder.module.conv1.weight": torch.zeros(64, 3, 7, 7),
                                               "encoder.module.extra.weight": torch.zeros(1)}})
    with pytest.raises(WeightsMismatchError, match="missing.*unexpected \\(e.g. \\['extra.weight'\\]\\)"):
        convert_checkpoint(ckpt, arch="resnet18", out=tmp_path / "m")
    state, dropped = encoder_state({"module.encoder.fc.weight": torch.zeros(1), "module.encoder.a": torch.ones(1)})
    assert list(state) == ["a"] and dropped == ["fc.weight"]
    torch.save([1, 2], ckpt)
    with pytest.raises(CheckpointError, match="Expected a dict with 'model'"):
        convert_checkpoint(ckpt, arch="resnet18", out=tmp_path / "m")
