"""Fixtures for the plotting tests."""

from __future__ import annotations

import pytest

from toolkit.data import TrialSet

from .helpers import make_trialset


@pytest.fixture
def trialset() -> TrialSet:
    return make_trialset()


@pytest.fixture
def no_pyplot_figures():
    """Fail if a test leaves pyplot figures behind (figures built without show=True must be bare)."""
    import matplotlib.pyplot as plt

    plt.close("all")
    yield
    assert plt.get_fignums() == []
