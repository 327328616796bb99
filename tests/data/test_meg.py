"""THINGS-MEG loader: the two files' different axis orders, averaging, memory maps and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data import list_meg_subjects, load_things_meg, things_meg_file

from ._official import MEG_TIMES, SystemCall, make_meg_root, touch_command, write_pickle


@pytest.fixture
def root(tmp_path):
    return make_meg_root(tmp_path / "meg")


def _raw(root, name):
    return pickle.loads((root / "preprocessed_MEG" / "sub-01" / name).read_bytes())


def test_training_axis_order(root):
    trials = load_things_meg(root, 1, "train")
    raw = _raw(root, "preprocessed_meg_training.pkl")["meg_data"]  # (concepts 3, images 4, 1, 6, 201)
    assert trials.data.shape == (12, 1, 6, 201) and trials.data.dtype == np.float32
    # Condition c is image c % 4 of concept c // 4.
    np.testing.assert_array_equal(trials.trial(6), raw[1, 2, 0].astype(np.float32))
    np.testing.assert_array_equal(trials.labels(), np.repeat(np.arange(3), 4))
    assert trials.dataset == "things-meg" and trials.ch_type == "mag" and trials.sfreq == 200.0
    assert trials.times[0] == 0.0 and trials.times[-1] == pytest.approx(1.0) and trials.n_times == 201
    assert trials.extra["layout"]["images_per_concept"] == 4 and trials.extra["file_shape"] == [3, 4, 1, 6, 201]
    assert trials.images is None


def test_test_axis_order_and_average(root):
    trials = load_things_meg(root, "sub-01", "test")
    raw = _raw(root, "preprocessed_meg_zs_test.pkl")["meg_data"]  # (images 5, 1, repetitions 3, 6, 201)
    assert trials.data.shape == (5, 3, 6, 201)
    np.testing.assert_array_equal(trials.trial(4, 2), raw[4, 0, 2].astype(np.float32))
    np.testing.assert_array_equal(trials.labels(), np.arange(5))
    averaged = load_things_meg(root, 1, "test", average=True)
    np.testing.assert_allclose(averaged.data[:, 0], raw[:, 0].mean(axis=1), rtol=1e-5, atol=1e-6)


def test_mmap_and_layouts(root):
    mapped = load_things_meg(root, 1, "test", mmap=True)
    assert isinstance(mapped.data, np.memmap) and not mapped.data.flags.writeable
    np.testing.assert_array_equal(np.asarray(mapped.data), load_things_meg(root, 1, "test").data)
    # The preprocessed_MEG folder itself is accepted as the root.
    assert things_meg_file(root / "preprocessed_MEG", 1, "train").name == "preprocessed_meg_training.pkl"
    assert list_meg_subjects(root) == ["sub-01"]
    with pytest.raises(ToolkitError, match=r"sub-03.*subjects found: sub-01"):
        load_things_meg(root, 3, "train")


def _bad(tmp_path, obj, name="preprocessed_meg_zs_test.pkl"):
    root = tmp_path / "bad"
    write_pickle(root / "preprocessed_MEG" / "sub-01" / name, obj)
    return root


def _meg(data, names=None, times=MEG_TIMES):
    return {"meg_data": data, "ch_names": names or [f"M{i}" for i in range(data.shape[3])], "times": times}


def test_bad_axis_order(tmp_path):
    train_layout = np.zeros((5, 3, 1, 6, 201))  # a training-shaped array in the test file
    with pytest.raises(ToolkitError, match=r"zs_test\.pkl.*\(images, 1, repetitions"):
        load_things_meg(_bad(tmp_path, _meg(train_layout)), 1, "test")
    test_layout = np.zeros((5, 1, 3, 6, 201))
    root = _bad(tmp_path, _meg(test_layout), "preprocessed_meg_training.pkl")
    with pytest.raises(ToolkitError, match=r"training\.pkl.*single presentation"):
        load_things_meg(root, 1, "train")


def test_bad_ndim_dtype_rate_nan(tmp_path):
    with pytest.raises(ToolkitError, match="5 axes"):
        load_things_meg(_bad(tmp_path, _meg(np.zeros((5, 3, 6, 201)))), 1, "test")
    with pytest.raises(ToolkitError, match="int64"):
        load_things_meg(_bad(tmp_path, _meg(np.zeros((5, 1, 3, 6, 201), dtype=np.int64))), 1, "test")
    with pytest.raises(ToolkitError, match=r"250 Hz.*200 Hz"):
        load_things_meg(_bad(tmp_path, _meg(np.zeros((5, 1, 3, 6, 201)), times=np.arange(201) / 250)), 1, "test")
    data = np.zeros((5, 1, 3, 6, 201))
    data[3, 0, 1, 2, 4] = np.nan
    with pytest.raises(ToolkitError, match=r"1 non-finite.*condition 3, repetition 1, channel 'M2', sample 4"):
        load_things_meg(_bad(tmp_path, _meg(data)), 1, "test")
    with pytest.raises(ToolkitError, match="6 channels in its data but 2"):
        load_things_meg(_bad(tmp_path, _meg(np.zeros((5, 1, 3, 6, 201)), names=["a", "b"])), 1, "test")


def test_bad_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    root = _bad(tmp_path, {"meg_data": SystemCall(touch_command(marker))})
    with pytest.raises(ToolkitError, match=r"zs_test\.pkl.*system"):
        load_things_meg(root, 1, "test")
    assert not marker.exists()
