"""Training image lists: folders, list files and MTFL roots (protocol: no lfwnet test, no AFLW)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from doc_commands import REPO, find_commands
from PIL import Image
from train_utils import tiny_config

from hyperland.data import centroid_box, read_mtfl
from hyperland.errors import DatasetError
from hyperland.train.data import resolve_data
from hyperland.train.views import TwoViewDataset


def test_folder_is_recursive_sorted_and_images_only(mtfl_root: Path, tmp_path: Path) -> None:
    src = read_mtfl(mtfl_root, "training")[:3]
    (tmp_path / "b").mkdir()
    shutil.copy(src[0].image, tmp_path / "b" / "z.jpg")
    shutil.copy(src[1].image, tmp_path / "a.JPG")
    shutil.copy(src[2].image, tmp_path / "b" / "c.jpeg")
    (tmp_path / "notes.txt").write_text("not an image")
    split = resolve_data(tiny_config(tmp_path, val_count=1))
    assert [i.path.relative_to(tmp_path).as_posix() for i in split.train + split.val] == ["a.JPG", "b/c.jpeg",
                                                                                          "b/z.jpg"]
    assert len(split.val) == 1 and split.description.startswith("folder '") and "/" not in split.description


def test_list_file_relative_paths_and_comments(mtfl_root: Path, tmp_path: Path) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text("# faces\nx/1.jpg\n\n/abs/2.png extra-column\n")
    split = resolve_data(tiny_config(lst))
    assert [i.path for i in split.train] == [tmp_path / "x" / "1.jpg", Path("/abs/2.png")]
    with pytest.raises(DatasetError, match="val_count=2 leaves no training images out of 2"):
        resolve_data(tiny_config(lst, val_count=2))


def test_mtfl_root_with_centroid_crops(mtfl_root: Path) -> None:
    split = resolve_data(tiny_config(mtfl_root, data_crop="centroid", val_count=4))
    train = read_mtfl(mtfl_root, "training")
    assert split.description.startswith("MTFL training.txt without its last 2000 lines") and str(mtfl_root) not in split.description and len(split.train) == 8000 - 4
    assert split.val[-1].path == train[7999].image  # the lfwnet test (last 2,000 lines) is never used
    assert split.train[0].box == pytest.approx(centroid_box(train[0].points))
    v, _ = TwoViewDataset(split.train[:1], resize=40, jpeg_p=0.0)[(0, 0)]
    assert v.shape == (2, 3, 40, 40)
    assert [s.meta["line"] for s in split.val_samples] == [7997, 7998, 7999, 8000]
    assert np.isfinite(split.val_samples[0].points).all()


def test_documented_adaptation_command_resolves_on_a_200_image_folder(tmp_path: Path) -> None:
    """docs/training.md's adaptation command as written, on a folder of 200 images: the recipe's automatic
    val_count holds out 20 (min(500, 10%)), and --init names the embedded default, whose weights the run starts
    from. Config resolution and model building only, no training step."""
    import torch

    import hyperland
    from hyperland.train.build import build_moco
    from hyperland.train.cli import _configs, build_parser, peek_recipe
    from hyperland.train.data import val_count

    docs = REPO / "docs" / "training.md"
    [cmd] = [c for c in find_commands(docs) if "--init" in c.argv and "folder" in c.argv and not c.inline]
    folder = tmp_path / "my_images"
    folder.mkdir()
    img = Image.fromarray(np.full((12, 12, 3), 128, np.uint8))
    for i in range(200):
        img.save(folder / f"{i:03d}.png")
    argv = [{"my_images/": str(folder), "runs/adapted": str(tmp_path / "run")}.get(a, a) for a in cmd.argv]
    assert argv != list(cmd.argv), "the documented command no longer reads my_images/ into runs/adapted"
    config, run_dir, resume = _configs(build_parser(peek_recipe(argv)).parse_args(argv))
    assert run_dir == tmp_path / "run"
    assert (config.recipe, config.val_count, config.init, config.epochs, resume) == \
        ("mtfl-r18-dense", None, "mtfl-dense-r18", 5, False)
    split = resolve_data(config)
    assert (len(split.train), len(split.val)) == (180, 20) and split.val[0].path.name == "180.png"
    assert val_count(config, 8000) == 500 and val_count(config.override(val_count=7), 200) == 7
    moco = build_moco(config, len(split.train))  # --init: the embedded model's backbone and projection
    src = hyperland.load(config.init)
    ref = src.backbone.state_dict()
    got = moco.encoder_q.backbone.state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    torch.testing.assert_close(moco.dense.proj.weight, src.projection.weight)


def test_video_frames_are_spread_decoded_once_and_named_by_index(tmp_path: Path) -> None:
    video = REPO.parent / "shared" / "data" / "dlc-openfield" / "videos" / "m3v1mp4.mp4"  # 2,330 frames, 640 x 480
    pytest.importorskip("av")
    cfg = tiny_config(video, val_count=1, video_frames=4)
    split = resolve_data(cfg, run_dir=tmp_path)
    names = [i.path.name for i in split.train + split.val]
    assert names == [f"frame_{i:07d}.png" for i in (0, 582, 1164, 1746)]  # step 2330 // 4
    assert split.description.startswith("video 'm3v1mp4.mp4' (3 train, 1 val")
    with Image.open(split.train[1].path) as im:
        assert im.size == (640, 480)
    stamp = split.train[0].path.stat().st_mtime_ns
    assert [i.path for i in resolve_data(cfg, run_dir=tmp_path).train] == [i.path for i in split.train]
    assert split.train[0].path.stat().st_mtime_ns == stamp  # a resumed run reads the frames it wrote
    with pytest.raises(DatasetError, match="--out"):
        resolve_data(cfg)
