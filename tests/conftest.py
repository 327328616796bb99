"""Shared test fixtures: isolated cache, no progress bars, headless plotting, figure clean-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Passive OpenMP waiting, as `python -m toolkit` sets it (see toolkit/cli.py): spinning threads on the 2 shared cores
# of CI slow torch down several-fold. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["EEG_TOOLKIT_NO_PROGRESS"] = "1"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the toolkit's cache at a per-session temporary folder so tests never touch the user's cache."""
    os.environ["EEG_TOOLKIT_HOME"] = str(tmp_path_factory.mktemp("toolkit-home"))


@pytest.fixture
def one_thread():
    """Run a test's tiny models on one torch thread: on a busy 2-core machine thread hand-offs dominate."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's ``../shared`` folder (reference fixtures and real recordings)."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def n170_dir(shared_dir: Path) -> Path:
    """The real EEG-ExPy visual N170 recordings (Muse, 4 channels, 256 Hz)."""
    return shared_dir / "data" / "eegexpy-visual-n170"
