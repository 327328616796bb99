"""The import pipeline on real EEG: the EEG-ExPy visual N170 recordings (Muse, TP9/AF7/AF8/TP10, 256 Hz).

Six ~2 minute runs of faces (marker 2) and houses (marker 1). The README of the data states 1174 markers, of which
1141 epochs survive a 100 µV rejection (1-30 Hz, -0.1 ... 0.6 s), and face/house differences over TP9/TP10 around
0.2 s. The module imports the six files once (about 1 s) and one run twice more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from toolkit import ToolkitError
from toolkit.data import import_recording, import_recordings
from toolkit.data.channels import THINGS_EEG_63

EVENT_ID = {"house": 1, "face": 2}
MUSE = ["TP9", "AF7", "AF8", "TP10"]


@pytest.fixture(scope="module")
def recordings(n170_dir: Path) -> list[Path]:
    files = sorted((n170_dir / "recordings").glob("*.csv"))
    if len(files) != 6:
        pytest.skip(f"the six N170 recordings are not in {n170_dir}")
    return files


@pytest.fixture(scope="module")
def native(recordings):
    """All six runs on their own channels: 1-30 Hz, -0.1 ... 0.6 s, baseline before onset, 100 µV rejection."""
    return import_recordings(
        recordings, target="native", event_id=EVENT_ID, l_freq=1.0, h_freq=30.0, reject=100e-6, subject="sub-0001"
    )


def test_events_found_per_code(native):
    files = native.report["files"]
    assert len(files) == 6
    for f in files:
        assert f["sfreq"] == 256.0  # from the (ms-rounded, jittered) timestamps; their median step says 250 Hz
        assert f["marker_column"] == "Marker0" and f["other_channels"] == {"Right AUX": "misc"}
        assert set(f["events_per_code"]) == {"1", "2"}
        assert all(85 <= n <= 110 for n in f["events_per_code"].values())  # ~200 images per 2-minute run
    house = sum(f["events_per_code"]["1"] for f in files)
    face = sum(f["events_per_code"]["2"] for f in files)
    assert (house, face) == (591, 583) and house + face == 1174  # the README's 1174 markers


def test_rejection_matches_the_dataset_notes(native):
    kept = sum(f["epochs_kept"] for f in native.report["files"])
    assert kept == 1141  # the README: 1141 epochs survive the 100 µV rejection
    assert all(set(f["epochs_dropped"]) <= {"amplitude"} for f in native.report["files"])
    ts = native.trials
    assert ts.n_repetitions == min(c["epochs"] for c in native.report["conditions"].values())
    assert ts.ch_names == MUSE and ts.sfreq == 256.0 and ts.concept_names() == ["house", "face"]
    assert ts.times[0] == pytest.approx(-0.1, abs=1 / 256) and ts.times[-1] == pytest.approx(0.6, abs=1 / 256)
    # volts, and the rejection bound holds on every kept epoch
    ptp = np.ptp(ts.data, axis=-1)
    assert ptp.max() <= 100e-6 and np.median(ptp) > 5e-6


def test_n170_face_minus_house_at_temporal_sites(native):
    """Faces give a more negative potential than houses over TP9/TP10 at 130-250 ms (the N170 on a Muse)."""
    ts = native.trials
    t = ts.times
    tp = [ts.ch_names.index("TP9"), ts.ch_names.index("TP10")]
    x = ts.data[:, :, tp].mean(axis=2)  # (condition, repetition, time)
    diff = x[1].mean(axis=0) - x[0].mean(axis=0)
    tstat = stats.ttest_ind(x[1], x[0], axis=0).statistic
    early = (t >= 0.0) & (t <= 0.35)  # search window of the N170
    k = np.flatnonzero(early)[np.argmin(diff[early])]
    assert 0.13 <= t[k] <= 0.25, f"most negative face-house difference at {t[k]:.3f} s"
    assert diff[k] < -1e-6 and tstat[k] < -3.0
    # the effect is larger over the temporal sites than over the frontal ones at that latency
    af = [ts.ch_names.index("AF7"), ts.ch_names.index("AF8")]
    diff_af = ts.data[1][:, af].mean(axis=(0, 1)) - ts.data[0][:, af].mean(axis=(0, 1))
    assert abs(diff[k]) > 2 * abs(diff_af[k])
    # and nothing of the kind before the stimulus could be seen by the eye
    assert np.abs(tstat[t < 0]).max() < 3.0


def test_things63_target_on_a_real_run(recordings):
    res = import_recording(recordings[0], target="things-eeg-63", event_id=EVENT_ID)
    ts, ch = res.trials, res.report["channels"]
    assert ts.data.shape == (2, 89, 63, 250) and ts.sfreq == 250.0
    np.testing.assert_allclose(ts.times, np.arange(250) / 250.0, atol=1e-9)
    assert ch["copied"] == ["AF7", "AF8", "TP9", "TP10"] and not ch["interpolated"] and not ch["dropped"]
    assert sorted(ch["zero_filled"]) == sorted(c for c in THINGS_EEG_63 if c not in MUSE)
    mask = ts.extra["channel_mask"]
    assert [ts.ch_names[i] for i in np.flatnonzero(mask)] == ["AF7", "AF8", "TP9", "TP10"]
    assert not ts.data[:, :, ~mask].any() and np.abs(ts.data[:, :, mask]).mean() > 1e-6
    assert res.report["resample"] == {"from_hz": [256.0], "to_hz": 250.0,
                                      "method": "MNE polyphase on the continuous recording"}
    assert res.report["files"][0]["events_per_code"] == {"1": 108, "2": 89}
    assert res.report["conditions"]["house"]["left_out"] == 19


def test_things17_target_has_no_muse_channel(recordings):
    with pytest.raises(ToolkitError, match=r"None of the channels of .*subject0001.*\['TP9', 'AF7', 'AF8', 'TP10'\]"):
        import_recording(recordings[0], target="things-eeg-17", event_id=EVENT_ID)


def test_imported_trials_go_to_mne_with_their_event_codes(native):
    ep = native.trials.to_epochs(average=True)
    assert ep.event_id == EVENT_ID and len(ep) == 2
    assert ep.get_montage() is not None  # the Muse sites are 10-05 names
    evoked = ep["face"].average()
    assert evoked.ch_names == MUSE and evoked.nave == 1
