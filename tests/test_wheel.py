"""The built, non-editable wheel carries weights_manifest.json and reads it from the installed package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_root_manifest_is_the_package_manifest():
    root, pkg = REPO / "weights_manifest.json", REPO / "hyperland" / "weights_manifest.json"
    assert root.is_file() and pkg.is_file()
    assert json.loads(root.read_text()) == json.loads(pkg.read_text())
    if root.is_symlink():
        assert root.resolve() == pkg.resolve()


def test_installed_wheel_reads_packaged_manifest(tmp_path):
    src = tmp_path / "src"  # build from a copy so no build/ folder lands in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "hyperland", src / "hyperland", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                   check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("hyperland-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hyperland/weights_manifest.json" in names and "hyperland/py.typed" in names
    for asset in ("models/mtfl-dense-r18/model.safetensors", "models/mtfl-dense-r18/config.json", "models/mtfl-dense-r18/README.md",
                  "faces/train.csv", "faces/test.csv", "faces/0001-image20056.jpg"):
        assert f"hyperland/assets/{asset}" in names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, cwd=tmp_path)

    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import hyperland; "
        "from hyperland.assets import faces_dir; m = hyperland.load(); "
        "print(json.dumps({'file': hyperland.__file__, 'models': hyperland.list_models(), "
        "'n': len(hyperland.load_manifest()), 'version': hyperland.__version__, 'default': m.name, "
        "'fingerprint': m.fingerprint, 'faces': str(faces_dir()), 'n_faces': len(list(faces_dir().glob('*.jpg')))}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    res = subprocess.run([sys.executable, "-c", code, str(target)], cwd=outside, env=env, check=True,
                         capture_output=True, text=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).resolve().is_relative_to(target.resolve())
    expected = json.loads((REPO / "hyperland" / "weights_manifest.json").read_text())["models"]
    assert got["n"] == len(expected)
    assert got["models"] == {name: e["status"] for name, e in sorted(expected.items())}
    # the default model loads offline from the installed wheel, identical to the checkout's copy
    import hyperland

    assert got["default"] == "mtfl-dense-r18" and got["fingerprint"] == hyperland.load().fingerprint
    assert Path(got["faces"]).resolve().is_relative_to(target.resolve()) and got["n_faces"] == 40
    assert not (tmp_path / "hf-home").exists()
