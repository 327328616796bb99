"""Ground-truth validation of integrated gradients: ATM-S trained on simulated data, maps scored against the truth.

The simulator records which channels carry image information and the latencies of its ERP components; a small
ATM-S trained with the toolkit trainer (80 training concepts, 12 epochs, a few seconds on two cores) must rank the
informative channels first (AUROC >= 0.8) and peak inside a simulated component's informative window.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit.bench.explain_validation import simulated_validation

pytestmark = pytest.mark.xdist_group("explain-validation")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return simulated_validation(tmp_path_factory.mktemp("xval"), seed=0, epochs=12, n_steps=16)
    finally:
        torch.set_num_threads(previous)


def test_the_encoder_learned_the_images(report):
    assert report["test_top1"] is not None and report["test_top1"] >= 3 * report["test_chance"]


def test_informative_channels_rank_first(report):
    assert report["n_channels"] == 63 and 0 < report["n_informative_channels"] < 63
    assert report["channel_auroc"] >= 0.8
    assert report["channel_spearman"] > 0.5


def test_time_course_peaks_at_a_simulated_component(report):
    assert report["peak_in_component_window"]
    assert report["time_auroc"] >= 0.8
    latencies = [c["latency_s"] for c in report["components"]]
    assert report["nearest_component"]["latency_s"] in latencies
    assert report["nearest_component"]["distance_s"] <= 0.05
    assert 0.05 <= report["peak_latency_s"] <= 0.4  # P1 ... P300, never the baseline or the epoch's tail


def test_the_report_carries_timings(report):
    for key in ("simulate_s", "train_s", "attribute_s"):
        assert np.isfinite(report[key]) and report[key] >= 0
    assert "untrained_channel_auroc" in report
