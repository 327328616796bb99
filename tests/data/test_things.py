"""THINGS-EEG loader: both variants, the times quirk, images, averaging, memory maps and every bad input."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data import TrialSet, list_subjects, load_things_eeg, normalize_subject, things_eeg_file
from toolkit.data.things import normalize_split, write_things_eeg_file

from ._official import (
    EEG_FILES,
    TIMES_100,
    TIMES_250,
    VARIANTS,
    SystemCall,
    eeg_dict,
    make_things_root,
    random_eeg,
    touch_command,
    write_images,
    write_npy_object,
    write_pickle,
)


@pytest.fixture
def root(tmp_path):
    return make_things_root(tmp_path / "things")


def _file(root, split="test", sub=1, folder="Preprocessed_data_250Hz"):
    return root / folder / f"sub-{sub:02d}" / EEG_FILES[split]


def _bad(tmp_path, obj, name="bad"):
    """A root whose sub-01 test file holds ``obj``."""
    root = tmp_path / name
    write_pickle(_file(root), obj)
    return root


# -- the 250 Hz release (ATM) -------------------------------------------------------------------------------------
def test_load_250hz_train_with_times_quirk_and_images(root):
    trials = load_things_eeg(root, 1, "train")
    raw = pickle.loads(_file(root, "train").read_bytes())
    assert isinstance(trials, TrialSet)
    assert trials.data.shape == (20, 2, 63, 250) and trials.data.dtype == np.float32
    np.testing.assert_array_equal(trials.data, raw["preprocessed_eeg_data"].astype(np.float32))
    assert trials.dataset == "things-eeg-250hz" and trials.sfreq == 250.0 and trials.ch_type == "eeg"
    assert trials.subject == "sub-01" and trials.split == "train"
    # The quirk: 300 file times from -0.2 s, data keep times[50:] = 0 ... 0.996 s.
    assert raw["times"].size == 300
    np.testing.assert_allclose(trials.times, TIMES_250[50:])
    assert trials.times[0] == pytest.approx(0.0) and trials.times[-1] == pytest.approx(0.996)
    assert trials.extra["times_slice"] == [50, 300] and "baseline" in trials.extra["times_note"]
    assert trials.extra["source"]["size"] == _file(root, "train").stat().st_size
    # Condition -> concept -> image: sorted folders, 10 images per concept.
    assert trials.images.n_conditions == 20 and trials.images.n_concepts == 2
    assert trials.concept_names()[9] == "concept_1" and trials.concept_names()[10] == "concept_2"
    assert trials.images.image_path(10).is_file()
    assert trials.images.image_files[10] == "00002_concept_2/concept_2_01s.jpg"


def test_test_split_and_average(root):
    full = load_things_eeg(root, "sub-01", "test")
    assert full.data.shape == (3, 4, 63, 250)
    assert full.images.n_conditions == 3 and full.concept_names() == ["concept_3", "concept_4", "concept_5"]
    averaged = load_things_eeg(root, "01", "test", average=True)
    assert averaged.data.shape == (3, 1, 63, 250) and averaged.data.dtype == np.float32
    np.testing.assert_allclose(averaged.data[:, 0], full.data.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert averaged.extra["averaged_repetitions"] == 4


def test_subject_and_split_forms(root):
    assert normalize_subject(1) == normalize_subject("01") == normalize_subject("sub-01") == "sub-01"
    assert normalize_subject("sub-1") == "sub-01" and normalize_subject(10) == "sub-10"
    assert normalize_split("training") == "train"
    for bad in ("abc", "sub-x", 0, True):
        with pytest.raises(ToolkitError, match="ubject"):
            normalize_subject(bad)
    with pytest.raises(ToolkitError, match="'validation'"):
        normalize_split("validation")
    assert things_eeg_file(root, "sub-01", "test") == _file(root)
    assert list_subjects(root) == ["sub-01"]


def test_missing_subject_lists_available(root):
    with pytest.raises(ToolkitError, match=r"sub-02.*subjects found: sub-01"):
        load_things_eeg(root, 2, "test")
    with pytest.raises(ToolkitError, match="does not exist"):
        load_things_eeg(root / "nope", 1, "test")


# -- the 100 Hz release (OSF) and variant detection ---------------------------------------------------------------
def test_load_100hz_osf_container(tmp_path):
    root = make_things_root(tmp_path / "osf", variant="100", container="npy")
    trials = load_things_eeg(root, 1, "train")
    assert trials.data.shape == (20, 2, 17, 100) and trials.dataset == "things-eeg-100hz" and trials.sfreq == 100.0
    np.testing.assert_allclose(trials.times, TIMES_100)
    assert trials.times[0] == pytest.approx(-0.2) and trials.times[-1] == pytest.approx(0.79)
    assert trials.extra["times_slice"] == [0, 100] and "times_note" not in trials.extra


@pytest.mark.parametrize("folder", ["preprocessed_data", "eeg_dataset/preprocessed_data"])
def test_osf_folder_names(tmp_path, folder):
    root = make_things_root(tmp_path / "r", variant="100", folder=folder)
    assert load_things_eeg(root, 1, "test").dataset == "things-eeg-100hz"


def test_variant_from_content_not_folder(tmp_path):
    """100 Hz data under the 250 Hz folder name are still recognised as the 100 Hz variant."""
    root = make_things_root(tmp_path / "r", variant="100", folder="Preprocessed_data_250Hz")
    assert load_things_eeg(root, 1, "test").dataset == "things-eeg-100hz"


def test_root_may_be_the_preprocessed_folder(root):
    trials = load_things_eeg(root / "Preprocessed_data_250Hz", 1, "test", images_root=root)
    assert trials.data.shape == (3, 4, 63, 250) and trials.images is not None


def test_both_variants_choose_with_folder(tmp_path):
    root = make_things_root(tmp_path / "r", variant="250")
    make_things_root(root, variant="100", images=False)
    assert load_things_eeg(root, 1, "test").dataset == "things-eeg-250hz"
    assert load_things_eeg(root, 1, "test", folder="Preprocessed_data_100Hz").dataset == "things-eeg-100hz"
    with pytest.raises(ToolkitError, match="does not exist"):
        load_things_eeg(root, 1, "test", folder="Preprocessed_data_500Hz")


def test_nonstandard_counts_are_logged_not_failed(root, caplog):
    with caplog.at_level(logging.INFO, logger="toolkit.data.things"):
        load_things_eeg(root, 1, "test", images_root=None)
    assert "official test release has 200 x 80" in caplog.text


# -- images --------------------------------------------------------------------------------------------------------
def test_images_none_auto_and_explicit(tmp_path, root):
    assert load_things_eeg(root, 1, "test", images_root=None).images is None
    no_images = make_things_root(tmp_path / "bare", images=False)
    assert load_things_eeg(no_images, 1, "test").images is None  # "auto": attached only when present
    explicit = load_things_eeg(no_images, 1, "test", images_root=root)
    assert explicit.images.root == root / "test_images"
    assert load_things_eeg(no_images, 1, "test", images_root=root / "test_images").images.n_conditions == 3


def test_missing_image_folder_when_requested(tmp_path, root):
    with pytest.raises(ToolkitError, match=r"nowhere.*test_images.*does not exist"):
        load_things_eeg(root, 1, "test", images_root=tmp_path / "nowhere")


def test_images_not_matching_conditions(tmp_path, root):
    other = tmp_path / "other"
    write_images(other / "test_images", 5, 1)
    with pytest.raises(ToolkitError, match=r"3 conditions.*maps 5 images"):
        load_things_eeg(root, 1, "test", images_root=other)


def test_image_missing_in_one_concept_folder(root):
    victim = sorted((root / "training_images" / "00002_concept_2").iterdir())[3]
    victim.unlink()
    with pytest.raises(ToolkitError, match=r"20 conditions.*19 images.*00002_concept_2 \(9\)"):
        load_things_eeg(root, 1, "train")


# -- memory maps ---------------------------------------------------------------------------------------------------
def test_mmap_converts_once_and_maps(root):
    in_memory = load_things_eeg(root, 1, "train")
    mapped = load_things_eeg(root, 1, "train", mmap=True)
    assert isinstance(mapped.data, np.memmap) and not mapped.data.flags.writeable
    np.testing.assert_array_equal(np.asarray(mapped.data), in_memory.data)
    assert mapped.images.n_conditions == 20 and mapped.dataset == "things-eeg-250hz"
    again = load_things_eeg(root, 1, "train", mmap=True)
    assert again.extra["store"] == mapped.extra["store"]
    np.testing.assert_array_equal(again.trial(5, 1), in_memory.trial(5, 1))
    averaged = load_things_eeg(root, 1, "test", mmap=True, average=True)
    assert averaged.data.shape == (3, 1, 63, 250)


def test_writer_round_trip(tmp_path):
    data = random_eeg(3, 2)
    root = tmp_path / "w"
    write_things_eeg_file(_file(root), data, VARIANTS["250"]["ch_names"], TIMES_250)
    trials = load_things_eeg(root, 1, "test")
    np.testing.assert_array_equal(trials.data, data.astype(np.float32))
    with pytest.raises(ToolkitError, match="4-D float"):
        write_things_eeg_file(_file(root), data[0], VARIANTS["250"]["ch_names"], TIMES_250)


# -- bad inputs: each gives one ToolkitError naming the file ------------------------------------------------------
NAMES = VARIANTS["250"]["ch_names"]


def _expect(root, pattern):
    with pytest.raises(ToolkitError, match=pattern) as info:
        load_things_eeg(root, 1, "test", images_root=None)
    assert "preprocessed_eeg_test.npy" in str(info.value)
    return str(info.value)


def test_bad_truncated_file(tmp_path, root):
    path = _file(root)
    path.write_bytes(path.read_bytes()[:5000])
    _expect(root, "truncated")


def test_bad_empty_file(root):
    _file(root).write_bytes(b"")
    _expect(root, "empty")


def test_bad_not_a_dict(tmp_path):
    _expect(_bad(tmp_path, np.zeros((2, 2))), "expected a dict with keys")
    _expect(_bad(tmp_path, {"data": 1}, "keys"), r"found \['data'\]")


def test_bad_wrong_ndim(tmp_path):
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2)[:, 0], NAMES, TIMES_250)), r"shape \(3, 63, 250\).*4 axes")


@pytest.mark.parametrize("dtype", ["int32", "int64", object])
def test_bad_dtype(tmp_path, dtype):
    data = np.zeros((2, 2, 63, 250), dtype=dtype)
    _expect(_bad(tmp_path, eeg_dict(data, NAMES, TIMES_250)), "dtype .* floating point")


def test_bad_nan_and_inf_counted_and_located(tmp_path):
    data = random_eeg(3, 2)
    data[1, 0, 61, 7] = np.nan
    data[1, 1, 0, 0] = np.nan
    data[2, 0, 5, 9] = np.inf
    msg = _expect(_bad(tmp_path, eeg_dict(data, NAMES, TIMES_250)), "3 non-finite values")
    assert "2 NaN, 1 Inf" in msg and "2 conditions (1, 2)" in msg
    assert "condition 1, repetition 0, channel 'Oz', sample 7" in msg


def test_bad_values_beyond_float32(tmp_path):
    data = random_eeg(3, 2)
    data[0, 0, 0, 0] = 1e300
    _expect(_bad(tmp_path, eeg_dict(data, NAMES, TIMES_250)), "beyond the float32 range")


def test_bad_channel_count(tmp_path):
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), NAMES[:-1], TIMES_250)), "63 channels .* 62 channel names")


def test_bad_unknown_channel_names(tmp_path):
    names = [*NAMES[:-3], "EXG1", "Foo", "OZ"]
    msg = _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), names, TIMES_250)), "3 channel names .* 10-05")
    assert "'EXG1', 'Foo', 'OZ'" in msg and "'OZ' -> 'Oz'" in msg


def test_bad_duplicate_channel_names(tmp_path):
    names = [*NAMES[:-1], "Oz"]
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), names, TIMES_250)), "more than once.*Oz")


def test_bad_sampling_rate(tmp_path):
    times = -0.2 + np.arange(300) / 500.0  # 500 Hz
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), NAMES, times)), "500 Hz.*250 Hz.*100 Hz")


def test_bad_times_inconsistent_with_samples(tmp_path):
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), NAMES, TIMES_250[:200])), "200 entries .* 250 samples")
    # Longer, but the samples from t = 0 do not number n_times.
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), NAMES, TIMES_250[:280]), "b"), "280 entries.*stimulus onset")
    irregular = TIMES_250[50:].copy()
    irregular[100] += 0.002
    _expect(_bad(tmp_path, eeg_dict(random_eeg(3, 2), NAMES, irregular), "c"), "constant step")


def test_bad_malicious_file_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    root = _bad(tmp_path, {"preprocessed_eeg_data": SystemCall(touch_command(marker)), "ch_names": [], "times": []})
    _expect(root, "system")
    assert not marker.exists()


def test_bad_npy_container_with_int_data(tmp_path):
    root = tmp_path / "osf"
    write_npy_object(_file(root), eeg_dict(np.ones((2, 2, 63, 250), dtype=np.int16), NAMES, TIMES_250))
    _expect(root, "int16")
