"""Dataset loaders on tiny fixtures written from each format's official description."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperland.data import (
    dataset_protocol,
    draw,
    load_samples,
    read_aflw_train,
    read_csv,
    read_cub,
    read_json,
    read_keypoints,
    read_mafl,
    read_pts,
    read_w300,
    write_csv,
)
from hyperland.data.celeba_mafl import celeba_pretrain_images
from hyperland.data.w300 import square_box
from hyperland.errors import DatasetError, InvalidOptionError


def _img(path: Path, size=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 60, 30)).save(path)
    return path


# ---------------------------------------------------------------- generic CSV / JSON / COCO
def test_csv_roundtrip_with_missing_and_box(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "sub" / "b.png")
    (tmp_path / "kp.csv").write_text(
        "image,eye_x,eye_y,nose_x,nose_y,nose_visible,box_x0,box_y0,box_x1,box_y1\n"
        "a.jpg,1.5,2.0,10,12,1,0,0,20,20\n"
        "sub/b.png,3,4,,,1,,,,\n"
        "a.jpg,5,6,7,8,0,,,,\n"
    )
    s = read_csv(tmp_path / "kp.csv")
    assert len(s) == 3 and s[0].meta["landmarks"] == ["eye", "nose"]
    np.testing.assert_allclose(s[0].points, [[1.5, 2.0], [10, 12]])
    assert s[0].box == (0.0, 0.0, 20.0, 20.0) and s[1].box is None
    assert s[1].visible.tolist() == [True, False] and np.isnan(s[1].points[1]).all()
    assert s[2].visible.tolist() == [True, False]  # nose_visible = 0
    out = write_csv(s, tmp_path / "again.csv")
    t = read_csv(out)
    np.testing.assert_allclose(np.nan_to_num(t[1].points, nan=-1), np.nan_to_num(s[1].points, nan=-1))
    assert [x.image for x in t] == [x.image for x in s]


def test_csv_errors_name_file_and_line(tmp_path):
    _img(tmp_path / "a.jpg")
    p = tmp_path / "kp.csv"
    p.write_text("image,eye_x,eye_y\na.jpg,1,2\nmissing.jpg,1,2\n")
    with pytest.raises(DatasetError, match=r"kp.csv:3: image .*missing.jpg.* missing"):
        read_csv(p)
    p.write_text("image,eye_x,eye_y\na.jpg,1,two\n")
    with pytest.raises(DatasetError, match=r"kp.csv:2: x coordinates|kp.csv:2: y coordinates"):
        read_csv(p)
    p.write_text("image,eye_x,eye_y\na.jpg,1\n")
    with pytest.raises(DatasetError, match=r"kp.csv:2: 2 fields but the header has 3"):
        read_csv(p)
    p.write_text("path,eye_x,eye_y\n")
    with pytest.raises(DatasetError, match="must start with 'image'"):
        read_csv(p)
    p.write_text("image,eye_x,eye_y\n")
    with pytest.raises(DatasetError, match="holds no samples"):
        read_csv(p)


def test_points_outside_image_warn_or_error(tmp_path):
    _img(tmp_path / "a.jpg", size=(40, 30))  # W=40, H=30
    p = tmp_path / "kp.csv"
    p.write_text("image,eye_x,eye_y\na.jpg,39.4,29.4\na.jpg,45,2\n")
    with pytest.warns(UserWarning, match=r"kp.csv:3: 1 of 2 samples have landmarks outside"):
        read_csv(p)
    with pytest.raises(DatasetError, match="outside their image"):
        read_csv(p, outside="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_csv(p, outside="ignore")) == 2


def test_json_records_and_landmark_count_mismatch(tmp_path):
    _img(tmp_path / "a.jpg")
    p = tmp_path / "kp.json"
    p.write_text(json.dumps({"landmarks": ["l", "r"], "samples": [
        {"image": "a.jpg", "points": [[1, 2], None], "box": [0, 0, 10, 10]},
        {"image": "a.jpg", "points": [[3, 4], [5, 6]], "visible": [True, False]},
    ]}))
    s = read_keypoints(p)
    assert s[0].visible.tolist() == [True, False] and s[1].visible.tolist() == [True, False]
    assert s[0].box == (0.0, 0.0, 10.0, 10.0) and s[0].meta["landmarks"] == ["l", "r"]
    p.write_text(json.dumps([{"image": "a.jpg", "points": [[1, 2]]}, {"image": "a.jpg", "points": [[1, 2], [3, 4]]}]))
    with pytest.raises(DatasetError, match="has 2 landmarks but .* has 1"):
        read_json(p)
    p.write_text("[{\"image\": \"a.jpg\",\n \"points\": [[1, 2]]")
    with pytest.raises(DatasetError, match=r"kp.json:2: invalid JSON"):
        read_json(p)


def test_coco_keypoints(tmp_path):
    _img(tmp_path / "imgs" / "1.jpg", size=(50, 40))
    coco = {
        "images": [{"id": 7, "file_name": "1.jpg", "width": 50, "height": 40}],
        "categories": [{"id": 1, "name": "bird", "keypoints": ["beak", "tail", "eye"]}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [5, 6, 20, 10], "num_keypoints": 2,
             "keypoints": [10, 12, 2, 0, 0, 0, 30, 20, 1]},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "num_keypoints": 0,
             "keypoints": [0, 0, 0, 0, 0, 0, 0, 0, 0]},
        ],
    }
    p = tmp_path / "coco.json"
    p.write_text(json.dumps(coco))
    s = read_json(p, image_root=tmp_path / "imgs")
    assert len(s) == 1  # the unlabelled annotation is skipped
    assert s[0].box == (5.0, 6.0, 25.0, 16.0)
    assert s[0].visible.tolist() == [True, False, True] and s[0].meta["occluded"] == [False, False, True]
    np.testing.assert_allclose(s[0].points[[0, 2]], [[10, 12], [30, 20]])
    assert s[0].meta["landmarks"] == ["beak", "tail", "eye"]
    coco["annotations"][0]["image_id"] = 8
    p.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match="image_id 8"):
        read_json(p, image_root=tmp_path / "imgs")


def test_load_samples_crops_box_and_moves_points(tmp_path):
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[12, 15] = 255  # the landmark pixel
    Image.fromarray(arr).save(tmp_path / "a.png")
    (tmp_path / "kp.csv").write_text("image,p_x,p_y,box_x0,box_y0,box_x1,box_y1\na.png,15,12,10,10,20,20\n")
    imgs, pts = load_samples(read_csv(tmp_path / "kp.csv"))
    assert imgs[0].size == (10, 10)
    np.testing.assert_allclose(pts[0], [[5, 2]])
    assert np.asarray(imgs[0])[2, 5].tolist() == [255, 255, 255]


def test_draw_shots(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "kp.csv").write_text("image,p_x,p_y\n" + "".join(f"a.jpg,{i},1\n" for i in range(6)))
    s = read_csv(tmp_path / "kp.csv")
    a, b = draw(s, 3, seed=0), draw(s, 3, seed=0)
    assert [x.points[0, 0] for x in a] == [x.points[0, 0] for x in b] and len(a) == 3
    with pytest.raises(DatasetError, match="Asked for 7 labelled samples but the pool holds 6"):
        draw(s, 7, seed=0)


# ---------------------------------------------------------------- 300W
PTS_HEADER = "version: 1\nn_points:  68\n{\n" + "".join(f"{i + 1}.5 {i + 2}.25\n" for i in range(68)) + "}\n"


def test_pts_with_and_without_header(tmp_path):
    a = tmp_path / "a.pts"
    a.write_text(PTS_HEADER)
    b = tmp_path / "b.pts"
    b.write_text("".join(f"{i + 1}.5 {i + 2}.25\n" for i in range(68)))
    pa, pb = read_pts(a), read_pts(b)
    assert pa.shape == (68, 2)
    np.testing.assert_allclose(pa[3], [3.5, 4.25])  # 1-based (4.5, 5.25) -> 0-based
    np.testing.assert_allclose(pa, pb)
    a.write_text(PTS_HEADER.replace("n_points:  68", "n_points:  67"))
    with pytest.raises(DatasetError, match="header says n_points 67 but the file holds 68"):
        read_pts(a)
    a.write_text(PTS_HEADER.replace("5.5 6.25", "5.5 six"))
    with pytest.raises(DatasetError, match=r"a.pts:8: coordinates must be numbers"):
        read_pts(a)
    a.write_text("1 2\n3 4\n")
    with pytest.raises(DatasetError, match="2 points. Expected 68"):
        read_pts(a)
    assert read_pts(a, n_points=None).shape == (2, 2)


def _w300_fixture(root: Path) -> None:
    from scipy.io import savemat

    for sub, names in {"afw": ["1.jpg"], "helen/trainset": ["2.jpg"], "lfpw/trainset": ["3.png"]}.items():
        cells = np.empty((1, len(names)), dtype=object)
        for i, n in enumerate(names):
            _img(root / sub / n, size=(200, 200))
            (root / sub / n).with_suffix(".pts").write_text(PTS_HEADER)
            cells[0, i] = {"imgName": n, "bb_detector": np.array([[11.0, 21.0, 63.0, 81.0]]),
                           "bb_ground_truth": np.array([[1.0, 2.0, 69.0, 70.0]])}
        (root / "Bounding Boxes").mkdir(exist_ok=True)
        mat = {"afw": "afw", "helen/trainset": "helen_trainset", "lfpw/trainset": "lfpw_trainset"}[sub]
        savemat(root / "Bounding Boxes" / f"bounding_boxes_{mat}.mat", {"bounding_boxes": cells})


def test_w300_train_split_with_detector_boxes(tmp_path):
    _w300_fixture(tmp_path)
    s = read_w300(tmp_path, "train")
    assert [x.image.name for x in s] == ["1.jpg", "2.jpg", "3.png"]
    # detector box (11,21)-(63,81) 1-based -> (10,20)-(62,80); side 52 * 100/52 = 100 around (36, 50)
    np.testing.assert_allclose(s[0].box, (-14.0, 0.0, 86.0, 100.0))
    np.testing.assert_allclose(square_box((0, 0, 52, 10)), (-24, -45, 76, 55))
    with pytest.raises(DatasetError, match="300W folder missing"):
        read_w300(tmp_path, "test")
    with pytest.raises(InvalidOptionError, match="own labels"):
        read_w300(tmp_path, "test", box="ground_truth")


# ---------------------------------------------------------------- CUB
def _cub_fixture(root: Path) -> None:
    names = ["001.Black_footed_Albatross/A_0001.jpg", "002.Laysan_Albatross/L_0002.jpg",
             "002.Laysan_Albatross/L_0003.jpg"]
    (root / "images.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    for n in names:
        _img(root / "images" / n, size=(100, 80))
    (root / "bounding_boxes.txt").write_text("1 10.0 20.0 50.0 40.0\n2 0.0 0.0 100.0 80.0\n3 5.0 5.0 10.0 10.0\n")
    locs = []
    for i in (1, 2, 3):
        for part in range(1, 16):
            vis = 0 if (i == 1 and part == 4) else 1
            x, y = (0.0, 0.0) if not vis else (float(part * 5), float(i * 10))
            locs.append(f"{i} {part} {x} {y} {vis}\n")
    (root / "parts").mkdir()
    (root / "parts" / "part_locs.txt").write_text("".join(locs))
    (root / "parts" / "parts.txt").write_text("".join(f"{p} part {p}\n" for p in range(1, 16)))
    (root / "split").mkdir()
    (root / "split" / "train_10.txt").write_text(
        f"/mnt/nfs/x/CUB_200_2011/images/{names[2]}\n/mnt/nfs/x/CUB_200_2011/images/{names[0]}\n")
    (root / "split" / "test.txt").write_text(f"/elsewhere/images/{names[1]}\n")


def test_cub_parts_visibility_boxes_and_splits(tmp_path):
    _cub_fixture(tmp_path)
    every = read_cub(tmp_path)
    assert len(every) == 3 and every[0].n_landmarks == 15
    assert not every[0].visible[3] and np.isnan(every[0].points[3]).all()
    np.testing.assert_allclose(every[0].points[0], [5.0, 10.0])
    assert every[0].box == (10.0, 20.0, 60.0, 60.0) and every[0].meta["landmarks"][0] == "part 1"
    train = read_cub(tmp_path, "train_10")
    assert [s.meta["id"] for s in train] == [3, 1]  # the list's order
    spec, (pool, test) = dataset_protocol("cub", tmp_path, "train_10")
    assert spec.metric == "pck" and len(pool) == 2 and len(test) == 1
    (tmp_path / "split" / "val.txt").write_text("images/003.Nope/x.jpg\n")
    with pytest.raises(DatasetError, match=r"val.txt:1: '003.Nope/x.jpg' is not in"):
        read_cub(tmp_path, "val")
    with pytest.raises(DatasetError, match="split list not found"):
        read_cub(tmp_path, "train_50")
    (tmp_path / "parts" / "part_locs.txt").write_text("1 16 0 0 1\n")
    with pytest.raises(DatasetError, match=r"part_locs.txt:1: part id 16"):
        read_cub(tmp_path)


# ---------------------------------------------------------------- CelebA / MAFL and AFLW_M
def test_mafl_layout_fixed_crop_and_pretrain_exclusion(tmp_path):
    for n in ("000001.jpg", "000002.jpg", "000003.jpg"):
        _img(tmp_path / "Img" / "img_align_celeba" / n, size=(178, 218))
    (tmp_path / "Anno").mkdir()
    (tmp_path / "Anno" / "list_landmarks_align_celeba.txt").write_text(
        "3\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
        "rightmouth_y\n000001.jpg 69 109 106 113 77 142 73 152 108 154\n"
        "000002.jpg 69 110 107 112 81 135 70 151 108 153\n000003.jpg 76 112 104 106 108 128 74 156 98 158\n")
    (tmp_path / "MAFL").mkdir()
    (tmp_path / "MAFL" / "training.txt").write_text("000002.jpg\n")
    (tmp_path / "MAFL" / "testing.txt").write_text("000003.jpg\n")
    (tmp_path / "Eval").mkdir()
    (tmp_path / "Eval" / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n")
    test = read_mafl(tmp_path, "testing")
    np.testing.assert_allclose(test[0].points[2], [108, 128])
    imgs, pts = load_samples(test)
    assert imgs[0].size == (178, 178)
    np.testing.assert_allclose(pts[0][2], [108, 98])  # y - 30: the fixed crop, independent of labels
    assert [p.name for p in celeba_pretrain_images(tmp_path)] == ["000001.jpg"]
    (tmp_path / "MAFL" / "testing.txt").write_text("000009.jpg\n")
    with pytest.raises(DatasetError, match=r"testing.txt:1: '000009.jpg' has no row"):
        read_mafl(tmp_path, "testing")


def test_aflw_m_training_csv(tmp_path):
    folder = tmp_path / "aflw_cropped"
    _img(folder / "crops" / "1.jpg", size=(150, 150))
    _img(folder / "crops" / "2.jpg", size=(150, 150))
    header = "image_file,set,crop_file,face_id," + ",".join(f"{a}{i}" for i in range(1, 6) for a in "xy")
    coords = ",".join(str(v) for v in [50, 60, 100, 61, 75, 90, 55, 115, 95, 116])
    (folder / "facedata_cropped.csv").write_text(
        f"{header}\nimage00001.jpg,1,crops/1.jpg,1,{coords}\nimage00002.jpg,2,crops/2.jpg,2,{coords}\n")
    s = read_aflw_train(tmp_path)
    assert len(s) == 1  # only set == 1
    np.testing.assert_allclose(s[0].points[:2], [[49, 59], [99, 60]])
    (folder / "facedata_cropped.csv").write_text(f"{header}\nimage00003.jpg,1,crops/3.jpg,1,{coords}\n")
    with pytest.raises(DatasetError, match=r"facedata_cropped.csv:2: image .*3.jpg.* missing"):
        read_aflw_train(tmp_path)


def test_dataset_protocol_errors(tmp_path):
    with pytest.raises(InvalidOptionError, match="Unknown dataset 'nope'"):
        dataset_protocol("nope", tmp_path)
    with pytest.raises(InvalidOptionError, match="no protocol 'x'"):
        dataset_protocol("mtfl", tmp_path, "x")
    with pytest.raises(DatasetError, match="does not exist"):
        dataset_protocol("mtfl", tmp_path / "missing")


def test_afw_protocol_splits_the_337_faces_by_name(mtfl_root):
    root = mtfl_root.parent / "300w-afw"
    if not root.is_dir():
        pytest.skip("../shared/data/300w-afw not present")
    from hyperland.data import dataset_protocol

    spec, (pool, test) = dataset_protocol("300w", root, "afw")
    assert (len(pool), len(test), spec.eyes) == (200, 137, (36, 45))
    names = [s.image.name for s in pool + test]
    assert names == sorted(names) and len(set(names)) == 337
    assert all(s.box is None and s.points.shape == (68, 2) for s in pool + test)
    assert np.isfinite(pool[0].points).all() and (pool[0].points >= -1).all() and (pool[0].points < 257).all()
