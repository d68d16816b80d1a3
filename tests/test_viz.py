"""viz: landmark overlays drawn where the points are, PCA-RGB equal to a scikit-learn PCA, plots, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperland import viz
from hyperland.assets import faces_dir
from hyperland.cli import main
from hyperland.errors import InvalidKeypointsError

FACES = faces_dir()


def test_draw_landmarks_positions_and_colours():
    img = np.zeros((40, 40, 3), np.uint8)
    out = viz.draw_landmarks(img, pred=[[10, 10], [30, 30]], truth=[[10, 20], [np.nan, np.nan]], radius=2)
    assert out.shape == (40, 40, 3)
    assert tuple(out[10, 10]) == viz.PALETTE[0] and tuple(out[30, 30]) == viz.PALETTE[1]
    assert tuple(out[20, 10 + 3]) == viz.TRUTH  # ring of radius 2.8 around (10, 20)
    assert tuple(out[18, 10]) == viz.PALETTE[0]  # the error line from truth (10, 20) to prediction (10, 10)
    assert out[24:37, 24:37].sum() == out[28:33, 28:33].sum() > 0  # no ring where the truth is missing
    big = viz.draw_landmarks(img, pred=[[10, 10]], scale=2, radius=1)
    assert big.shape == (80, 80, 3) and tuple(big[21, 21]) == viz.PALETTE[0]  # pixel 10 covers 20..21 at scale 2
    with pytest.raises(InvalidKeypointsError, match=r"truth has shape \(1, 2\). Expected \(K, 2\) pixel \(x, y\) "
                                                    r"with K = 2"):
        viz.draw_landmarks(img, pred=[[1, 1], [2, 2]], truth=[[1, 1]])


def test_grid_layout():
    tiles = [np.full((10, 20, 3), i * 40, np.uint8) for i in range(5)]
    g = viz.grid(tiles, cols=3, pad=2)
    assert g.shape == (2 * 12 + 2, 3 * 22 + 2, 3)
    assert g[2, 2].tolist() == [0, 0, 0] and g[14, 2].tolist() == [120, 120, 120]  # tile 3 starts row 2
    assert g[14, 26].tolist() == [160, 160, 160] and g[14, 50].tolist() == [255, 255, 255]  # empty cell


def test_pca_rgb_matches_sklearn(r18, aflw_images):
    from sklearn.decomposition import PCA

    imgs = aflw_images[:3]
    maps = r18.extract(imgs, progress=False)  # (3, C, 24, 24)
    x = maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1]).numpy()
    ref = PCA(n_components=3).fit_transform(x)
    rgb = viz.pca_rgb(r18, imgs, size=maps.shape[-1], quantile=0.0, progress=False)
    assert rgb.shape == (3, 24, 24, 3) and rgb.dtype == np.uint8
    got = rgb.reshape(-1, 3).astype(np.float64)
    for j in range(3):
        corr = np.corrcoef(got[:, j], ref[:, j])[0, 1]
        assert abs(corr) > 0.999, (j, corr)
        assert got[:, j].min() == 0 and got[:, j].max() == 255  # min/max scaling with quantile=0
    view = viz.model_view(r18, imgs)
    assert view.shape == (3, 96, 96, 3)


def test_plot_shots_figure(tmp_path):
    summary = [{"method": "regressor", "shots": s, "mean": m, "std": 1.0} for s, m in ((1, 30.0), (10, 20.0))]
    summary.append({"method": "regressor", "shots": "all", "n_pool": 100, "mean": 10.0, "std": 0.5})
    fig = viz.plot_shots(summary, baseline=25.0, title="t")
    ax = fig.axes[0]
    assert tuple(ax.lines[0].get_xdata()) == (1.0, 10.0, 100.0)
    assert ax.lines[-1].get_ydata()[0] == 25.0  # the mean-shape line
    fig.savefig(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").size[0] > 300


def test_viz_pca_cli(tmp_path, capsys):
    faces = sorted(FACES.glob("*.jpg"))[:2]
    assert main(["viz", "pca", f"{FACES}/000[12]-*.jpg", "--out", str(tmp_path)]) == 0  # a glob, like a list
    written = capsys.readouterr().out.split()
    assert [Path(w).name for w in written] == [f"{p.stem}_pca.png" for p in faces] + ["pca_grid.png"]
    assert all(Path(w).is_file() for w in written)
    assert Image.open(written[0]).size == (2 * 96 + 6, 96 + 4)  # image | PCA, padded
    (tmp_path / "empty").mkdir()
    assert main(["viz", "pca", str(tmp_path / "empty"), "--out", str(tmp_path)]) == 2
    assert "empty' holds no image files" in capsys.readouterr().err


def test_viz_landmarks_cli_with_truth(r18, tmp_path, capsys):
    from hyperland.data import load_samples, read_csv
    from hyperland.heads import LandmarkHead
    from hyperland.metrics import nme

    imgs, pts = load_samples(read_csv(FACES / "train.csv")[:6])
    head = LandmarkHead(5, method="prototype", random_state=0, progress=False).fit(r18, imgs, pts)
    head.save(tmp_path / "head")
    faces = [str(p) for p in sorted(FACES.glob("*.jpg"))[20:22]]  # the first two test faces
    assert main(["viz", "landmarks", *faces, "--head", str(tmp_path / "head"), "--truth", str(FACES / "test.csv"),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert Image.open(out[0]).size == (300, 300)  # 150 px faces drawn at --scale 2
    assert Path(out[2]).name == "landmarks_grid.png"
    truth = np.stack([s.points for s in read_csv(FACES / "test.csv")[:2]])
    expected = 100 * nme(head.predict(faces), truth, eyes=(0, 1))
    assert out[3] == f"NME {expected:.2f} % over 2 images (normalised by landmarks (0, 1))"
    pair = tmp_path / "pair"  # a folder of the same two faces: the same points, the same NME
    pair.mkdir()
    for f in faces:
        (pair / Path(f).name).write_bytes(Path(f).read_bytes())
    np.testing.assert_allclose(head.predict(pair), head.predict(faces), atol=1e-5)
    assert main(["viz", "landmarks", str(pair), "--head", str(tmp_path / "head"), "--truth", str(FACES / "test.csv"),
                 "--out", str(tmp_path / "out2")]) == 0
    assert capsys.readouterr().out.splitlines()[3] == out[3]
    with pytest.raises(SystemExit):
        main(["viz", "landmarks", faces[0], "--out", str(tmp_path)])  # --head is required
