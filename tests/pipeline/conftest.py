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
