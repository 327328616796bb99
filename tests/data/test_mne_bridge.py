"""TrialSet <-> MNE epochs: shapes, montage, metadata, averaging, MEG, round trips and bad input."""

from __future__ import annotations

import warnings

import mne
import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data import ImageSet, TrialSet, from_epochs, to_epochs
from toolkit.data._montage import canonical_name, make_montage, resolve_montage_name
from toolkit.data.channels import THINGS_EEG_63


def _trials(n_cond=3, n_rep=4, ch_names=THINGS_EEG_63, n_times=50, ch_type="eeg", images=None, seed=0) -> TrialSet:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_cond, n_rep, len(ch_names), n_times)).astype(np.float32) * 1e-6
    return TrialSet(
        data=data, ch_names=list(ch_names), sfreq=250.0, times=-0.2 + np.arange(n_times) / 250.0,
        subject="sub-03", split="test", images=images, ch_type=ch_type, dataset="simulated",
    )


def _images() -> ImageSet:
    # 2 concepts x 2 images: conditions 0,1 are "aardvark", 2,3 are "abacus"
    return ImageSet(
        root=None,
        concept_folders=("00001_aardvark", "00002_abacus"),
        image_files=("00001_aardvark/a1.jpg", "00001_aardvark/a2.jpg", "00002_abacus/b1.jpg", "00002_abacus/b2.jpg"),
        condition_concept=np.array([0, 0, 1, 1]),
    )


def test_to_epochs_shape_order_times_and_events():
    ts = _trials()
    ep = to_epochs(ts)
    assert isinstance(ep, mne.EpochsArray)
    assert ep.get_data().shape == (12, 63, 50)
    # condition-major: epoch index = condition * n_rep + repetition
    np.testing.assert_allclose(ep.get_data()[5], ts.data[1, 1], rtol=1e-6)
    assert ep.tmin == pytest.approx(-0.2)
    np.testing.assert_allclose(ep.times, ts.times, atol=1e-9)
    assert ep.info["sfreq"] == 250.0
    assert set(ep.get_channel_types()) == {"eeg"}
    assert ep.event_id == {"condition-0": 1, "condition-1": 2, "condition-2": 3}
    assert list(ep.events[:, 2]) == [1] * 4 + [2] * 4 + [3] * 4
    assert len(ep["condition-1"]) == 4


def test_to_epochs_sets_standard_positions_for_things_names_without_deprecation():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # standard_1005 is deprecated in MNE 1.13: we resolve it
        ep = _trials().to_epochs()  # TrialSet.to_epochs delegates to the bridge
    montage = ep.get_montage()
    assert montage is not None
    pos = montage.get_positions()["ch_pos"]
    ref = make_montage("standard_1005").get_positions()["ch_pos"]
    # the montage is moved into MNE's head frame (a rigid transform): distances between electrodes are kept
    for a, b in (("Fp1", "Oz"), ("Cz", "TP10"), ("AF7", "PO8")):
        assert np.linalg.norm(pos[a] - pos[b]) == pytest.approx(np.linalg.norm(ref[a] - ref[b]), rel=1e-6)
    assert all(np.isfinite(pos[name]).all() for name in THINGS_EEG_63)
    # left-hemisphere electrodes have negative x in MNE's head frame
    assert pos["T7"][0] < 0 < pos["T8"][0]


def test_montage_names_resolve_across_mne_versions():
    builtin = mne.channels.get_builtin_montages()
    name = resolve_montage_name("standard_1005")
    assert name in builtin
    if "colin27_1005" in builtin:  # MNE >= 1.13
        assert name == "colin27_1005"
    assert resolve_montage_name("biosemi64") == "biosemi64"
    with pytest.raises(ToolkitError, match="Unknown montage 'nope'"):
        resolve_montage_name("nope")
    with pytest.raises(ToolkitError, match="Unknown montage"):
        to_epochs(_trials(), montage="nope")


def test_unknown_channel_names_give_no_montage_and_partial_names_partial_positions():
    egi = [f"E{i}" for i in range(1, 129)]
    ep = to_epochs(_trials(n_cond=2, n_rep=1, ch_names=egi, n_times=10))
    assert ep.get_montage() is None
    assert all(np.isnan(ch["loc"][:3]).all() or not ch["loc"][:3].any() for ch in ep.info["chs"])
    # the EGI names are known to the GSN-HydroCel-128 montage when asked for it
    ep = to_epochs(_trials(n_cond=2, n_rep=1, ch_names=egi, n_times=10), montage="GSN-HydroCel-128")
    assert ep.get_montage() is not None
    mixed = ["Cz", "Pz", "Weird1"]
    ep = to_epochs(_trials(n_cond=2, n_rep=1, ch_names=mixed, n_times=10))
    locs = {ch["ch_name"]: ch["loc"][:3] for ch in ep.info["chs"]}
    assert np.isfinite(locs["Cz"]).all() and np.abs(locs["Cz"]).sum() > 0
    assert not np.isfinite(locs["Weird1"]).all() or np.abs(locs["Weird1"]).sum() == 0
    assert to_epochs(_trials(), montage=None).get_montage() is None


