"""Fixtures of the app tests: a small real store (two subjects, train and test, with stimulus images), the app served
on a free local port, and Debian's Chromium driven by Playwright."""

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


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(small_store):
    """The app on a free local port, served from a background thread for the module's tests."""
    from demos.app import build_app, launch

    store, root = small_store
    app = build_app("demo", store=store, images_root=root)
    url = launch(app, port=free_port(), block=False, quiet=True)
    yield url
    app.close()


@pytest.fixture
def chromium():
    """A headless Debian Chromium (Playwright with ``executable_path``; nothing downloaded), closed afterwards."""
    import os
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip("Chromium is not installed (make browser)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """The tiny demo bundle's :class:`~toolkit.pipeline.DecodingPipeline` (built once per session, shared with the
    pipeline tests' builder)."""
    from tests.pipeline._tiny import build_tiny, use_tiny
    from toolkit.pipeline import load_pipeline

    home, _ = build_tiny(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        use_tiny(mp, home)
        return load_pipeline("demo", build=False)


@pytest.fixture(scope="session")
def decoding_app(tiny_pipeline):
    """``(url, app)``: the whole app (every tab) on the tiny bundle, served once for the session's decoding tests."""
    from demos.app import build_app, launch

    app = build_app("demo", pipeline=tiny_pipeline)
    url = launch(app, port=free_port(), block=False, quiet=True)
    yield url, app
    app.close()
