"""Fixtures of the pipeline tests: one tiny demo bundle per session."""

from __future__ import annotations

import pytest

from ._tiny import build_tiny, use_tiny


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """(home, build seconds) of the tiny demo bundle."""
    return build_tiny(tmp_path_factory)


@pytest.fixture
def tiny_pipe(tiny_build, monkeypatch):
    """The tiny bundle's pipeline, with the cache and the demo preset pointed at it for this test."""
    from toolkit.pipeline import load_pipeline

    use_tiny(monkeypatch, tiny_build[0])
    return load_pipeline("demo")


@pytest.fixture(scope="session")
def real_parts(tmp_path_factory):
    """The tiny parts of a fake atm-things-eeg bundle, with its manifest written by ``bundle init`` (once)."""
    from toolkit.cli import main

    from ._real import real_parts as build

    parts = build(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        _use_real(mp, parts)
        assert main(parts.init_args()) == 0
    return parts


@pytest.fixture(scope="session")
def _real_pipe_shared(real_parts):
    from toolkit.pipeline import load_pipeline

    with pytest.MonkeyPatch.context() as mp:
        _use_real(mp, real_parts)
        return load_pipeline("atm-things-eeg")


@pytest.fixture
def real_pipe(_real_pipe_shared, real_parts, monkeypatch):
    """The fake real bundle's pipeline (shared: its models load once), with the environment pointed at it."""
    _use_real(monkeypatch, real_parts)
    return _real_pipe_shared




def _use_real(mp, parts):
    from ._real import use_real

    use_real(mp, parts)
