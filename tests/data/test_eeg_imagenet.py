"""EEG-ImageNet loader: BrainVis filtering and cropping, subjects, splits, images and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.data import load_eeg_imagenet, load_eeg_imagenet_splits

from ._official import SystemCall, make_eeg_imagenet, touch_command, write_splits

# Trial lengths: 455, 700, 440 and 450 fall outside 450 <= T <= 600 or end before the crop's end (460).
LENGTHS = [500, 500, 455, 700, 440, 510, 600, 450, 520, 499, 498, 501]
KEPT = [0, 1, 5, 6, 8, 9, 10, 11]


@pytest.fixture
def pth(tmp_path):
    return make_eeg_imagenet(tmp_path / "eeg", LENGTHS)[0]


@pytest.fixture
def splits(tmp_path):
    return write_splits(tmp_path / "block_splits_by_image_all.pth", [0, 1, 2, 3], [5], [6, 7, 8])


def _expected(i: int) -> np.ndarray:
    c = np.arange(128, dtype=np.float32)[:, None] * 1000
    return c + np.arange(20, 460, dtype=np.float32) + i * 1e5


def test_filter_and_crop(pth):
    trials = load_eeg_imagenet(pth)
    assert trials.data.shape == (8, 1, 128, 440) and trials.data.dtype == np.float32
    assert trials.extra["trial_index"] == KEPT and trials.extra["dropped_by_length"] == 4
    for row, i in enumerate(KEPT):
        np.testing.assert_array_equal(trials.data[row, 0], _expected(i))
    np.testing.assert_array_equal(trials.labels(), np.asarray(KEPT) % 3)
    assert trials.sfreq == 1000.0
    assert trials.times[0] == pytest.approx(0.020) and trials.times[-1] == pytest.approx(0.459)
    assert trials.ch_names[0] == "E1" and trials.ch_names[-1] == "E128" and trials.ch_type == "eeg"
    assert trials.dataset == "eeg-imagenet" and trials.extra["design"] == "block" and trials.n_repetitions == 1
    assert trials.subject == "all" and trials.split == "all"
    assert trials.images.image_files[0] == "n02389026/n02389026_100.JPEG" and trials.images.root is None
    assert trials.concept_names()[1] == "n03888257"
    assert trials.extra["class_names"][:2] == ["sorrel horse", "parachute"]


def test_subjects_and_splits(pth, splits):
    one = load_eeg_imagenet(pth, subjects=[1])
    assert one.extra["trial_index"] == [0, 6, 8, 10] and one.subject == "sub-01"
    assert load_eeg_imagenet(pth, splits=splits, split="train").extra["trial_index"] == [0, 1]
    assert load_eeg_imagenet(pth, splits=splits, split="trainval").extra["trial_index"] == [0, 1, 5]
    test = load_eeg_imagenet(pth, splits=splits, split="test")
    assert test.extra["trial_index"] == [6, 8] and test.split == "test"
    assert load_eeg_imagenet(pth, splits=splits, split="test", subjects="sub-01").extra["trial_index"] == [6, 8]
    with pytest.raises(ToolkitError, match=r"No trial .* left"):
        load_eeg_imagenet(pth, splits=splits, split="test", subjects=2)
    table = load_eeg_imagenet_splits(splits)
    assert [len(table[0][k]) for k in ("train", "val", "test")] == [4, 1, 3]


def test_split_within_subject(tmp_path, pth):
    single = write_splits(tmp_path / "single.pth", [0, 2], [], [1])  # indices into subject 2's trials 1, 3, 5, ...
    trials = load_eeg_imagenet(pth, splits=single, split="train", subjects=2, split_within_subject=True)
    assert trials.extra["trial_index"] == [1, 5] and trials.subject == "sub-02"
    with pytest.raises(ToolkitError, match="exactly one subject"):
        load_eeg_imagenet(pth, splits=single, split="train", split_within_subject=True)


def test_images_root(tmp_path, pth):
    images = tmp_path / "image"
    (images / "n02389026").mkdir(parents=True)
    (images / "n02389026" / "n02389026_100.JPEG").write_bytes(b"\xff\xd8\xff\xd9")
    trials = load_eeg_imagenet(pth, images_root=images)
    assert trials.images.image_path(0) == images / "n02389026" / "n02389026_100.JPEG"
    with pytest.raises(ToolkitError, match=r"nowhere.*n02389026/n02389026_100\.JPEG"):
        load_eeg_imagenet(pth, images_root=tmp_path / "nowhere")


def test_legacy_torch_format(tmp_path):
    _, obj = make_eeg_imagenet(tmp_path / "x", [500, 505])
    path = tmp_path / "legacy.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    assert load_eeg_imagenet(path).data.shape == (2, 1, 128, 440)


# -- bad input -----------------------------------------------------------------------------------------------------
def test_bad_truncated_and_empty(tmp_path, pth):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(pth.read_bytes()[:3000])
    with pytest.raises(ToolkitError, match=r"cut\.pth.*truncated"):
        load_eeg_imagenet(cut)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ToolkitError, match=r"empty\.pth.*empty"):
        load_eeg_imagenet(empty)


def test_bad_malicious_file_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"dataset": [SystemCall(touch_command(marker))], "labels": [], "images": []}, path)
    with pytest.raises(ToolkitError, match=r"evil\.pth.*refused.*system"):
        load_eeg_imagenet(path)
    assert not marker.exists()


def _save(tmp_path, obj):
    path = tmp_path / "bad.pth"
    torch.save(obj, path)
    return path


def _trial(eeg, label=0, image=0, subject=1):
    return {"eeg": eeg, "label": label, "image": image, "subject": subject}


def test_bad_content(tmp_path, pth, splits):
    meta = {"labels": ["n02389026"], "images": ["n02389026_1"]}
    cases = [
        (torch.zeros(128, 500), "not an EEG-ImageNet file"),
        ({"dataset": [_trial(torch.zeros(64, 500))], **meta}, r"\(64, 500\).*\(128, T\)"),
        ({"dataset": [_trial(torch.zeros(128, 500, dtype=torch.int32))], **meta}, "int32"),
        ({"dataset": [_trial(torch.zeros(128, 500), label=3)], **meta}, "label 3"),
        ({"dataset": [_trial(torch.zeros(128, 500), image=9)], **meta}, "image 9"),
        ({"dataset": [_trial(torch.full((128, 500), float("nan")))], **meta}, "non-finite"),
    ]
    for obj, pattern in cases:
        with pytest.raises(ToolkitError, match=pattern) as info:
            load_eeg_imagenet(_save(tmp_path, obj))
        assert "bad.pth" in str(info.value)
    with pytest.raises(ToolkitError, match="without a split file"):
        load_eeg_imagenet(pth, split="train")
    with pytest.raises(ToolkitError, match="'validation'"):
        load_eeg_imagenet(pth, splits=splits, split="validation")
    out_of_range = write_splits(tmp_path / "far.pth", [0, 50], [], [])
    with pytest.raises(ToolkitError, match=r"index 50 .* 12 trials"):
        load_eeg_imagenet(pth, splits=out_of_range, split="train")
    with pytest.raises(ToolkitError, match="not an EEG-ImageNet split file"):
        load_eeg_imagenet(pth, splits=pth, split="train")
