"""The tiny demo bundle (data and models) shared by the pipeline and bundle-model tests: built once per session."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

GROUP = "demo-pipeline"
_BUILT: dict[str, float] = {}


def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toolkit home of its own (so other tests rebuilding the demo data never touch these models)."""
    return tmp_path_factory.getbasetemp() / "tiny-demo-pipeline-home"


def build_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Build the tiny demo bundle in :func:`tiny_home` (once per session); return its home and build seconds."""
    from toolkit.bundles import build_demo_bundle

    home = tiny_home(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EEG_TOOLKIT_HOME", str(home))
        start = time.perf_counter()
        build_demo_bundle(preset="tiny", seed=0)
        _BUILT.setdefault(str(home), time.perf_counter() - start)
    return home, _BUILT[str(home)]


def use_tiny(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point the cache at ``home`` and make ``tiny`` the demo bundle's preset (for in-process CLI calls)."""
    from toolkit.bundles import BUNDLES

    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(home))
    spec = BUNDLES["demo"]
    dataset = {**spec.components["dataset"], "preset": "tiny", "seed": 0}
    monkeypatch.setitem(BUNDLES, "demo", dataclasses.replace(spec, components={**spec.components, "dataset": dataset}))