def test_metadata_table_columns_and_values_with_images():
    ts = _trials(n_cond=4, n_rep=3, images=_images())
    ep = to_epochs(ts)
    meta = ep.metadata
    assert list(meta.columns) == ["subject", "split", "condition", "concept", "label", "image", "repetition"]
    assert len(meta) == 12
    assert set(meta["subject"]) == {"sub-03"} and set(meta["split"]) == {"test"}
    row = meta.iloc[7]  # condition 2, repetition 1
    assert (row["condition"], row["concept"], row["label"], row["image"], row["repetition"]) == (
        2, "abacus", 1, "00002_abacus/b1.jpg", 1,
    )
    # one event code per concept: both images of a concept share it, selectable by name
    assert ep.event_id == {"aardvark": 1, "abacus": 2}
    assert len(ep["abacus"]) == 6
    # metadata queries work through MNE
    assert len(ep["image == '00001_aardvark/a2.jpg'"]) == 3


def test_average_mode_one_epoch_per_condition():
    ts = _trials(n_cond=4, n_rep=3, images=_images())
    ep = to_epochs(ts, average=True)
    assert ep.get_data().shape == (4, 63, 50)
    np.testing.assert_allclose(ep.get_data()[2], ts.data[2].mean(axis=0), rtol=1e-5, atol=1e-12)
    assert list(ep.metadata["condition"]) == [0, 1, 2, 3]
    assert "repetition" not in ep.metadata.columns
    assert set(ep.metadata["n_averaged"]) == {3}


def test_meg_channels_get_type_mag_and_no_montage():
    names = [f"MLC{i:02d}-4408" for i in range(1, 21)]
    ts = _trials(n_cond=2, n_rep=2, ch_names=names, ch_type="mag")
    ep = to_epochs(ts)
    assert set(ep.get_channel_types()) == {"mag"}
    assert ep.get_montage() is None
    back = from_epochs(ep, subject="sub-03", split="test")
    assert back.ch_type == "mag"


def test_bad_channel_type_is_a_toolkit_error():
    ts = _trials(n_cond=1, n_rep=1, ch_names=["Cz"], ch_type="brainwaves")
    with pytest.raises(ToolkitError, match="brainwaves"):
        to_epochs(ts)


def test_round_trip_restores_data_names_and_labels():
    ts = _trials(n_cond=4, n_rep=3, images=_images())
    back = from_epochs(to_epochs(ts), subject="sub-03", split="test", dataset="simulated")
    assert back.data.shape == ts.data.shape and back.data.dtype == np.float32
    np.testing.assert_allclose(back.data, ts.data, rtol=1e-6)
    assert back.concept_names() == ts.concept_names()
    np.testing.assert_array_equal(back.labels(), ts.labels())
    assert back.ch_names == ts.ch_names and back.sfreq == ts.sfreq
    np.testing.assert_allclose(back.times, ts.times)


def _coded_epochs(counts: dict[int, int], *, names: dict[str, int] | None = None) -> mne.EpochsArray:
    codes = np.concatenate([[c] * n for c, n in counts.items()])
    rng = np.random.default_rng(1)
    data = rng.standard_normal((len(codes), 3, 20))
    events = np.column_stack([np.arange(len(codes)) * 100, np.zeros(len(codes), int), codes])
    info = mne.create_info(["Cz", "Pz", "Oz"], 100.0, "eeg")
    return mne.EpochsArray(data, info, events=events, event_id=names, tmin=-0.1, verbose="error")


def test_from_epochs_groups_event_codes_and_truncates_unequal_counts():
    ep = _coded_epochs({2: 5, 1: 3}, names={"face": 2, "house": 1})
    ts = from_epochs(ep, subject="sub-01", split="import")
    assert ts.data.shape == (2, 3, 3, 20)
    assert ts.concept_names() == ["house", "face"]  # code order
    assert ts.extra["left_out_per_condition"] == {"house": 0, "face": 2}
    assert ts.extra["event_id"] == {"house": 1, "face": 2}
    # the first three face epochs, in order
    np.testing.assert_allclose(ts.data[1], ep.get_data()[:3].astype(np.float32))
    assert ts.times[0] == pytest.approx(-0.1)


def test_from_epochs_single_mode_keeps_every_epoch():
    ep = _coded_epochs({1: 3, 2: 5})
    ts = from_epochs(ep, subject="sub-01", split="import", unequal="single")
    assert ts.data.shape == (8, 1, 3, 20)
    assert list(ts.labels()) == [0, 0, 0, 1, 1, 1, 1, 1]
    assert ts.concept_names()[0] == "1" and ts.concept_names()[-1] == "2"


def test_from_epochs_bad_input():
    ep = _coded_epochs({1: 2})
    with pytest.raises(ToolkitError, match="unequal"):
        from_epochs(ep, subject="s", split="x", unequal="pad")
    info = mne.create_info(["Cz", "MEG1"], 100.0, ["eeg", "mag"])
    mixed = mne.EpochsArray(np.zeros((2, 2, 10)), info, verbose="error")
    with pytest.raises(ToolkitError, match="mix channel types"):
        from_epochs(mixed, subject="s", split="x")
    assert from_epochs(mixed, subject="s", split="x", picks="eeg").ch_names == ["Cz"]
    with pytest.raises(ToolkitError, match="empty"):
        from_epochs(ep.copy().drop([0, 1], verbose="error"), subject="s", split="x")


@pytest.mark.parametrize(
    ("recorded", "canonical"),
    [("FP1", "Fp1"), ("EEG Fp1-REF", "Fp1"), ("cz", "Cz"), ("T3", "T7"), ("T6", "P8"), ("O2-A1", "O2"),
     ("Right AUX", None), ("E12", None)],
)
def test_channel_names_are_matched_to_the_montage(recorded, canonical):
    assert canonical_name(recorded) == canonical
