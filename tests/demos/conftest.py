"""A small real store (two subjects, train and test, with stimulus images) for the app tests."""

from __future__ import annotations

import pytest

from ..viz.helpers import make_trialset


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """``(store, images_root)``: a store written with :func:`toolkit.data.store.write_store` and its images."""
    from toolkit.data.store import open_store, write_store

    root = tmp_path_factory.mktemp("app-data")
    sets = []
    for idx, subject in enumerate(("sub-01", "sub-02")):
        sets.append(
            make_trialset(n_cond=4, n_rep=5, seed=idx, split="test", subject=subject, images_root=root / "test_images")
        )
        sets.append(
            make_trialset(
                n_cond=6,
                n_rep=2,
                seed=10 + idx,
                split="train",
                subject=subject,
                images_root=root / "training_images",
            )
        )
    return open_store(write_store(root / "store", sets)), root


@pytest.fixture
def trials_tab(small_store):
    from demos.trials_tab import TrialsTab
    from toolkit.viz import TrialBrowser

    store, root = small_store
    return TrialsTab(TrialBrowser(store, images_root=root))
