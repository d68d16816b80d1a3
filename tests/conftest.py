"""Shared fixtures. Real MTFL data lives in ../shared/data/mtfl beside the repository (HYPERLAND_MTFL overrides),
DeepLabCut's openfield example in ../shared/data/dlc-openfield (HYPERLAND_OPENFIELD)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", REPO.parent / "shared" / "data" / "mtfl"))
OPENFIELD = Path(os.environ.get("HYPERLAND_OPENFIELD", REPO.parent / "shared" / "data" / "dlc-openfield"))

# One thread: on this shared 2-core machine, 2 OpenMP threads spin against other processes and run
# convolutions ~40x slower than one thread (measured 40 ms vs 1 ms for a 64-channel 3x3 conv).
torch.set_num_threads(1)
# The same for the BLAS under numpy/scikit-learn (the cell classifier's LogisticRegression): measured 14x faster
# single-threaded here (a 6-frame openfield head fit: 9 s instead of 128 s).
threadpool_limits(1)


@pytest.fixture(scope="session")
def mtfl_root() -> Path:
    if not (MTFL / "testing.txt").is_file():
        pytest.fail(f"MTFL data not found at {MTFL}; set HYPERLAND_MTFL or place ../shared beside the repo.")
    return MTFL


@pytest.fixture(scope="session")
def openfield_csv() -> Path:
    """DeepLabCut's openfield example labels (116 frames, 4 parts); HYPERLAND_OPENFIELD overrides the project."""
    path = OPENFIELD / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv"
    if not path.is_file():
        pytest.fail(f"DeepLabCut openfield example not found at {OPENFIELD}; set HYPERLAND_OPENFIELD or place "
                    "../shared beside the repo.")
    return path


@pytest.fixture(scope="session")
def r18():
    import hyperland

    return hyperland.load("random-r18")


@pytest.fixture(scope="session")
def aflw_images(mtfl_root: Path) -> list[Path]:
    """Eight real AFLW test faces (150x150 JPEGs)."""
    return sorted((mtfl_root / "AFLW").glob("*.jpg"))[:8]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running loopback hub server (tests/hubserver.py); HF_ENDPOINT points at it and the default HF cache is a
    fresh tmp folder."""
    import huggingface_hub.constants
    from hubserver import HubServer

    server = HubServer(tmp_path / "hub-root").start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    yield server
    server.stop()
