"""Ground-truth validation of integrated gradients: models trained on simulated data, maps scored against the truth.

Two settings (:func:`toolkit.bench.explain_validation.simulated_validation`):

- default noise, ATM-S, averaged test trials: the informative channels must rank first (AUROC >= 0.8) and the time
  course must peak inside a simulated component's window. The informative channels are also the highest-amplitude
  ones here, so this checks the ranking and the plumbing, not learning (an untrained ATM-S scores about as high);
- discriminating (slow): strong anterior artefacts make the highest-amplitude channels uninformative; a trained NICE
  must rank the informative channels above chance and beat an untrained and a label-randomised NICE by a margin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit.bench.explain_validation import (
    DISCRIMINATING_MIN_AUROC,
    DISCRIMINATING_MIN_MARGIN,
    discriminating_met,
    simulated_validation,
)

pytestmark = pytest.mark.xdist_group("explain-validation")


def _with_threads(func, *args, **kwargs):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return func(*args, **kwargs)
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return _with_threads(simulated_validation, tmp_path_factory.mktemp("xval"), seed=0, epochs=12, n_steps=16)


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


def test_the_report_carries_timings_and_the_control(report):
    for key in ("simulate_s", "train_s", "attribute_s"):
        assert np.isfinite(report[key]) and report[key] >= 0
    assert report["setting"] == "default" and report["trials"] == "average" and report["encoder"] == "atm-s"
    # the default setting is not discriminating: amplitude alone ranks the informative channels first
    assert report["amplitude_channel_auroc"] > 0.9
    assert 0.0 <= report["untrained_channel_auroc"] <= 1.0 and "margin_vs_untrained" in report


@pytest.mark.slow
def test_learning_moves_the_map(tmp_path):
    disc = _with_threads(simulated_validation, tmp_path, setting="discriminating", seed=0, controls=True)
    assert disc["setting"] == "discriminating" and disc["trials"] == "single" and disc["encoder"] == "nice"
    # the setting is adversarial to maps that follow the input's amplitude ...
    assert disc["amplitude_channel_auroc"] < 0.5
    # ... the trained model learned the images, the label-randomised one did not ...
    assert disc["test_top1"] >= 5 * disc["test_chance"]
    assert disc["shuffled_test_top1"] <= 3 * disc["test_chance"]
    # ... and only the trained model's map ranks the informative channels first
    assert disc["channel_auroc"] >= DISCRIMINATING_MIN_AUROC, disc
    assert disc["margin_vs_untrained"] >= DISCRIMINATING_MIN_MARGIN, disc
    assert disc["margin_vs_shuffled"] >= DISCRIMINATING_MIN_MARGIN, disc
    assert discriminating_met(disc)
    assert disc["time_auroc"] >= 0.8 and disc["peak_in_component_window"]


def test_bad_settings_are_refused(tmp_path):
    from toolkit import ToolkitError

    with pytest.raises(ToolkitError, match="setting is 'loud'"):
        simulated_validation(tmp_path, setting="loud")
    with pytest.raises(ToolkitError, match="trials is 'every'"):
        simulated_validation(tmp_path, trials="every")
    with pytest.raises(ToolkitError, match="Unknown control"):
        simulated_validation(tmp_path, controls=("permuted",))
