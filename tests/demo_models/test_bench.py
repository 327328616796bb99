"""The demo_models benchmark suite is registered and its latency benchmark runs without a trained bundle."""

from __future__ import annotations

import pytest

import toolkit.bench.demo_models  # noqa: F401 - registers the suite (other suites may be missing in a partial tree)
from toolkit.bench import _REGISTRY

pytestmark = pytest.mark.xdist_group("demo-models")


def test_suite_is_registered():
    from toolkit.bench import _SUITES

    assert "demo_models" in _SUITES
    names = set(_REGISTRY)
    assert {"demo_models.reconstruct_caption", "demo_models.train_demo"} <= names


def test_reconstruct_caption_reports_its_figures(monkeypatch):
    from toolkit.bench import demo_models

    monkeypatch.setattr(demo_models, "_REPEATS", 2)  # the figures, not their precision, are tested here
    monkeypatch.setattr(demo_models, "_THREADS", 1)
    figures = demo_models.reconstruct_caption()
    assert figures["image_size"] == [256, 256] and figures["caption_words"] == 4
    assert figures["encoder_median_ms"] > 0 and figures["decoder_median_ms"] > 0 and figures["median_ms"] > 0
    assert figures["target_ms"] == 500.0 and isinstance(figures["met_target"], bool)
