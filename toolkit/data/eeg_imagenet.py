"""EEG-ImageNet (Spampinato et al. 2017, "EEG-CVPR40"), the 40-class dataset BrainVis uses (reference BRAINVIS.md §1).

Files (from ``perceivelab/eeg_visual_classification``)::

    eeg_5_95_std.pth                  torch-pickled dict {dataset: [{eeg: FloatTensor[128, T], label, image, subject}],
                                      labels: 40 WordNet ids, images: image stems such as "n02951358_31190"}
    block_splits_by_image_all.pth     {"splits": [{"train": [idx], "val": [idx], "test": [idx]}, ...]}
    IMAGES/<wnid>/<stem>.JPEG         the ImageNet images (optional)

Both ``.pth`` files are read with ``torch.load(path, weights_only=True)``, torch's restricted loader, so a file
cannot run code. Preprocessing follows BrainVis: keep trials with 450 ≤ T ≤ 600 samples, crop samples 20 … 460
(440 samples at 1 kHz, 20 … 459 ms after the segment start), no further normalisation.

Every trial becomes its own condition (``n_repetitions == 1``): ``condition_labels`` is the class index (0 … 39),
and the attached :class:`ImageSet` maps each condition to ``<wnid>/<stem>.JPEG`` under ``images_root`` (its concepts
are the 40 WordNet ids in label order). The 128 channels have no names in the release and no montage is known, so
they are named ``"E1"`` … ``"E128"`` (channel type ``"eeg"``); topographic maps are not possible.

**Block design.** All images of a class were shown in one block, so classifiers can exploit slow drifts shared by
a block instead of visual responses (Li et al., TPAMI 2020). ``extra["design"]`` is ``"block"`` so that every
result computed on this set can be labelled; THINGS-EEG (randomised rapid presentation) is the primary benchmark.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .images import ImageSet
from .things import _check_finite, _source_info, normalize_subject
from .trials import TrialSet

logger = logging.getLogger(__name__)

__all__ = [
    "EEG_IMAGENET_CLASSES",
    "EEG_IMAGENET_SFREQ",
    "load_eeg_imagenet",
    "load_eeg_imagenet_splits",
]

EEG_IMAGENET_SFREQ = 1000.0
N_CHANNELS = 128
# Label order used by the reference code: (WordNet id, class name), index = label (BRAINVIS.md §1.2).
EEG_IMAGENET_CLASSES = (
    ("n02389026", "sorrel horse"), ("n03888257", "parachute"), ("n03584829", "iron"),
    ("n02607072", "anemone fish"), ("n03297495", "espresso maker"), ("n03063599", "coffee mug"),
    ("n03792782", "mountain bike"), ("n04086273", "revolver"), ("n02510455", "panda"), ("n11939491", "daisy"),
    ("n02951358", "canoe"), ("n02281787", "lycaenid butterfly"), ("n02106662", "German shepherd"),
    ("n04120489", "running shoe"), ("n03590841", "jack-o'-lantern"), ("n02992529", "cellular phone"),
    ("n03445777", "golf ball"), ("n03180011", "desktop computer"), ("n02906734", "broom"), ("n07873807", "pizza"),
    ("n03773504", "missile"), ("n02492035", "capuchin"), ("n03982430", "pool table"), ("n03709823", "mailbag"),
    ("n03100240", "convertible"), ("n03376595", "folding chair"), ("n03877472", "pajama"), ("n03775071", "mitten"),
    ("n03272010", "electric guitar"), ("n04069434", "reflex camera"), ("n03452741", "grand piano"),
    ("n03792972", "mountain tent"), ("n07753592", "banana"), ("n13054560", "bolete"), ("n03197337", "digital watch"),
    ("n02504458", "African elephant"), ("n02690373", "airliner"), ("n03272562", "electric locomotive"),
    ("n04044716", "radio telescope"), ("n02124075", "Egyptian cat"),
)
SPLIT_PARTS = ("train", "val", "test")
# BrainVis preprocessing (BRAINVIS.md §1.4): length window and crop, in samples at 1 kHz.
MIN_LENGTH, MAX_LENGTH, CROP = 450, 600, (20, 460)
_BOILERPLATE = ("Weights only load failed", "Check the documentation")


def _torch_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure turned into one ToolkitError naming the file."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise ToolkitError(f"'{path}' does not exist or is not a file; check the path.")
    if path.stat().st_size == 0:
        raise ToolkitError(f"'{path}' is empty (0 bytes); download the file again.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as err:  # torch raises many types for damaged or unsafe files
        text = str(err).strip()
        if text.startswith(_BOILERPLATE[0]):
            parts = [p.strip() for p in text.split("\n\n") if p.strip() and not p.strip().startswith(_BOILERPLATE)]
            reason = " ".join(parts) or "it references objects outside tensors and plain containers"
            raise ToolkitError(
                f"'{path}' was refused by torch's safe loader (torch.load weights_only=True): {reason} Nothing was "
                "executed; the file may be malicious, obtain it again from the official source."
            ) from None
        detail = text.splitlines()[0] if text else type(err).__name__
        raise ToolkitError(
            f"'{path}' could not be read with torch.load (it is truncated or not a torch file: {detail}); download "
            "it again."
        ) from None


def load_eeg_imagenet_splits(path: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """Read a split file such as ``block_splits_by_image_all.pth``.

    Parameters
    ----------
    path : str | os.PathLike
        The ``.pth`` file, a dict ``{"splits": [{"train": [...], "val": [...], "test": [...]}, ...]}``.

    Returns
    -------
    list of dict
        One dict per split with int64 index arrays under ``"train"``, ``"val"`` and ``"test"``.
    """
    obj = _torch_load(path)
    splits = obj.get("splits") if isinstance(obj, dict) else None
    if not isinstance(splits, (list, tuple)) or not splits:
        raise ToolkitError(
            f"'{path}' is not an EEG-ImageNet split file: expected a dict with a non-empty 'splits' list."
        )
    out = []
    for number, split in enumerate(splits):
        if not isinstance(split, dict) or any(part not in split for part in SPLIT_PARTS):
            raise ToolkitError(f"'{path}': split {number} must be a dict with keys {list(SPLIT_PARTS)}.")
        entry = {}
        for part in SPLIT_PARTS:
            try:
                idx = np.asarray([int(i) for i in split[part]], dtype=np.int64)
            except (TypeError, ValueError):
                raise ToolkitError(f"'{path}': split {number} '{part}' must be a list of integers.") from None
            if idx.size and idx.min() < 0:
                raise ToolkitError(f"'{path}': split {number} '{part}' holds negative indices.")
            entry[part] = idx
        out.append(entry)
    return out


def _subject_numbers(subjects: Any) -> list[int] | None:
    if subjects is None:
        return None
    items = [subjects] if isinstance(subjects, (int, str, np.integer)) else list(subjects)
    if not items:
        raise ToolkitError("subjects is empty; pass None for all subjects or e.g. [1, 2].")
    return sorted({int(normalize_subject(s)[4:]) for s in items})


def _validated_trials(obj: Any, label: str) -> tuple[list, list[str], list[str]]:
    if not isinstance(obj, dict) or any(k not in obj for k in ("dataset", "labels", "images")):
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ToolkitError(
            f"'{label}' is not an EEG-ImageNet file: expected a dict with keys ['dataset', 'labels', 'images'], "
            f"found {found}."
        )
    trials, labels, images = obj["dataset"], obj["labels"], obj["images"]
    if not isinstance(trials, (list, tuple)) or not trials:
        raise ToolkitError(f"'{label}': 'dataset' must be a non-empty list of trials.")
    if not isinstance(labels, (list, tuple)) or not all(isinstance(w, str) for w in labels):
        raise ToolkitError(f"'{label}': 'labels' must be a list of WordNet ids.")
    if not isinstance(images, (list, tuple)) or not all(isinstance(s, str) for s in images):
        raise ToolkitError(f"'{label}': 'images' must be a list of image names.")
    return list(trials), list(labels), list(images)


def _trial_fields(trial: Any, index: int, label: str, n_labels: int, n_images: int) -> tuple[Any, int, int, int]:
    import torch

    if not isinstance(trial, dict) or any(k not in trial for k in ("eeg", "label", "image", "subject")):
        raise ToolkitError(f"'{label}': trial {index} must be a dict with keys eeg, label, image and subject.")
    eeg = trial["eeg"]
    if not isinstance(eeg, torch.Tensor) or eeg.ndim != 2 or eeg.shape[0] != N_CHANNELS:
        shape = tuple(eeg.shape) if isinstance(eeg, torch.Tensor) else type(eeg).__name__
        raise ToolkitError(f"'{label}': trial {index} 'eeg' is {shape}; a ({N_CHANNELS}, T) tensor is expected.")
    if not eeg.dtype.is_floating_point:
        raise ToolkitError(f"'{label}': trial {index} 'eeg' has dtype {eeg.dtype}; floating-point data are expected.")
    try:
        cls, img, subject = int(trial["label"]), int(trial["image"]), int(trial["subject"])
    except (TypeError, ValueError):
        raise ToolkitError(f"'{label}': trial {index} has a non-integer label, image or subject.") from None
    if not 0 <= cls < n_labels:
        raise ToolkitError(f"'{label}': trial {index} has label {cls}, outside the {n_labels} classes.")
    if not 0 <= img < n_images:
        raise ToolkitError(f"'{label}': trial {index} has image {img}, outside the {n_images} image names.")
    return eeg, cls, img, subject


def load_eeg_imagenet(
    path: str | os.PathLike,
    *,
    splits: str | os.PathLike | None = None,
    split: str | None = None,
    split_index: int = 0,
    subjects: int | str | list | None = None,
    split_within_subject: bool = False,
    images_root: str | os.PathLike | None = None,
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
    crop: tuple[int, int] = CROP,
) -> TrialSet:
    """Load EEG-ImageNet trials the way BrainVis does.

    Parameters
    ----------
    path : str | os.PathLike
        ``eeg_5_95_std.pth`` (or another variant of the release).
    splits : str | os.PathLike | None
        Split file (``block_splits_by_image_all.pth``); needed when ``split`` is given.
    split : str | None
        ``"train"``, ``"val"``, ``"test"``, ``"trainval"`` (train + val, what BrainVis trains on) or ``None`` for
        all trials.
    split_index : int
        Which split of the file (the reference code always uses 0).
    subjects : int | str | list | None
        Keep only these subjects (1 … 6; ``"sub-01"`` style accepted); ``None`` keeps all.
    split_within_subject : bool
        The split indices index the trials of the one subject given in ``subjects`` (as in
        ``block_splits_by_image_single.pth``) rather than the full trial list (``..._all.pth``, the default).
    images_root : str | os.PathLike | None
        Folder holding ``<wnid>/<stem>.JPEG``; ``None`` attaches the mapping without image files.
    min_length, max_length : int
        Keep trials whose length T satisfies ``min_length <= T <= max_length`` (and that reach the crop's end).
    crop : tuple of int
        Samples ``[start, stop)`` kept from each trial.

    Returns
    -------
    TrialSet
        float32 ``(n_trials, 1, 128, stop - start)`` at 1000 Hz, ``dataset`` ``"eeg-imagenet"``, channels
        ``"E1"`` … ``"E128"``, ``condition_labels`` the class index, ``extra["design"] == "block"``, and
        ``extra["trial_index"]`` / ``extra["trial_subject"]`` the position in the file and subject of each trial.

    Raises
    ------
    ToolkitError
        If a file is missing, damaged or refused by torch's safe loader, if a trial is malformed, NaN/Inf are
        present, a split index is out of range, or no trial is left after filtering.
    """
    label = str(path)
    start, stop = (int(c) for c in crop)
    if not 0 <= start < stop:
        raise ToolkitError(f"crop={crop} is not a valid [start, stop) sample range.")
    if min_length > max_length:
        raise ToolkitError(f"min_length={min_length} is larger than max_length={max_length}.")
    if split is not None and split not in (*SPLIT_PARTS, "trainval"):
        raise ToolkitError(f"split={split!r} is not known; use 'train', 'val', 'test', 'trainval' or None.")
    if split is not None and splits is None:
        raise ToolkitError("split was given without a split file; pass splits='block_splits_by_image_all.pth'.")
    wanted = _subject_numbers(subjects)
    if split_within_subject and (wanted is None or len(wanted) != 1):
        raise ToolkitError("split_within_subject=True needs exactly one subject in 'subjects'.")

    trials, labels, image_names = _validated_trials(_torch_load(path), label)
    subject_of = []
    for i, trial in enumerate(trials):
        try:
            subject_of.append(int(trial["subject"]))
        except (TypeError, KeyError, ValueError):
            raise ToolkitError(f"'{label}': trial {i} has no integer 'subject'.") from None
    candidates = np.arange(len(trials))
    if wanted is not None:
        candidates = candidates[np.isin(np.asarray(subject_of), wanted)]
        if candidates.size == 0:
            raise ToolkitError(f"'{label}' holds no trial of subjects {wanted}; it has {sorted(set(subject_of))}.")
    if split is not None:
        table = load_eeg_imagenet_splits(splits)
        if not 0 <= split_index < len(table):
            raise ToolkitError(f"split_index={split_index} is out of range; '{splits}' holds {len(table)} splits.")
        parts = ("train", "val") if split == "trainval" else (split,)
        idx = np.concatenate([table[split_index][p] for p in parts])
        pool = candidates if split_within_subject else np.arange(len(trials))
        if idx.size and idx.max() >= pool.size:
            raise ToolkitError(
                f"'{splits}' split {split_index} '{split}' holds index {int(idx.max())} but only {pool.size} trials "
                f"are indexed{' for that subject' if split_within_subject else ''}; the split file does not belong "
                f"to '{label}'."
            )
        selected = pool[idx]
        if wanted is not None and not split_within_subject:
            selected = selected[np.isin(np.asarray(subject_of)[selected], wanted)]
    else:
        selected = candidates

    kept, classes, images, subjects_kept, dropped = [], [], [], [], 0
    for i in selected:
        eeg, cls, img, subject = _trial_fields(trials[int(i)], int(i), label, len(labels), len(image_names))
        length = int(eeg.shape[1])
        if not (min_length <= length <= max_length) or length < stop:
            dropped += 1
            continue
        kept.append(int(i))
        classes.append(cls)
        images.append(image_names[img])
        subjects_kept.append(subject)
    if not kept:
        raise ToolkitError(
            f"No trial of '{label}' is left after keeping {min_length} <= T <= {max_length} samples"
            f"{' in split ' + repr(split) if split else ''}{' for subjects ' + str(wanted) if wanted else ''}."
        )
    if dropped:
        logger.info("%s: dropped %d of %d trials outside %d <= T <= %d.", label, dropped, len(selected),
                    min_length, max_length)
    import torch

    data = np.empty((len(kept), 1, N_CHANNELS, stop - start), dtype=np.float32)
    for row, i in enumerate(kept):
        data[row, 0] = trials[i]["eeg"][:, start:stop].to(dtype=torch.float32).numpy()
    ch_names = [f"E{k}" for k in range(1, N_CHANNELS + 1)]
    _check_finite(data, label, ch_names)

    folder_of = [stem.split("_", 1)[0] for stem in images]
    root = None
    if images_root is not None:
        root = Path(images_root).expanduser()
        first = root / folder_of[0] / f"{images[0]}.JPEG"
        if not root.is_dir() or not first.is_file():
            raise ToolkitError(
                f"Image folder '{root}' does not hold '{folder_of[0]}/{images[0]}.JPEG'; pass the folder holding the "
                "<wnid>/<stem>.JPEG images (or images_root=None)."
            )
    image_set = ImageSet(
        root=root,
        concept_folders=tuple(labels),
        image_files=tuple(f"{folder}/{stem}.JPEG" for folder, stem in zip(folder_of, images)),
        condition_concept=np.asarray(classes, dtype=np.int64),
    )
    names = dict(EEG_IMAGENET_CLASSES)
    subject_label = normalize_subject(wanted[0]) if wanted and len(wanted) == 1 else (
        "+".join(normalize_subject(s) for s in wanted) if wanted else "all"
    )
    return TrialSet(
        data=data,
        ch_names=ch_names,
        sfreq=EEG_IMAGENET_SFREQ,
        times=(start + np.arange(stop - start)) / EEG_IMAGENET_SFREQ,
        subject=subject_label,
        split=split or "all",
        images=image_set,
        dataset="eeg-imagenet",
        ch_type="eeg",
        condition_labels=np.asarray(classes, dtype=np.int64),
        extra={
            "design": "block",
            "source": _source_info(Path(path).expanduser()),
            "splits_file": str(splits) if splits is not None else None,
            "split_index": split_index if split is not None else None,
            "crop": [start, stop],
            "length_window": [min_length, max_length],
            "dropped_by_length": dropped,
            "class_names": [names.get(w, w) for w in labels],
            "trial_index": kept,
            "trial_subject": subjects_kept,
            "montage": None,
            "channel_note": "the release names no channels and no montage is known; generic names E1..E128",
        },
    )
