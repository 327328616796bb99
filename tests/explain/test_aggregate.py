"""Aggregation maths: channels, time courses, windows, regions, feature masks, batched attribution."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data.channels import REGIONS_63, THINGS_EEG_63
from toolkit.explain import (
    attribute,
    attribute_batched,
    channel_order,
    channel_scores,
    growing_windows,
    make_feature_mask,
    region_scores,
    resolve_groups,
    sliding_windows,
    summarize,
    time_course,
    window_indices,
    window_maps,
    window_scores,
)

from .conftest import CH_NAMES, TIMES

TIMES_250 = np.arange(250) / 250.0


def test_channel_and_time_reducers():
    attr = np.zeros((2, 3, 4))
    attr[0, 0] = [1, -1, 1, -1]
    attr[1, 0] = [1, 1, 1, 1]
    attr[:, 2, 3] = -4
    np.testing.assert_allclose(channel_scores(attr), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(channel_scores(attr, signed=True), [0.5, 0.0, -1.0])
    np.testing.assert_allclose(channel_scores(attr, per_trial=True), [[1, 0, 1], [1, 0, 1]])
    np.testing.assert_allclose(time_course(attr), [1 / 3, 1 / 3, 1 / 3, 5 / 3])
    np.testing.assert_allclose(time_course(attr, signed=True), [1 / 3, 0, 1 / 3, -4 / 3])
    np.testing.assert_allclose(time_course(attr, channels=[0]), [1, 1, 1, 1])
    np.testing.assert_allclose(channel_scores(attr[0]), [1.0, 0.0, 4 / 4])  # 2-D maps accepted


def test_windows_are_half_open_and_atm_shaped():
    np.testing.assert_array_equal(window_indices(TIMES_250, (0.2, 0.3)), np.arange(50, 75))  # ATM's 50:75
    assert growing_windows(TIMES_250)[0] == (0.0, 0.05) and growing_windows(TIMES_250)[-1] == (0.0, 1.0)
    assert len(growing_windows(TIMES_250)) == 15
    slide = sliding_windows(TIMES_250)
    assert slide[0] == (0.0, 0.1) and slide[-1] == (0.9, 1.0) and len(slide) == 10
    assert len(sliding_windows(TIMES_250, step=0.05)) == 19
    attr = np.zeros((3, 250))
    attr[1, 50:75] = 2.0
    np.testing.assert_allclose(window_maps(attr, TIMES_250, [(0.2, 0.3), (0.3, 0.4)]), [[0, 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(window_scores(attr, TIMES_250, [(0.2, 0.3)]), [2 / 3])


@pytest.mark.parametrize("window", [(-0.5, 0.1), (0.9, 1.2)])
def test_windows_outside_the_epoch_name_its_span(window):
    span = r"outside the epoch, which spans 0.000 to 1.000 s \(250 samples at 250 Hz\)"
    with pytest.raises(ToolkitError, match=span):
        window_indices(TIMES_250, window)


def test_bad_windows():
    with pytest.raises(ToolkitError, match="tmin < tmax"):
        window_indices(TIMES_250, (0.3, 0.2))
    with pytest.raises(ToolkitError, match="holds no sample"):
        window_indices(TIMES_250, (0.201, 0.203))
    with pytest.raises(ToolkitError, match="non-empty list"):
        window_maps(np.zeros((3, 250)), TIMES_250, [])
    with pytest.raises(ToolkitError, match="No 2000 ms window fits"):
        sliding_windows(TIMES_250, width=2.0)


def test_groups_default_regions_and_missing_channels():
    resolved = resolve_groups(THINGS_EEG_63)
    assert list(resolved) == list(REGIONS_63) and sum(len(v) for v in resolved.values()) == 63
    partial = resolve_groups(["Oz", "Cz", "Fp1", "M1"])
    assert {k: v.tolist() for k, v in partial.items()} == {
        "frontal": [2], "central": [1], "occipital": [0], "other": [3]
    }
    with pytest.raises(ToolkitError, match=r"'occipital' names channel\(s\) PO7, Iz that the data lack"):
        resolve_groups(CH_NAMES, {"occipital": ["Oz", "PO7", "Iz"]})
    with pytest.raises(ToolkitError, match="at least one channel"):
        resolve_groups(CH_NAMES, {"empty": []})


def test_region_scores_and_channel_order():
    attr = np.zeros((63, 10))
    occ = [THINGS_EEG_63.index(c) for c in REGIONS_63["occipital"]]
    attr[occ[0]] = 8.0
    scores = region_scores(attr, THINGS_EEG_63)
    assert scores["occipital"] == pytest.approx(1.0) and scores["frontal"] == 0.0
    assert region_scores(attr, THINGS_EEG_63, reduce="sum")["occipital"] == pytest.approx(8.0)
    order, spans = channel_order(THINGS_EEG_63)
    assert sorted(order.tolist()) == list(range(63))
    assert [s[0] for s in spans] == list(REGIONS_63)
    assert [THINGS_EEG_63[i] for i in order[spans[-1][1] : spans[-1][2]]] == list(REGIONS_63["occipital"])


def test_feature_mask_cells():
    fmask = make_feature_mask(CH_NAMES, TIMES, groups={"posterior": ["Oz", "O1", "O2"]}, windows=[(0.1, 0.2)])
    assert fmask.labels == ("posterior @ 100–200 ms", "posterior @ rest", "other @ 100–200 ms", "other @ rest")
    assert fmask.mask.shape == (8, 50) and set(np.unique(fmask.mask)) == {0, 1, 2, 3}
    assert fmask.mask[2, 15] == 0 and fmask.mask[2, 5] == 1 and fmask.mask[0, 15] == 2
    single = make_feature_mask(CH_NAMES, TIMES)
    assert single.n_features == 8 and (single.mask[3] == 3).all()


def test_summary_is_json_friendly():
    import json

    attr = np.random.default_rng(0).standard_normal((2, 8, 50))
    summary = summarize(attr, CH_NAMES, TIMES, windows=[(0.0, 0.25), (0.25, 0.5)], top=3)
    json.dumps(summary)
    assert len(summary["top_channels"]) == 3 and len(summary["window_scores"]) == 2
    assert summary["peak_latency_s"] in TIMES


def test_batched_equals_one_call_and_mean_is_global(toy, eeg, gallery):
    kw = dict(method="ig", image_embeds=gallery, normalize=False, n_steps=4)
    whole = attribute(toy, eeg, index=np.arange(6), baselines="mean", **kw)
    batched = attribute_batched(toy, eeg, index=np.arange(6), baselines="mean", batch_size=4, **kw)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    per_trial = attribute_batched(toy, eeg, index=np.arange(6), baselines=eeg, batch_size=4, **kw)
    assert np.abs(per_trial).max() == 0
    with pytest.raises(ToolkitError, match="batch_size"):
        attribute_batched(toy, eeg, index=np.arange(6), batch_size=0, **kw)
    with pytest.raises(ToolkitError, match="one per trial"):
        attribute_batched(toy, eeg, index=np.arange(4), **kw)
