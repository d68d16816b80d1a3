"""`hyperland eval`: argument checks, the markdown table, and end-to-end runs on the bundled faces."""

from __future__ import annotations

import json

import pytest

from hyperland.assets import faces_dir
from hyperland.cli import main
from hyperland.commands.eval import check_shots, markdown, parse_shots
from hyperland.errors import InvalidOptionError

FACES = faces_dir()


def test_parse_and_check_shots():
    assert parse_shots("1, 5,ALL") == [1, 5, "all"]
    with pytest.raises(InvalidOptionError, match="'0' is not a positive integer"):
        parse_shots("1,0")
    with pytest.raises(InvalidOptionError, match="'x' is not a positive integer"):
        parse_shots("x")
    check_shots([1, 20, "all"], 20)
    with pytest.raises(InvalidOptionError, match=r"for \[50, 100\] labelled images but the labelled pool holds 20"):
        check_shots([1, 50, 100, "all"], 20)


def test_markdown_table_by_hand():
    run = {"layers": [1, 2], "metric": "nme", "n_pool": 30, "mean_shape_nme": 25.0,
           "summary": [{"method": "regressor", "shots": 1, "mean": 30.0, "std": 2.5},
                       {"method": "regressor", "shots": "all", "mean": 10.123, "std": 0.0},
                       {"method": "prototype", "shots": 1, "mean": 40.0, "std": 1.0}]}
    md = markdown([run], title="t")
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert rows[0] == "| method | layers | 1 | all (30) |"
    assert rows[2] == "| regressor | 1,2 | 30.00 ± 2.50 | 10.12 ± 0.00 |"
    assert rows[3] == "| prototype | 1,2 | 40.00 ± 1.00 | – |"
    assert rows[4] == "| mean shape | – | 25.00 | 25.00 |"


def test_eval_generic_end_to_end(tmp_path, capsys):
    code = main(["eval", "--dataset", "generic", "--root", str(FACES), "--shots", "1,5,all", "--seeds", "2",
                 "--methods", "prototype", "--limit-test", "6", "--out", str(tmp_path), "--name", "t"])
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads((tmp_path / "t.json").read_text())
    run = doc["runs"][0]
    assert doc["dataset"] == "generic" and run["n_pool"] == 20 and run["n_test"] == 6
    heads = [r for r in run["results"] if not r.get("baseline")]
    assert len(heads) == 3 * 2 and len(run["results"]) == 3 * 2 * 5  # shots x seeds x (head + 4 baselines)
    assert {r["method"] for r in run["results"] if r.get("baseline")} == {"mean shape", "HOG → ridge", "ridge probe",
                                                                         "pixel classifier"}
    table = (tmp_path / "t.md").read_text()
    for row in run["summary"]:
        assert f"{row['mean']:.2f} ± {row['std']:.2f}" in table
    ms_all = next(r for r in run["summary"] if r["method"] == "mean shape" and r["shots"] == "all")
    assert ms_all["mean"] == pytest.approx(run["mean_shape_nme"], abs=1e-6)  # the whole pool's shape, every seed
    assert "| mean shape | " in table and "| HOG → ridge | " in table and "Spearman" in table
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert table in out


def test_eval_layers_sweep_one_table(tmp_path, capsys):
    code = main(["eval", "--dataset", "generic", "--root", str(FACES), "--shots", "5", "--seeds", "1",
                 "--methods", "prototype", "--layers-sweep", "4;1,2,3,4", "--limit-test", "4", "--out", str(tmp_path),
                 "--name", "sweep"])
    assert code == 0
    main_table = (tmp_path / "sweep.md").read_text().split("Confidence per landmark")[0]
    rows = [ln for ln in main_table.splitlines() if ln.startswith("| prototype")]
    assert [r.split("|")[2].strip() for r in rows] == ["4", "1,2,3,4"]


