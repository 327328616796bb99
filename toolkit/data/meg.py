"""THINGS-MEG (Hebart et al. 2023) files as preprocessed by ATM's notebook (reference ATM.md §2).

Accepted layout (``ROOT`` is the download; it may also be the ``preprocessed_MEG`` folder itself)::

    ROOT/preprocessed_MEG/sub-0N/preprocessed_meg_training.pkl   {meg_data: (1654, 12, 1, 271, 201), ch_names, times}
    ROOT/preprocessed_MEG/sub-0N/preprocessed_meg_zs_test.pkl    {meg_data: (200, 1, 12, 271, 201), ch_names, times}

(``preprocessed_meg_test.pkl`` is accepted for the test file too.) The files are pickles read with the restricted
unpickler (:func:`toolkit.data._unpickle.restricted_load`).

**Axis order differs between the two files.** The training file is 1,654 concepts × 12 exemplar images × 1
presentation; the test file is 200 images × 1 × 12 repetitions. Both become a :class:`TrialSet` whose conditions
are images (the MEG stimuli are matched to the exact image):

- training → ``(1654 · 12, 1, 271, 201)``, condition ``c`` is image ``c % 12`` of concept ``c // 12``
  (``condition_labels`` holds the concept index);
- test → ``(200, 12, 271, 201)``, 12 repetitions per image (``condition_labels`` = image index).

Sampling rate 200 Hz (0 … 1.0 s, 201 samples), 271 CTF sensors of MNE channel type ``"mag"``, dataset
``"things-meg"``. The files carry no image names, so no :class:`ImageSet` is attached (mapping events to THINGS
image files needs the dataset's event table, which the preprocessed files do not include).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .things import (
    _as_times,
    _cached_store,
    _check_finite,
    _check_float,
    _check_names,
    _require_root,
    _sfreq_from_times,
    _source_info,
    _times_for_data,
    _to_float32,
    normalize_split,
    normalize_subject,
)
from .trials import TrialSet

logger = logging.getLogger(__name__)

__all__ = ["MEG_SFREQ", "list_meg_subjects", "load_things_meg", "things_meg_file"]

MEG_SFREQ = 200.0
MEG_FOLDERS = ("preprocessed_MEG", "preprocessed_meg", "Preprocessed_MEG")
_MEG_FILES = {
    "train": ("preprocessed_meg_training.pkl",),
    "test": ("preprocessed_meg_zs_test.pkl", "preprocessed_meg_test.pkl"),
}
_MEG_KEYS = ("meg_data", "ch_names", "times")
# Official 5-D shapes per split (ATM.md §2); other counts are accepted.
OFFICIAL_MEG_SHAPES = {"train": (1654, 12, 1, 271, 201), "test": (200, 1, 12, 271, 201)}


def _candidates(root: Path) -> list[Path]:
    return [root / name for name in MEG_FOLDERS if (root / name).is_dir()] + [root]


def things_meg_file(root: str | os.PathLike, subject: int | str, split: str) -> Path:
    """Locate a subject's preprocessed THINGS-MEG file (see the module notes for the layout).

    Parameters
    ----------
    root : str | os.PathLike
        The dataset root holding ``preprocessed_MEG/``, or that folder itself.
    subject : int | str
        ``1``, ``"01"`` or ``"sub-01"``.
    split : str
        ``"train"`` or ``"test"``.

    Returns
    -------
    Path
        The ``.pkl`` file.
    """
    root = _require_root(root)
    sub, split = normalize_subject(subject), normalize_split(split)
    for base in _candidates(root):
        for name in _MEG_FILES[split]:
            if (base / sub / name).is_file():
                return base / sub / name
    have = list_meg_subjects(root)
    available = f"subjects found: {', '.join(have)}" if have else "no subject folders were found"
    raise ToolkitError(
        f"No THINGS-MEG {split} file for {sub} under '{root}' ({available}); expected "
        f"ROOT/preprocessed_MEG/{sub}/{_MEG_FILES[split][0]}."
    )


def list_meg_subjects(root: str | os.PathLike) -> list[str]:
    """Subjects (``"sub-0N"``) with at least one preprocessed THINGS-MEG file under ``root``, sorted."""
    root = _require_root(root)
    names = [n for files in _MEG_FILES.values() for n in files]
    found = set()
    for base in _candidates(root):
        for sub_dir in base.glob("sub-*"):
            if sub_dir.is_dir() and any((sub_dir / n).is_file() for n in names):
                try:
                    if normalize_subject(sub_dir.name) == sub_dir.name:
                        found.add(sub_dir.name)
                except ToolkitError:
                    continue
    return sorted(found)


def _split_of(path: Path, shape: tuple[int, ...]) -> str:
    """The split a file holds: from its name, else from which axis is the singleton."""
    name = path.name.lower()
    if "training" in name or "train" in name:
        return "train"
    if "test" in name:
        return "test"
    if shape[2] == 1 and shape[1] != 1:
        return "train"
    if shape[1] == 1 and shape[2] != 1:
        return "test"
    raise ToolkitError(
        f"Cannot tell whether '{path}' holds the training or the test split; name it as the official files are "
        f"({_MEG_FILES['train'][0]} / {_MEG_FILES['test'][0]})."
    )


def _read_meg_file(path: Path, split: str | None = None, *, check_finite: bool = True) -> dict:
    """Read and validate one THINGS-MEG file; return its 4-D view and metadata (data keep the file's dtype)."""
    from ._unpickle import restricted_load

    return _parse_meg(restricted_load(path), path, split, check_finite=check_finite)


def _parse_meg(obj: Any, path: Path, split: str | None = None, *, check_finite: bool = True) -> dict:
    """Validate the unpickled content of a THINGS-MEG file (see :func:`_read_meg_file`)."""
    label = str(path)
    if not isinstance(obj, dict) or any(k not in obj for k in _MEG_KEYS):
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ToolkitError(
            f"'{label}' is not a preprocessed THINGS-MEG file: expected a dict with keys {list(_MEG_KEYS)}, found "
            f"{found}."
        )
    raw = _check_float(obj["meg_data"], label, "meg_data")
    if raw.ndim != 5 or min(raw.shape) == 0:
        raise ToolkitError(
            f"'{label}': 'meg_data' has shape {raw.shape}, but 5 axes are expected: (concepts, images, 1, channels, "
            "samples) for training, e.g. (1654, 12, 1, 271, 201), or (images, 1, repetitions, channels, samples) "
            "for test, e.g. (200, 1, 12, 271, 201)."
        )
    split = normalize_split(split) if split is not None else _split_of(path, raw.shape)
    if split == "train":
        if raw.shape[2] != 1:
            raise ToolkitError(
                f"'{label}': 'meg_data' has shape {raw.shape}, but a training file has a single presentation on its "
                "third axis: (concepts, images, 1, channels, samples), e.g. (1654, 12, 1, 271, 201)."
            )
        n_concepts, n_images = raw.shape[:2]
        data = raw[:, :, 0].reshape(n_concepts * n_images, 1, *raw.shape[3:])
        labels = np.repeat(np.arange(n_concepts, dtype=np.int64), n_images)
        layout = {"n_concepts": n_concepts, "images_per_concept": n_images, "condition": "concept * images + image"}
    else:
        if raw.shape[1] != 1:
            raise ToolkitError(
                f"'{label}': 'meg_data' has shape {raw.shape}, but a test file has repetitions on its third axis "
                "and 1 on its second: (images, 1, repetitions, channels, samples), e.g. (200, 1, 12, 271, 201)."
            )
        data = raw[:, 0]
        labels = np.arange(raw.shape[0], dtype=np.int64)
        layout = {"n_images": raw.shape[0], "repetitions": raw.shape[2]}
    official = OFFICIAL_MEG_SHAPES[split]
    if raw.shape != official:
        logger.info("%s has meg_data of shape %s; the official %s file is %s.", label, raw.shape, split, official)
    n_chans, n_times = data.shape[2:]
    ch_names = _check_names(obj["ch_names"], label, n_chans)
    file_times = _as_times(obj["times"], label)
    sfreq = _sfreq_from_times(file_times, label)
    if abs(sfreq - MEG_SFREQ) > 1e-3 * MEG_SFREQ:
        raise ToolkitError(
            f"'{label}': its 'times' imply a sampling rate of {sfreq:g} Hz, but the THINGS-MEG files are at "
            f"{MEG_SFREQ:g} Hz; resample to {MEG_SFREQ:g} Hz."
        )
    times, offset = _times_for_data(file_times, n_times, label)
    if check_finite:
        _check_finite(data, label, ch_names)
    extra = {
        "file_shape": list(raw.shape),
        "layout": layout,
        "times_slice": [offset, offset + n_times],
        "file_times": {"n": int(file_times.size), "first": float(file_times[0]), "last": float(file_times[-1])},
    }
    return {
        "data": data,
        "ch_names": ch_names,
        "times": times,
        "labels": labels,
        "split": split,
        "raw_shape": raw.shape,
        "raw_dtype": raw.dtype,
        "file_times": file_times,
        "extra": extra,
    }


def _open_things_meg(path: Path, subject: str, split: str) -> TrialSet:
    """A validated TrialSet whose ``data`` still have the file's dtype (the caller casts to float32)."""
    parsed = _read_meg_file(path, split)
    return TrialSet(
        data=parsed["data"],
        ch_names=parsed["ch_names"],
        sfreq=MEG_SFREQ,
        times=parsed["times"],
        subject=subject,
        split=split,
        images=None,
        dataset="things-meg",
        ch_type="mag",
        condition_labels=parsed["labels"],
        extra={"source": _source_info(path), **parsed["extra"]},
    )


def load_things_meg(
    root: str | os.PathLike,
    subject: int | str,
    split: str,
    *,
    average: bool = False,
    mmap: bool = False,
) -> TrialSet:
    """Load one subject's preprocessed THINGS-MEG split.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset root holding ``preprocessed_MEG/sub-0N/`` (or the ``preprocessed_MEG`` folder itself).
    subject : int | str
        ``1``, ``"01"`` or ``"sub-01"``.
    split : str
        ``"train"`` or ``"test"``.
    average : bool
        Average the repetitions (12 per test image).
    mmap : bool
        Convert the file once into a memory-mapped store under the toolkit's cache and return a read-only memory
        map (the official training file is 8.65 GB of float64).

    Returns
    -------
    TrialSet
        float32 ``(n_conditions, n_repetitions, 271, 201)``, ``sfreq`` 200, ``ch_type`` ``"mag"``, ``dataset``
        ``"things-meg"``; see the module notes for how the two files' axes map onto it.

    Raises
    ------
    ToolkitError
        On a missing or malformed file (wrong shape, axis order or dtype, NaN/Inf, times that do not match the data
        or a rate other than 200 Hz), naming the file.
    """
    root = _require_root(root)
    subject, split = normalize_subject(subject), normalize_split(split)
    path = things_meg_file(root, subject, split)
    if mmap:
        trials = _cached_store(path, subject, split, lambda: _open_things_meg(path, subject, split), "things-meg")
    else:
        trials = _open_things_meg(path, subject, split)
        trials = replace(trials, data=_to_float32(trials.data))
    return trials.average() if average else trials
