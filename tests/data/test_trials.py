"""The TrialSet / ImageSet object model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from toolkit import ToolkitError
from toolkit.data import ImageSet, TrialSet, concept_from_folder


def _images(tmp_path, n_concepts=3, per_concept=2):
    root = tmp_path / "images"
    for c in range(n_concepts):
        folder = root / f"{c + 1:05d}_thing_{c}"
        folder.mkdir(parents=True)
        for i in range(per_concept):
            Image.new("RGB", (4, 4), (c * 40, i * 40, 0)).save(folder / f"img_{i}.jpg")
    return root


def _trials(images=None, n_cond=6, n_rep=3, n_chans=4, n_times=10):
    rng = np.random.default_rng(0)
    return TrialSet(
        data=rng.standard_normal((n_cond, n_rep, n_chans, n_times)).astype(np.float32),
        ch_names=["O1", "Oz", "O2", "Pz"][:n_chans],
        sfreq=250.0,
        times=np.arange(n_times) / 250.0,
        subject="sub-01",
        split="train",
        images=images,
    )


def test_concept_from_folder():
    assert concept_from_folder("00001_aircraft_carrier") == "aircraft_carrier"
    assert concept_from_folder("plain") == "plain"


def test_imageset_from_folder_sorted(tmp_path):
    images = ImageSet.from_folder(_images(tmp_path), images_per_concept=2)
    assert images.n_concepts == 3 and images.n_conditions == 6
    assert images.concepts == ["thing_0", "thing_1", "thing_2"]
    assert list(images.condition_concept) == [0, 0, 1, 1, 2, 2]
    assert images.image_path(3).name == "img_1.jpg" and images.concept_of(3) == "thing_1"
    again = ImageSet.from_dict(images.to_dict(), images.root)
    assert again.image_files == images.image_files


def test_imageset_errors(tmp_path):
    with pytest.raises(ToolkitError, match="does not exist"):
        ImageSet.from_folder(tmp_path / "missing")
    root = _images(tmp_path)
    with pytest.raises(ToolkitError, match="holds 2 images but 10"):
        ImageSet.from_folder(root, images_per_concept=10)
    detached = ImageSet.from_dict(ImageSet.from_folder(root).to_dict())
    with pytest.raises(ToolkitError, match="no image folder"):
        detached.image_path(0)


def test_trialset_access_and_average(tmp_path):
    ts = _trials(ImageSet.from_folder(_images(tmp_path)))
    assert (ts.n_conditions, ts.n_repetitions, ts.n_chans, ts.n_times) == (6, 3, 4, 10) and len(ts) == 18
    np.testing.assert_array_equal(ts.trial(2, 1), ts.data[2, 1])
    np.testing.assert_allclose(ts.condition_average(2), ts.data[2].mean(0), rtol=1e-6)
    avg = ts.average()
    assert avg.n_repetitions == 1 and avg.extra["averaged_repetitions"] == 3
    np.testing.assert_allclose(avg.data[:, 0], ts.data.mean(1), rtol=1e-5)
    assert list(ts.labels()) == [0, 0, 1, 1, 2, 2]


def test_trialset_metadata(tmp_path):
    ts = _trials(ImageSet.from_folder(_images(tmp_path)))
    meta = ts.metadata()
    assert len(meta) == 18
    assert list(meta.columns) == ["subject", "split", "condition", "concept", "label", "image", "repetition"]
    row = meta.iloc[7]  # condition 2, repetition 1
    assert (row.condition, row.repetition, row.concept, row.label) == (2, 1, "thing_1", 1)
    assert row.image.endswith("img_0.jpg")


def test_trialset_crop_and_select():
    ts = _trials()
    cropped = ts.crop(0.008, 0.02)
    assert cropped.n_times == 4 and np.isclose(cropped.times[0], 0.008)
    sel = ts.select_channels(["Pz", "O1"])
    np.testing.assert_array_equal(sel.data[:, :, 0], ts.data[:, :, 3])
    with pytest.raises(ToolkitError, match="not in this trial set"):
        ts.select_channels(["Cz"])
    with pytest.raises(ToolkitError, match="No samples"):
        ts.crop(2.0, 3.0)


def test_trialset_validation():
    with pytest.raises(ToolkitError, match="must be 4-D"):
        TrialSet(np.zeros((2, 3, 4)), ["a"], 250.0, np.zeros(4), "sub-01", "train")
    with pytest.raises(ToolkitError, match="channel names"):
        TrialSet(np.zeros((2, 1, 3, 4)), ["a"], 250.0, np.zeros(4), "sub-01", "train")
    with pytest.raises(ToolkitError, match="time points"):
        TrialSet(np.zeros((2, 1, 1, 4)), ["a"], 250.0, np.zeros(5), "sub-01", "train")
    ts = _trials()
    with pytest.raises(ToolkitError, match="out of range"):
        ts.trial(6, 0)
    with pytest.raises(ToolkitError, match="out of range"):
        ts.trial(0, 3)