def test_eval_too_many_shots_is_an_error(tmp_path, capsys):
    code = main(["eval", "--dataset", "generic", "--root", str(FACES), "--shots", "1,50", "--out", str(tmp_path)])
    assert code == 2
    assert "labelled pool holds 20" in capsys.readouterr().err


def test_eval_bad_options(tmp_path, capsys):
    base = ["eval", "--dataset", "generic", "--root", str(FACES), "--out", str(tmp_path)]
    assert main([*base, "--head-options", "{steps: 3}"]) == 2
    assert "--head-options is not valid JSON" in capsys.readouterr().err
    assert main([*base, "--seeds", "0"]) == 2
    assert "--seeds 0: expected at least 1" in capsys.readouterr().err
    assert main([*base[:-2], "--out", str(tmp_path), "--protocol", "nope"]) == 2
    assert "has no protocol 'nope'" in capsys.readouterr().err


def _doc(model: str, reg50: float, proto50: float, dataset: str = "mtfl") -> dict:
    run = {"layers": [1, 2, 3, 4], "metric": "nme", "n_pool": 100, "mean_shape_nme": 24.0,
           "summary": [{"method": "regressor", "shots": 50, "mean": reg50, "std": 0.5},
                       {"method": "prototype", "shots": 50, "mean": proto50, "std": 1.0}]}
    return {"dataset": dataset, "protocol": "mtfl-aflw", "metric": "nme", "model": model, "runs": [run]}


def test_compare_tabulates_models_and_their_change(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc("random-r18", 20.0, 25.0)))
    b.write_text(json.dumps(_doc("mtfl-r18", 15.0, 30.0)))
    assert main(["eval", "--compare", str(a), str(b), "--out", str(tmp_path), "--name", "cmp"]) == 0
    rows = [ln for ln in (tmp_path / "cmp.md").read_text().splitlines() if ln.startswith("|")]
    assert rows[0] == "| model | method | layers | 50 |"
    assert rows[2] == "| random-r18 | regressor | 1,2,3,4 | 20.00 ± 0.50 |"
    assert rows[5] == "| mtfl-r18 | prototype | 1,2,3,4 | 30.00 ± 1.00 |"
    assert rows[6] == "| mean shape | – | – | 24.00 |"
    # the change against the first model: 15/20 - 1 = -25 %, 30/25 - 1 = +20 %
    assert "| mtfl-r18 | regressor | 1,2,3,4 | -25.0 % |" in rows
    assert "| mtfl-r18 | prototype | 1,2,3,4 | +20.0 % |" in rows
    assert json.loads((tmp_path / "cmp.json").read_text())["models"] == ["random-r18", "mtfl-r18"]
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_compare_refuses_mixed_protocols_and_foreign_files(tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps(_doc("random-r18", 20.0, 25.0)))
    b.write_text(json.dumps(_doc("other", 20.0, 25.0, dataset="300w")))
    c.write_text("{}")
    for argv, match in [(["--compare", str(a), str(b)], "different datasets/protocols"),
                        (["--compare", str(c)], "has no 'runs'"),
                        ([], "needs --dataset and --root")]:
        assert main(["eval", *argv, "--out", str(tmp_path / "out")]) == 2
        assert match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_one_seed_shows_no_spread():
    run = {"layers": [1, 2], "metric": "nme", "n_pool": 30,
           "summary": [{"method": "regressor", "shots": 1, "mean": 30.0, "std": 0.0, "n": 1},
                       {"method": "regressor", "shots": "all", "mean": 10.123, "std": 0.0, "n": 1}]}
    md = markdown([run], title="t")
    assert "| regressor | 1,2 | 30.00 | 10.12 |" in md and "±" not in md and "one seed." in md
    run["summary"][0]["n"] = 3  # a mixed table keeps the spread where there is one
    md = markdown([run], title="t")
    assert "| regressor | 1,2 | 30.00 ± 0.00 | 10.12 |" in md and "mean ± std over seeds." in md
