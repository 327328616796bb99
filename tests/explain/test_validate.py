"""Validation helpers: AUROC, peak latency, comparison with a simulator-style ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.explain import attribute, channel_auroc, compare_with_ground_truth, peak_latency

from .conftest import CH_NAMES, N_CHANS, N_TIMES, READ_CHANNEL, SFREQ, TIMES


def test_channel_auroc_matches_definition():
    mask = np.array([True, True, False, False, False])
    assert channel_auroc([5, 4, 3, 2, 1], mask) == 1.0
    assert channel_auroc([1, 2, 3, 4, 5], mask) == 0.0
    assert channel_auroc([1, 1, 1, 1, 1], mask) == 0.5
    rng = np.random.default_rng(0)
    scores, labels = rng.standard_normal(40), rng.random(40) < 0.3
    sklearn = pytest.importorskip("sklearn.metrics")
    assert channel_auroc(scores, labels) == pytest.approx(sklearn.roc_auc_score(labels, scores))
    assert channel_auroc([3, 2, 1], [1, 0, 0]) == 1.0  # 0/1 masks accepted


def test_channel_auroc_bad_inputs():
    with pytest.raises(ToolkitError, match="marks 0 of 3"):
        channel_auroc([1, 2, 3], [False, False, False])
    with pytest.raises(ToolkitError, match="same length"):
        channel_auroc([1, 2, 3], [True, False])
    with pytest.raises(ToolkitError, match="boolean"):
        channel_auroc([1, 2, 3], [0.2, 0.5, 0.1])


def test_peak_latency():
    course = np.exp(-((TIMES - 0.17) ** 2) / 0.001)
    assert peak_latency(course, TIMES) == pytest.approx(0.17)
    assert peak_latency(course, TIMES, window=(0.3, 0.4)) == pytest.approx(0.3)
    with pytest.raises(ToolkitError, match="outside the epoch"):
        peak_latency(course, TIMES, window=(0.3, 0.9))


def _truth() -> dict:
    # simulator-style ground truth: informative channel 2 (Oz) and samples 10-19 (100-190 ms), 63-channel names
    mask = np.zeros(N_CHANS, dtype=bool)
    mask[READ_CHANNEL] = True
    time_score = np.zeros(N_TIMES)
    time_score[10:20] = np.hanning(12)[1:-1]
    return {
        "ch_names": CH_NAMES,
        "sfreq": SFREQ,
        "informative_channels_mask": mask,
        "channel_score": mask * 1.0 + 0.01 * np.arange(N_CHANS),
        "time_score": time_score,
        "informative_samples_mask": time_score >= 0.05,
        "components": [{"name": "P1", "latency_s": 0.1}, {"name": "N170", "latency_s": 0.17}],
    }


def test_toy_model_validates_perfectly(toy, eeg, gallery):
    attr = attribute(toy, eeg, method="ig", image_embeds=gallery, index=np.arange(6), normalize=False, n_steps=4)
    report = compare_with_ground_truth(attr, _truth(), ch_names=CH_NAMES, times=TIMES)
    assert report["channel_auroc"] == 1.0
    assert report["time_auroc"] == 1.0
    assert 0.1 <= report["peak_latency_s"] < 0.2
    assert report["nearest_component"]["name"] in ("P1", "N170")
    assert report["n_channels"] == N_CHANS and report["n_times"] == N_TIMES


def test_ground_truth_alignment_by_name_and_time(toy, eeg, gallery):
    attr = attribute(toy, eeg, method="saliency", image_embeds=gallery, index=np.arange(6), normalize=False)
    # the maps hold the channels in another order and only samples 5-44
    perm = np.array([7, 6, 5, 4, 3, 2, 1, 0])
    report = compare_with_ground_truth(attr[:, perm, 5:45], _truth(), ch_names=[CH_NAMES[i] for i in perm],
                                       times=TIMES[5:45])
    assert report["channel_auroc"] == 1.0 and report["n_times"] == 40
    with pytest.raises(ToolkitError, match="lacks 'time_score'"):
        compare_with_ground_truth(attr, {"informative_channels_mask": _truth()["informative_channels_mask"]},
                                  ch_names=CH_NAMES, times=TIMES)
