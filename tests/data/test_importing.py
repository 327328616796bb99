"""Bring-your-own-EEG import: every reader format, targets, channel mapping, the report, bad input and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from toolkit import ToolkitError
from toolkit.data import import_recording, import_recordings
from toolkit.data._montage import montage_positions, plan_channels
from toolkit.data.channels import THINGS_EEG_17, THINGS_EEG_63
from toolkit.data.importing import TARGETS

CH6 = ["Fp1", "Fz", "Cz", "Pz", "O1", "O2"]
PEAK_S = 0.2  # latency of the injected response
AMP = {1: 10e-6, 2: -5e-6}  # peak amplitude per event code (volts)
EVENT_ID = {"house": 1, "face": 2}


def _recording(ch_names=CH6, sfreq=250.0, duration=29.0, weights=None, noise=0.3e-6, seed=0):
    """Continuous data with a Gaussian response (peak at 0.2 s) to events every 1.25 s; codes alternate 1, 2.

    29 s hold 22 events (11 per code); responses do not overlap the -0.2 ... 1.0 s epochs of other events.
    """
    n = round(duration * sfreq)
    t = np.arange(n) / sfreq
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(ch_names), n)) * noise
    w = np.ones(len(ch_names)) if weights is None else np.asarray(weights)
    onsets = np.arange(int(1.0 * sfreq), n - int(1.5 * sfreq), int(1.25 * sfreq))
    codes = np.where(np.arange(onsets.size) % 2 == 0, 1, 2)
    for onset, code in zip(onsets, codes):
        bump = AMP[code] * np.exp(-0.5 * ((t - t[onset] - PEAK_S) / 0.03) ** 2)
        data += w[:, None] * bump[None]
    return data, onsets, codes


def _raw_with_annotations(sfreq=250.0, names=("house", "face")) -> mne.io.RawArray:
    data, onsets, codes = _recording(sfreq=sfreq)
    raw = mne.io.RawArray(data, mne.create_info(CH6, sfreq, "eeg"), verbose="error")
    labels = [names[c - 1] for c in codes]
    raw.set_annotations(mne.Annotations(onsets / sfreq, 0.0, labels))
    return raw


def _write_csv(path: Path, *, sfreq=256.0, marker="Marker0", jitter=True, extra_cols=True, duration=29.0) -> Path:
    data, onsets, codes = _recording(["TP9", "AF7", "AF8", "TP10"], sfreq=sfreq, duration=duration)
    n = data.shape[1]
    stamps = 1000.0 + np.arange(n) / sfreq
    if jitter:  # like the Muse: millisecond-rounded, jittered timestamps (median step 4 ms at 256 Hz)
        stamps = np.round(stamps + np.random.default_rng(1).normal(0, 0.002, n), 3)
    cols = {"timestamps": stamps}
    for i, name in enumerate(["TP9", "AF7", "AF8", "TP10"]):
        cols[name] = np.round(data[i] * 1e6, 3)  # microvolts
    if extra_cols:
        cols["Right AUX"] = np.random.default_rng(2).normal(0, 50, n)
    if marker:
        m = np.zeros(n, dtype=int)
        m[onsets] = codes
        cols[marker] = m
    pd.DataFrame(cols).to_csv(path, index=False)
    return path


def _check_erp(trials, sfreq, *, channel="Cz", scale=1.0, tol=0.12):
    """The average of each condition peaks at 0.2 s (within 2 samples: the top is flat) with the injected amplitude."""
    assert trials.n_conditions == 2
    ch = trials.ch_names.index(channel)
    for cond, code in enumerate((1, 2)):
        erp = trials.data[cond, :, ch].mean(axis=0)
        k = int(np.argmax(np.abs(erp)))
        assert abs(trials.times[k] - PEAK_S) <= 2.0 / sfreq + 1e-9
        assert erp[k] == pytest.approx(AMP[code] * scale, rel=tol)


# -- formats ----------------------------------------------------------------------------------------------------
def test_fif_with_stim_channel(tmp_path):
    data, onsets, codes = _recording()
    stim = np.zeros((1, data.shape[1]))
    stim[0, onsets] = codes
    info = mne.create_info([*CH6, "STI 014"], 250.0, [*["eeg"] * 6, "stim"])
    path = tmp_path / "rec_raw.fif"
    mne.io.RawArray(np.vstack([data, stim]), info, verbose="error").save(path, verbose="error")
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=None)
    ts = res.trials
    assert ts.data.shape[:3] == (2, 11, 6) and ts.data.dtype == np.float32
    assert ts.ch_names == CH6 and ts.sfreq == 250.0 and ts.dataset == "imported" and ts.split == "import"
    assert ts.times[0] == pytest.approx(-0.1) and ts.times[-1] == pytest.approx(0.6)
    assert ts.concept_names() == ["house", "face"]
    f = res.report["files"][0]
    assert f["format"] == "fif" and f["events_per_code"] == {"1": 11, "2": 11}
    assert "stim channel" in f["events_source"]
    _check_erp(ts, 250.0)


@pytest.mark.parametrize("ext", ["edf", "bdf", "set"])
def test_edf_bdf_eeglab_with_named_annotations(tmp_path, ext):
    # EDF needs the `edfio` package for export and EEGLAB `eeglabio` (test extra); reading needs neither.
    pytest.importorskip("eeglabio" if ext == "set" else "edfio")
    path = tmp_path / f"rec.{ext}"
    mne.export.export_raw(path, _raw_with_annotations(), verbose="error")
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=None)
    assert res.report["files"][0]["format"] == {"edf": "edf", "bdf": "bdf", "set": "eeglab"}[ext]
    assert res.report["files"][0]["events_source"] == "annotations"
    assert res.report["conditions"]["house"]["code"] == 1 and res.report["conditions"]["face"]["epochs"] == 11
    _check_erp(res.trials, 250.0, tol=0.15)


def test_named_annotations_need_names_and_numeric_ones_keep_their_codes(tmp_path):
    path = tmp_path / "named_raw.fif"
    _raw_with_annotations().save(path, verbose="error")
    # MNE numbers named annotations by sort order (face=1, house=2): matching codes would swap the conditions
    with pytest.raises(ToolkitError, match=r"named_raw\.fif' marks its events by name \('face', 'house'\)"):
        import_recording(path, target="native", event_id={"h": 1, "f": 2})
    res = import_recording(path, target="native", l_freq=None)
    assert res.trials.concept_names() == ["face", "house"]
    # integer descriptions keep their value ("10" is code 10, not its sort position)
    path = tmp_path / "numeric_raw.fif"
    _raw_with_annotations(names=("10", "2")).save(path, verbose="error")
    res = import_recording(path, target="native", event_id={"house": 10, "face": 2}, l_freq=None)
    assert res.report["files"][0]["events_per_code"] == {"2": 11, "10": 11}
    _check_erp(res.trials, 250.0)


def test_brainvision_stimulus_markers(tmp_path):
    pytest.importorskip("pybv")  # BrainVision export (test extra); reading needs nothing
    raw = _raw_with_annotations(names=("Stimulus/S  1", "Stimulus/S  2"))
    path = tmp_path / "rec.vhdr"
    mne.export.export_raw(path, raw, verbose="error")
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=None)
    assert res.report["files"][0]["format"] == "brainvision"
    assert res.report["files"][0]["events_per_code"] == {"1": 11, "2": 11}
    _check_erp(res.trials, 250.0)
    # without event_id the conditions are named by the markers
    res = import_recording(path, target="native", l_freq=None)
    assert res.trials.concept_names() == ["Stimulus/S  1", "Stimulus/S  2"]


def test_brainvision_comment_markers_match_event_names(tmp_path):
    pytest.importorskip("pybv")
    path = tmp_path / "named.vhdr"
    mne.export.export_raw(path, _raw_with_annotations(), verbose="error")  # written as "Comment/house"
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=None)
    assert res.report["conditions"]["house"]["epochs"] == 11


def test_csv_with_markers_timestamps_and_aux(tmp_path):
    path = _write_csv(tmp_path / "muse.csv")
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=None)
    f = res.report["files"][0]
    # the median step of ms-rounded jittered stamps says 250 Hz; the fit gives the true 256 Hz
    assert f["sfreq"] == 256.0 and f["timestamps"]["median_step_s"] == pytest.approx(0.004, abs=1e-6)
    assert f["marker_column"] == "Marker0" and f["unit"] == "uV"
    assert f["other_channels"] == {"Right AUX": "misc"}
    assert res.trials.ch_names == ["TP9", "AF7", "AF8", "TP10"]
    _check_erp(res.trials, 256.0, channel="TP9", tol=0.05)  # µV in the file, volts out


def test_csv_without_timestamps_needs_sfreq(tmp_path):
    path = _write_csv(tmp_path / "plain.csv", jitter=False)
    df = pd.read_csv(path).drop(columns="timestamps")
    df.to_csv(path, index=False)
    with pytest.raises(ToolkitError, match=r"plain\.csv.*no timestamps column.*--sfreq"):
        import_recording(path, target="native", l_freq=None)
    res = import_recording(path, target="native", l_freq=None, sfreq=256.0, event_id=EVENT_ID)
    assert res.trials.sfreq == 256.0


def test_csv_timestamps_in_milliseconds(tmp_path):
    path = _write_csv(tmp_path / "ms.csv")
    df = pd.read_csv(path)
    df["timestamps"] = df["timestamps"] * 1000.0
    df.to_csv(path, index=False)
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=None)
    f = res.report["files"][0]
    assert f["sfreq"] == 256.0 and f["timestamps"]["unit"] == "ms" and f["timestamps"]["gaps_over_100ms"] == 0


# -- targets and channel mapping -------------------------------------------------------------------------------
def _cap_recording(tmp_path, missing=("Cz", "CPz", "Pz"), sfreq=500.0) -> tuple[Path, dict]:
    """A 10-10 cap minus ``missing``, whose response is a smooth (linear) field over the head."""
    names = [c for c in THINGS_EEG_63 if c not in missing]
    pos = montage_positions(THINGS_EEG_63)
    field = {c: 1.0 + 8.0 * pos[c][1] + 5.0 * pos[c][2] for c in THINGS_EEG_63}  # front-back and up-down gradient
    data, onsets, codes = _recording(names, sfreq=sfreq, weights=[field[c] for c in names], noise=0.0)
    stim = np.zeros((1, data.shape[1]))
    stim[0, onsets] = codes
    info = mne.create_info([*names, "STI 014"], sfreq, [*["eeg"] * len(names), "stim"])
    path = tmp_path / "cap_raw.fif"
    mne.io.RawArray(np.vstack([data, stim]), info, verbose="error").save(path, verbose="error")
    return path, field


def test_things63_copies_interpolates_and_resamples(tmp_path):
    path, field = _cap_recording(tmp_path)
    res = import_recording(path, target="things-eeg-63", event_id=EVENT_ID, l_freq=None)
    ts = res.trials
    assert ts.data.shape == (2, 11, 63, 250) and ts.ch_names == list(THINGS_EEG_63)
    assert ts.sfreq == 250.0
    np.testing.assert_allclose(ts.times, np.arange(250) / 250.0, atol=1e-9)  # the THINGS grid, 0 ... 0.996 s
    ch = res.report["channels"]
    assert sorted(ch["interpolated"]) == ["CPz", "Cz", "Pz"] and not ch["zero_filled"] and not ch["dropped"]
    assert len(ch["copied"]) == 60
    assert res.report["resample"]["from_hz"] == [500.0] and res.report["resample"]["to_hz"] == 250.0
    assert ts.extra["channel_mask"].all() and ts.extra["import_report"] is res.report
    # the interpolated channels follow the smooth field (spherical splines from the 60 recorded ones)
    k = int(np.argmin(np.abs(ts.times - PEAK_S)))
    avg = ts.data[0, :, :, k].mean(axis=0)
    for name in ("Cz", "CPz", "Pz"):
        assert avg[ts.ch_names.index(name)] == pytest.approx(AMP[1] * field[name], rel=0.1)
    _check_erp(ts, 250.0, channel="FCz", scale=field["FCz"])


def test_things17_window_and_rate(tmp_path):
    path, _ = _cap_recording(tmp_path)
    res = import_recording(path, target="things-eeg-17", event_id=EVENT_ID, l_freq=None)
    ts = res.trials
    assert ts.data.shape == (2, 11, 17, 100) and ts.ch_names == list(THINGS_EEG_17) and ts.sfreq == 100.0
    np.testing.assert_allclose(ts.times, -0.2 + np.arange(100) / 100.0, atol=1e-9)
    assert res.report["channels"]["interpolated"] == ["Pz"]
    assert len(res.report["channels"]["dropped"]) == 60 - 16


def test_sparse_headset_zero_fills_and_masks(tmp_path):
    path = _write_csv(tmp_path / "muse.csv")
    res = import_recording(path, target="things-eeg-63", event_id=EVENT_ID, l_freq=None)
    ts, ch = res.trials, res.report["channels"]
    assert ch["copied"] == ["AF7", "AF8", "TP9", "TP10"]  # target order
    assert not ch["interpolated"] and len(ch["zero_filled"]) == 59
    mask = ts.extra["channel_mask"]
    assert mask.sum() == 4 and mask[ts.ch_names.index("TP9")]
    assert not np.any(ts.data[:, :, ~mask]) and np.all(np.abs(ts.data[:, :, mask]).max(axis=-1) > 0)
    _check_erp(ts, 250.0, channel="AF8", tol=0.08)


def test_interpolation_rule():
    # a full cap minus one channel: interpolated; a 4-electrode headband: nothing interpolated
    plan = plan_channels([c for c in THINGS_EEG_63 if c != "Oz"], THINGS_EEG_63)
    assert plan.interpolated == ["Oz"] and plan.mask.all()
    plan = plan_channels(["TP9", "AF7", "AF8", "TP10"], THINGS_EEG_63)
    assert not plan.interpolated and plan.mask.sum() == 4
    plan = plan_channels(["TP9", "AF7", "AF8", "TP10"], THINGS_EEG_63, min_neighbors=1, max_distance=0.04)
    assert "Fp1" in plan.interpolated and "Oz" in plan.zero_filled
    with pytest.raises(ToolkitError, match="both map to electrode 'Fp1'"):
        plan_channels(["Fp1", "FP1"], THINGS_EEG_63)


def test_several_recordings_are_concatenated(tmp_path):
    a = _write_csv(tmp_path / "a.csv")
    b = _write_csv(tmp_path / "b.csv", duration=13.0)
    res = import_recordings([a, b], target="native", event_id=EVENT_ID, l_freq=None, subject="sub-07", split="x")
    counts = [f["events_used"] for f in res.report["files"]]
    assert counts[0] == {"house": 11, "face": 11} and counts[1] == {"house": 5, "face": 4}
    assert res.trials.n_repetitions == 15 and res.report["conditions"]["house"]["left_out"] == 1
    assert res.trials.subject == "sub-07" and res.trials.split == "x"
    assert res.trials.extra["source_files"] == ["a.csv", "b.csv"]


def test_rejection_filter_and_baseline_are_reported(tmp_path):
    path = _write_csv(tmp_path / "muse.csv")
    df = pd.read_csv(path)
    onset = int(np.flatnonzero(df["Marker0"].to_numpy())[3])
    df.loc[onset + 20 : onset + 30, "TP9"] += 400.0  # an artefact inside one epoch
    df.to_csv(path, index=False)
    res = import_recording(path, target="native", event_id=EVENT_ID, l_freq=1.0, h_freq=30.0, reject=100e-6)
    f = res.report["files"][0]
    assert f["epochs_dropped"] == {"amplitude": 1} and f["epochs_kept"] == f["epochs_found"] - 1
    assert res.report["filter"]["l_freq"] == 1.0 and res.report["filter"]["h_freq"] == 30.0
    assert res.report["baseline_s"] == [None, 0.0] and res.report["reject"] == {"eeg": 100e-6}
    assert res.report["resample"] is None
    json.dumps(res.report)  # serialisable as is


def test_targets_match_the_cli_choices():
    from toolkit.commands._data_import import _TARGETS

    assert tuple(TARGETS) == _TARGETS


# -- bad input: one ToolkitError naming the file ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("rec.xyz", b"1,2,3\n", r"Unsupported recording format for '.*rec\.xyz'"),
        ("rec.eeg", b"\x00" * 16, r"through its \.vhdr header"),
        ("rec.csv", b"", r"rec\.csv' is empty"),
        ("rec.fif", b"", r"rec\.fif' is empty"),
        ("rec.edf", b"this is not an EDF file at all" * 20, r"Could not read '.*rec\.edf' as EDF"),
        ("rec.set", b"MATLAB garbage" * 20, r"Could not read '.*rec\.set' as EEGLAB"),
        ("rec.csv", b"timestamps,TP9,Marker0\n", r"rec\.csv' holds 0 data rows"),
        ("rec.csv", b"1.0,2.0,0\n1.1,2.1,0\n1.2,2.2,1\n", r"rec\.csv' has no header row"),
        ("rec.csv", "\u00e9\u00e8".encode("latin-1") * 50, r"Could not parse '.*rec\.csv' as CSV"),
    ],
)
def test_bad_files(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ToolkitError, match=match):
        import_recording(path, target="native")


def test_missing_file(tmp_path):
    with pytest.raises(ToolkitError, match=r"nope\.csv' does not exist"):
        import_recording(tmp_path / "nope.csv")


def test_truncated_files(tmp_path):
    data, onsets, codes = _recording()
    stim = np.zeros((1, data.shape[1]))
    stim[0, onsets] = codes
    info = mne.create_info([*CH6, "STI 014"], 250.0, [*["eeg"] * 6, "stim"])
    fif = tmp_path / "cut_raw.fif"
    mne.io.RawArray(np.vstack([data, stim]), info, verbose="error").save(fif, verbose="error")
    fif.write_bytes(fif.read_bytes()[: fif.stat().st_size // 2])
    with pytest.raises(ToolkitError, match=r"cut_raw\.fif' as FIF.*truncated or corrupt"):
        import_recording(fif, target="native")
    csv = _write_csv(tmp_path / "cut.csv")
    text = csv.read_text()
    csv.write_text(text[: len(text) - 25])  # the last line stops half way
    with pytest.raises(ToolkitError, match=r"cut\.csv.*last row.*truncated"):
        import_recording(csv, target="native")


@pytest.mark.parametrize("ext", ["edf", "bdf"])
def test_truncated_edf_bdf(tmp_path, ext):
    pytest.importorskip("edfio")
    path = tmp_path / f"cut.{ext}"
    mne.export.export_raw(path, _raw_with_annotations(), verbose="error")
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(ToolkitError, match=rf"cut\.{ext}' holds less data than its header.*truncated"):
        import_recording(path, target="native")


def test_truncated_brainvision(tmp_path):
    pytest.importorskip("pybv")
    path = tmp_path / "cut.vhdr"
    mne.export.export_raw(path, _raw_with_annotations(names=("Stimulus/S  1", "Stimulus/S  2")), verbose="error")
    eeg = tmp_path / "cut.eeg"
    eeg.write_bytes(eeg.read_bytes()[: eeg.stat().st_size // 2])
    with pytest.raises(ToolkitError, match=r"cut\.vhdr' holds less data.*truncated"):
        import_recording(path, target="native")


def test_csv_marker_problems(tmp_path):
    no_marker = _write_csv(tmp_path / "nomark.csv", marker=None)
    with pytest.raises(ToolkitError, match=r"nomark\.csv' has no marker column.*--marker-column"):
        import_recording(no_marker, target="native")
    with pytest.raises(ToolkitError, match=r"Marker column 'Trig' is not in '.*nomark\.csv'"):
        import_recording(no_marker, target="native", marker_column="Trig")
    # a differently named marker column works when named
    renamed = _write_csv(tmp_path / "renamed.csv", marker="Photodiode")
    res = import_recording(renamed, target="native", marker_column="Photodiode", event_id=EVENT_ID, l_freq=None)
    assert res.report["files"][0]["events_source"] == "marker column 'Photodiode'"
    two = _write_csv(tmp_path / "two.csv")
    df = pd.read_csv(two)
    df["trigger"] = 0
    df.to_csv(two, index=False)
    with pytest.raises(ToolkitError, match=r"two\.csv' has several marker-like columns"):
        import_recording(two, target="native")
    zeros = _write_csv(tmp_path / "zeros.csv")
    df = pd.read_csv(zeros)
    df["Marker0"] = 0
    df.to_csv(zeros, index=False)
    with pytest.raises(ToolkitError, match=r"No events found in '.*zeros\.csv'"):
        import_recording(zeros, target="native")
    words = _write_csv(tmp_path / "words.csv")
    df = pd.read_csv(words)
    df["Marker0"] = df["Marker0"].astype(object)
    df.loc[100, "Marker0"] = "face"
    df.to_csv(words, index=False)
    with pytest.raises(ToolkitError, match=r"Marker column 'Marker0' of '.*words\.csv' holds a non-numeric value"):
        import_recording(words, target="native")


@pytest.mark.parametrize(
    ("value", "match"),
    [("abc", r"non-numeric value 'abc' in column 'AF7'"), (np.nan, r"NaN or infinite value in column 'AF7'"),
     (np.inf, r"NaN or infinite value in column 'AF7'")],
)
def test_csv_bad_values(tmp_path, value, match):
    path = _write_csv(tmp_path / "bad.csv")
    df = pd.read_csv(path)
    df["AF7"] = df["AF7"].astype(object)
    df.loc[50, "AF7"] = value
    df.to_csv(path, index=False)
    with pytest.raises(ToolkitError, match=r"bad\.csv.*" + match):
        import_recording(path, target="native")


def test_nan_in_fif(tmp_path):
    data, _, _ = _recording()
    data[2, 100] = np.nan
    path = tmp_path / "nan_raw.fif"
    mne.io.RawArray(data, mne.create_info(CH6, 250.0, "eeg"), verbose="error").save(path, verbose="error")
    with pytest.raises(ToolkitError, match=r"nan_raw\.fif' holds NaN or infinite values \(channel 'Cz'"):
        import_recording(path, target="native")


def test_no_events_in_annotated_format(tmp_path):
    data, _, _ = _recording()
    path = tmp_path / "quiet_raw.fif"
    mne.io.RawArray(data, mne.create_info(CH6, 250.0, "eeg"), verbose="error").save(path, verbose="error")
    with pytest.raises(ToolkitError, match=r"No events found in '.*quiet_raw\.fif'"):
        import_recording(path, target="native")


def test_unknown_channel_names_are_listed(tmp_path):
    data, onsets, codes = _recording(["chan1", "chan2", "chan3"])
    df = pd.DataFrame({"chan1": data[0] * 1e6, "chan2": data[1] * 1e6, "chan3": data[2] * 1e6})
    df["marker"] = 0
    df.loc[onsets, "marker"] = codes
    path = tmp_path / "anon.csv"
    df.to_csv(path, index=False)
    with pytest.raises(ToolkitError, match=r"None of the channels of '.*anon\.csv'.*\['chan1', 'chan2', 'chan3'\]"):
        import_recording(path, target="things-eeg-63", sfreq=250.0, l_freq=None)
    # the native target keeps them
    assert import_recording(path, target="native", sfreq=250.0, l_freq=None).trials.ch_names == ["chan1", "chan2",
                                                                                                  "chan3"]
    muse = _write_csv(tmp_path / "muse.csv")
    with pytest.raises(ToolkitError, match=r"None of the channels of '.*muse\.csv'.*\['TP9', 'AF7', 'AF8', 'TP10'\]"):
        import_recording(muse, target="things-eeg-17")


def test_wrong_sampling_rate(tmp_path):
    path = _write_csv(tmp_path / "muse.csv")
    with pytest.raises(ToolkitError, match=r"sampling rate given \(250 Hz\) does not match the timestamps of '.*muse"):
        import_recording(path, sfreq=250.0, target="native")
    assert import_recording(path, sfreq=256.0, target="native", l_freq=None).trials.sfreq == 256.0
    fif = tmp_path / "r_raw.fif"
    mne.io.RawArray(_recording()[0], mne.create_info(CH6, 250.0, "eeg"), verbose="error").save(fif, verbose="error")
    with pytest.raises(ToolkitError, match=r"\(500 Hz\) does not match the 250 Hz stored in '.*r_raw\.fif'"):
        import_recording(fif, sfreq=500.0)


def test_window_problems(tmp_path):
    path = _write_csv(tmp_path / "muse.csv")
    with pytest.raises(ToolkitError, match=r"falls outside the recording '.*muse\.csv'"):
        import_recording(path, target="native", tmin=-50.0, tmax=-49.0, baseline=None, l_freq=None)
    with pytest.raises(ToolkitError, match=r"longer than the recording '.*muse\.csv'"):
        import_recording(path, target="native", tmin=0.0, tmax=60.0, l_freq=None)
    with pytest.raises(ToolkitError, match=r"tmin=0.5 s\) must lie before its end"):
        import_recording(path, target="native", tmin=0.5, tmax=0.2)
    with pytest.raises(ToolkitError, match="baseline"):
        import_recording(path, target="native", baseline=(0.0, 0.9))


def test_option_problems(tmp_path):
    path = _write_csv(tmp_path / "muse.csv")
    with pytest.raises(ToolkitError, match=r"Unknown import target 'things-eeg-64'"):
        import_recording(path, target="things-eeg-64")
    with pytest.raises(ToolkitError, match=r"Event code\(s\) \{'cat': 3\} not found in '.*muse\.csv'"):
        import_recording(path, target="native", event_id={"house": 1, "cat": 3})
    with pytest.raises(ToolkitError, match=r"h_freq=200 Hz must lie between 0 and the Nyquist.*muse\.csv"):
        import_recording(path, target="native", h_freq=200.0)
    with pytest.raises(ToolkitError, match=r"Every epoch of '.*muse\.csv' was rejected"):
        import_recording(path, target="native", reject=1e-9, l_freq=None)
    with pytest.raises(ToolkitError, match="in volts"):
        import_recording(path, target="native", reject=100.0)
    with pytest.raises(ToolkitError, match="non-zero integer"):
        import_recording(path, target="native", event_id={"house": 0})


# -- command line -----------------------------------------------------------------------------------------------
def test_cli_import_writes_a_store(tmp_path, capsys):
    from toolkit.cli import main
    from toolkit.data.store import open_store

    path = _write_csv(tmp_path / "muse.csv")
    out = tmp_path / "store"
    argv = ["data", "import", str(path), "--out", str(out), "--target", "things-eeg-63", "--event-id", "house=1",
            "face=2", "--l-freq", "none", "--subject", "sub-02", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["store"] == str(out) and result["shape"] == [2, 11, 63, 250]
    ts = open_store(out).load("sub-02", "import")
    assert ts.data.shape == (2, 11, 63, 250) and ts.dataset == "imported"
    assert sum(ts.extra["channel_mask"]) == 4 and ts.extra["import_report"]["channels"]["copied"][0] == "AF7"
    assert ts.concept_names() == ["house", "face"]
    # human-readable summary without --json
    assert main([*argv[:-1], "--overwrite"]) == 0
    text = capsys.readouterr().out
    assert "house (code 1): 11 epochs, 11 kept" in text and "4 copied, 0 interpolated, 59 zero-filled" in text


@pytest.mark.parametrize(
    "extra",
    [
        ["--event-id", "house:1"],
        ["--event-id", "house=1", "cat=7"],
        ["--l-freq", "low"],
        ["--tmin", "-50", "--tmax", "-49", "--no-baseline"],
    ],
)
def test_cli_bad_input_exit_2_one_line_no_output(tmp_path, capsys, extra):
    from toolkit.cli import main

    path = _write_csv(tmp_path / "muse.csv")
    out = tmp_path / "store"
    assert main(["data", "import", str(path), "--out", str(out), "--target", "native", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not out.exists() and not any(p.name.startswith(".store") for p in tmp_path.iterdir())


def test_cli_bad_file_and_existing_output(tmp_path, capsys):
    from toolkit.cli import main

    bad = _write_csv(tmp_path / "nomark.csv", marker=None)
    out = tmp_path / "store"
    assert main(["data", "import", str(bad), "--out", str(out)]) == 2
    assert "nomark.csv" in capsys.readouterr().err and not out.exists()
    out.mkdir()
    good = _write_csv(tmp_path / "muse.csv")
    assert main(["data", "import", str(good), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
