"""THINGS-EEG (THINGS-EEG2, Gifford et al. 2022) preprocessed files in the official layout.

Layout (``ROOT`` is what the user downloaded)::

    ROOT/Preprocessed_data_250Hz/sub-XX/preprocessed_eeg_training.npy   ATM's release (63 channels, 250 Hz)
    ROOT/Preprocessed_data_250Hz/sub-XX/preprocessed_eeg_test.npy
    ROOT/training_images/NNNNN_concept/<image>.jpg                      1654 folders x 10 images
    ROOT/test_images/NNNNN_concept/<image>.jpg                          200 folders x 1 image

The preprocessed folder may also be the OSF release's (17 posterior channels, 100 Hz), named
``Preprocessed_data_100Hz``, ``preprocessed_data``, ``Preprocessed_data`` or ``eeg_dataset/preprocessed_data``;
``ROOT`` may also be the preprocessed folder itself (holding ``sub-XX/``). Which variant a file is comes from its
content (the sampling rate implied by ``times``), never from the folder name.

Each file is a pickled dict ``{preprocessed_eeg_data, ch_names, times}`` (a raw pickle in ATM's release, an ``.npy``
object array in the OSF one); both are read with :func:`toolkit.data._unpickle.restricted_load`, never with
``allow_pickle=True``.

**The ``times`` quirk.** ATM's 250 Hz files store the full epoch's 300-entry ``times`` (−0.2 … 0.996 s) but the data
keep only the 250 samples from stimulus onset (``times[50:]``, 0 … 0.996 s): the 200 ms baseline was dropped after
``times`` was saved. The OSF 100 Hz files keep the baseline (``times`` −0.2 … 0.79 s, 100 entries, matching the
data). The rule applied here covers both: when ``times`` has exactly as many entries as the data have samples it is
used as is; when it has more, the data are taken to start at the sample where ``times`` is 0 and must run to the
end of ``times``; anything else is an error. The slice used is recorded in ``TrialSet.extra["times_slice"]``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .images import ImageSet
from .trials import TrialSet

logger = logging.getLogger(__name__)

__all__ = [
    "OFFICIAL_COUNTS",
    "PREPROCESSED_FOLDERS",
    "THINGS_EEG_VARIANTS",
    "list_subjects",
    "load_things_eeg",
    "normalize_split",
    "normalize_subject",
    "things_eeg_file",
    "write_things_eeg_file",
]

# Sampling rate (Hz, implied by `times`) -> dataset label.
THINGS_EEG_VARIANTS = {250.0: "things-eeg-250hz", 100.0: "things-eeg-100hz"}
# Preprocessed folders searched below ROOT, in order (ATM's first); ROOT itself is tried last.
PREPROCESSED_FOLDERS = (
    "Preprocessed_data_250Hz",
    "Preprocessed_data_100Hz",
    "preprocessed_data",
    "Preprocessed_data",
    "eeg_dataset/preprocessed_data",
)
# (n_conditions, n_repetitions) of the official release per split (ATM.md §1.1); other counts are accepted.
OFFICIAL_COUNTS = {"train": (16540, 4), "test": (200, 80)}

_EEG_FILES = {"train": "preprocessed_eeg_training.npy", "test": "preprocessed_eeg_test.npy"}
_IMAGE_DIRS = {"train": "training_images", "test": "test_images"}
_EEG_KEYS = ("preprocessed_eeg_data", "ch_names", "times")
_CHUNK_BYTES = 64 * 2**20
_SUBJECT_RE = re.compile(r"^(?:sub-?)?0*(\d{1,3})$", re.IGNORECASE)


# -- names ------------------------------------------------------------------------------------------------------
def normalize_subject(subject: int | str) -> str:
    """Return the ``"sub-XX"`` label of a subject given as ``1``, ``"1"``, ``"01"`` or ``"sub-01"``.

    Parameters
    ----------
    subject : int | str
        The subject.

    Returns
    -------
    str
        ``"sub-01"`` style label (two digits at least).
    """
    if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
        number = int(subject)
    else:
        match = _SUBJECT_RE.match(str(subject).strip())
        if match is None:
            raise ToolkitError(
                f"Subject {subject!r} is not a subject label; use a number (1) or a label like 'sub-01'."
            )
        number = int(match.group(1))
    if number < 1:
        raise ToolkitError(f"Subject {subject!r} is not valid; subjects are numbered from 1 (sub-01).")
    return f"sub-{number:02d}"


def normalize_split(split: str) -> str:
    """Return ``"train"`` or ``"test"`` for ``split`` (``"training"`` is accepted for ``"train"``)."""
    value = str(split).strip().lower()
    if value in ("train", "training"):
        return "train"
    if value == "test":
        return "test"
    raise ToolkitError(f"Split {split!r} is not known; use 'train' or 'test'.")


# -- shared validation helpers (also used by meg.py and store.py) ------------------------------------------------
def _source_info(path: Path) -> dict:
    """Provenance of a source file: its path, size and modification time."""
    st = path.stat()
    return {"file": str(path.resolve()), "size": int(st.st_size), "mtime": float(st.st_mtime)}


def _rows_per_chunk(shape: tuple[int, ...], itemsize: int = 8) -> int:
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    return max(1, _CHUNK_BYTES // max(row, 1))


def _check_float(data: Any, label: str, key: str) -> np.ndarray:
    """Require a real floating-point numpy array."""
    if not isinstance(data, np.ndarray):
        raise ToolkitError(f"'{label}': '{key}' is a {type(data).__name__}, not a numpy array; the file is damaged.")
    if data.dtype.kind != "f":
        raise ToolkitError(
            f"'{label}': '{key}' has dtype {data.dtype}, but EEG/MEG data must be floating point (float32 or "
            "float64); the file was not written by the official preprocessing."
        )
    return data


def _check_names(names: Any, label: str, n_chans: int) -> list[str]:
    """Channel names as a list of unique strings, one per data channel."""
    if isinstance(names, np.ndarray):
        names = names.tolist()
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ToolkitError(f"'{label}': 'ch_names' must be a list of strings; got {type(names).__name__}.")
    names = [str(n) for n in names]
    if len(names) != n_chans:
        raise ToolkitError(
            f"'{label}' has {n_chans} channels in its data but {len(names)} channel names; the file is inconsistent."
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ToolkitError(f"'{label}' lists channel names more than once: {dupes}.")
    return names


def _sfreq_from_times(times: np.ndarray, label: str) -> float:
    """Sampling rate implied by a uniformly spaced ``times`` vector (seconds)."""
    if times.size < 2:
        raise ToolkitError(f"'{label}': 'times' has {times.size} entries; at least 2 are needed to know the rate.")
    if not np.all(np.isfinite(times)):
        raise ToolkitError(f"'{label}': 'times' holds NaN or Inf values.")
    step = np.diff(times)
    median = float(np.median(step))
    if median <= 0 or np.max(np.abs(step - median)) > 1e-6 + 1e-3 * median:
        raise ToolkitError(f"'{label}': 'times' is not increasing at a constant step, so no sampling rate follows.")
    return round(1.0 / median, 6)


def _as_times(raw: Any, label: str) -> np.ndarray:
    """The file's ``times`` as a 1-D float64 array of seconds."""
    try:
        if not isinstance(raw, (np.ndarray, list, tuple)):
            raise TypeError(type(raw).__name__)
        times = np.asarray(raw, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"'{label}': 'times' must be an array of seconds ({err}).") from None
    return times


def _times_for_data(times: np.ndarray, n_times: int, label: str) -> tuple[np.ndarray, int]:
    """Return the time of each data sample and the offset into ``times`` (the module's ``times`` rule)."""
    if times.size == n_times:
        return times, 0
    if times.size > n_times:
        step = abs(float(np.median(np.diff(times)))) if times.size > 1 else 0.0
        onset = int(np.argmin(np.abs(times)))
        if step > 0 and abs(times[onset]) < step / 2 and times.size - onset == n_times:
            return times[onset:], onset
        raise ToolkitError(
            f"'{label}': 'times' has {times.size} entries ({times[0]:.3f} … {times[-1]:.3f} s) but the data have "
            f"{n_times} samples, and the samples from stimulus onset (t = 0) to the end of 'times' do not number "
            f"{n_times}; the file's times and data do not match."
        )
    raise ToolkitError(
        f"'{label}': 'times' has {times.size} entries but the data have {n_times} samples; the file's times and "
        "data do not match."
    )


def _check_finite(data: np.ndarray, label: str, ch_names: list[str]) -> None:
    """Raise if the 4-D ``data`` hold NaN/Inf or values beyond the float32 range (checked in chunks)."""
    n_nan = n_inf = n_big = 0
    first: tuple[int, ...] | None = None
    bad_rows: list[int] = []
    step = _rows_per_chunk(data.shape, data.dtype.itemsize)
    for start in range(0, data.shape[0], step):
        chunk = np.asarray(data[start : start + step])
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(chunk.astype(np.float32, copy=False))
        if not bad.any():
            continue
        n_nan += int(np.isnan(chunk).sum())
        n_inf += int(np.isinf(chunk).sum())
        n_big += int((bad & np.isfinite(chunk)).sum())
        rows = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))
        bad_rows.extend(int(r) + start for r in rows)
        if first is None:
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            first = (first[0] + start, *first[1:])
    if first is None:
        return
    total = n_nan + n_inf + n_big
    kinds = [f"{n_nan} NaN", f"{n_inf} Inf"] + ([f"{n_big} beyond the float32 range"] if n_big else [])
    where = f"condition {first[0]}"
    if len(first) == 4:
        where += f", repetition {first[1]}, channel '{ch_names[first[2]]}', sample {first[3]}"
    shown = ", ".join(str(r) for r in bad_rows[:10]) + (", …" if len(bad_rows) > 10 else "")
    raise ToolkitError(
        f"'{label}' holds {total} non-finite{' or out-of-range' if n_big else ''} values ({', '.join(kinds)}) in "
        f"{len(bad_rows)} condition{'s' if len(bad_rows) > 1 else ''} ({shown}); "
        f"the first is at {where}. Interpolate or drop those trials and write the file again."
    )


def _to_float32(data: Any) -> np.ndarray:
    """A float32 copy of ``data`` filled in chunks (no float64 temporary of the whole array)."""
    if isinstance(data, np.ndarray) and data.dtype == np.float32 and not isinstance(data, np.memmap):
        return data
    out = np.empty(data.shape, dtype=np.float32)
    step = _rows_per_chunk(data.shape, 4)
    for start in range(0, data.shape[0], step):
        out[start : start + step] = data[start : start + step]
    return out


@functools.lru_cache(maxsize=1)
def _known_10_05_names() -> frozenset[str]:
    """Electrode names of MNE's template 10-05 montage (``colin27_1005``, formerly ``standard_1005``)."""
    import mne

    name = "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
    return frozenset(mne.channels.make_standard_montage(name).ch_names)


def _check_10_05(names: list[str], label: str) -> None:
    known = _known_10_05_names()
    unknown = [n for n in names if n not in known]
    if not unknown:
        return
    lower = {k.lower(): k for k in known}
    hints = [f"'{n}' -> '{lower[n.lower()]}'" for n in unknown if n.lower() in lower]
    hint = f" (case differs: {', '.join(hints[:5])})" if hints else ""
    raise ToolkitError(
        f"'{label}' has {len(unknown)} channel names that are not 10-05 electrode names known to MNE's standard "
        f"montage: {unknown[:20]}{hint}; rename them to 10-05 names."
    )


# -- files --------------------------------------------------------------------------------------------------------
def _require_root(root: str | os.PathLike) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ToolkitError(f"Data root '{root}' does not exist or is not a folder; pass the downloaded THINGS folder.")
    return root


def _preprocessed_candidates(root: Path, folder: str | None) -> list[Path]:
    if folder is not None:
        base = root / folder
        if not base.is_dir():
            raise ToolkitError(f"Folder '{base}' does not exist; check the 'folder' argument.")
        return [base]
    return [root / name for name in PREPROCESSED_FOLDERS if (root / name).is_dir()] + [root]


def things_eeg_file(root: str | os.PathLike, subject: int | str, split: str, *, folder: str | None = None) -> Path:
    """Locate a subject's preprocessed THINGS-EEG file.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset root (holding ``Preprocessed_data_250Hz/`` or another accepted folder, see the module notes),
        or the preprocessed folder itself.
    subject : int | str
        ``1``, ``"01"`` or ``"sub-01"``.
    split : str
        ``"train"`` or ``"test"``.
    folder : str | None
        Only look in ``root / folder`` (to choose between variants when several are present).

    Returns
    -------
    Path
        ``…/sub-XX/preprocessed_eeg_training.npy`` or ``…/preprocessed_eeg_test.npy``.
    """
    root = _require_root(root)
    sub, split = normalize_subject(subject), normalize_split(split)
    tried = []
    for base in _preprocessed_candidates(root, folder):
        path = base / sub / _EEG_FILES[split]
        if path.is_file():
            return path
        tried.append(str(path))
    have = list_subjects(root, folder=folder)
    available = f"subjects found: {', '.join(have)}" if have else "no subject folders were found"
    raise ToolkitError(
        f"No THINGS-EEG {split} file for {sub} under '{root}' ({available}); expected "
        f"ROOT/Preprocessed_data_250Hz/{sub}/{_EEG_FILES[split]} (looked at {tried[0]}"
        f"{' and others' if len(tried) > 1 else ''})."
    )


def list_subjects(root: str | os.PathLike, *, folder: str | None = None) -> list[str]:
    """Subjects (``"sub-XX"``) that have at least one preprocessed THINGS-EEG file under ``root``, sorted."""
    root = _require_root(root)
    found = set()
    for base in _preprocessed_candidates(root, folder):
        for sub_dir in base.glob("sub-*"):
            if sub_dir.is_dir() and any((sub_dir / name).is_file() for name in _EEG_FILES.values()):
                try:
                    if normalize_subject(sub_dir.name) == sub_dir.name:
                        found.add(sub_dir.name)
                except ToolkitError:
                    continue
    return sorted(found)


@dataclass
class _EEGFile:
    """A validated THINGS-EEG file; ``data`` keep the file's dtype (cast to float32 by the caller)."""

    data: np.ndarray
    ch_names: list[str]
    times: np.ndarray
    sfreq: float
    dataset: str
    extra: dict = field(default_factory=dict)


def _read_eeg_file(path: Path, *, check_finite: bool = True) -> _EEGFile:
    """Read and validate one official THINGS-EEG file (see the module notes for the rules)."""
    from ._unpickle import restricted_load

    return _parse_eeg(restricted_load(path), str(path), check_finite=check_finite)


def _parse_eeg(obj: Any, label: str, *, check_finite: bool = True) -> _EEGFile:
    """Validate the unpickled content of a THINGS-EEG file (``label`` names it in errors)."""
    if not isinstance(obj, dict) or any(k not in obj for k in _EEG_KEYS):
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ToolkitError(
            f"'{label}' is not a preprocessed THINGS-EEG file: expected a dict with keys {list(_EEG_KEYS)}, found "
            f"{found}."
        )
    data = _check_float(obj["preprocessed_eeg_data"], label, "preprocessed_eeg_data")
    if data.ndim != 4:
        raise ToolkitError(
            f"'{label}': 'preprocessed_eeg_data' has shape {data.shape}, but 4 axes (conditions, repetitions, "
            "channels, samples) are expected, e.g. (16540, 4, 63, 250)."
        )
    n_chans, n_times = data.shape[2:]
    if min(data.shape) == 0:
        raise ToolkitError(f"'{label}': 'preprocessed_eeg_data' is empty (shape {data.shape}).")
    ch_names = _check_names(obj["ch_names"], label, n_chans)
    file_times = _as_times(obj["times"], label)
    sfreq = _sfreq_from_times(file_times, label)
    rate = next((r for r in THINGS_EEG_VARIANTS if abs(sfreq - r) < 1e-3 * r), None)
    if rate is None:
        raise ToolkitError(
            f"'{label}': its 'times' imply a sampling rate of {sfreq:g} Hz, but THINGS-EEG files are at 250 Hz "
            "(ATM's release) or 100 Hz (the OSF release); resample to one of them."
        )
    times, offset = _times_for_data(file_times, n_times, label)
    sfreq, dataset = rate, THINGS_EEG_VARIANTS[rate]
    _check_10_05(ch_names, label)
    if check_finite:
        _check_finite(data, label, ch_names)
    extra = {
        "times_slice": [offset, offset + n_times],
        "file_times": {"n": int(file_times.size), "first": float(file_times[0]), "last": float(file_times[-1])},
    }
    if offset:
        extra["times_note"] = (
            f"the file's 'times' has {file_times.size} entries from {file_times[0]:.3f} s; the data hold "
            f"times[{offset}:] ({times[0]:.3f} … {times[-1]:.3f} s), the baseline having been dropped"
        )
    return _EEGFile(data=data, ch_names=ch_names, times=times, sfreq=sfreq, dataset=dataset, extra=extra)


def _log_counts(label: str, split: str, n_cond: int, n_rep: int) -> None:
    official = OFFICIAL_COUNTS.get(split)
    if official is not None and (n_cond, n_rep) != official:
        logger.info(
            "%s has %d conditions x %d repetitions; the official %s release has %d x %d.", label, n_cond, n_rep,
            split, *official,
        )


# -- images -------------------------------------------------------------------------------------------------------
def _image_folder(images_root: str | os.PathLike, split: str) -> Path:
    """The split's image folder for an explicit ``images_root`` (the folder holding ``training_images/`` etc.)."""
    sub = _IMAGE_DIRS[split]
    root = Path(images_root).expanduser()
    if (root / sub).is_dir():
        return root / sub
    if root.is_dir() and root.name == sub:
        return root
    raise ToolkitError(
        f"Image folder '{root / sub}' does not exist; pass as images_root the folder that holds "
        f"'{_IMAGE_DIRS['train']}/' and '{_IMAGE_DIRS['test']}/' (or images_root=None to load without images)."
    )


def _things_images(root: Path, split: str, images_root: Any) -> ImageSet | None:
    if images_root is None:
        return None
    if isinstance(images_root, str) and images_root == "auto":
        folder = root / _IMAGE_DIRS[split]
        if not folder.is_dir():
            logger.info("No %s under %s; loading without the image mapping.", _IMAGE_DIRS[split], root)
            return None
    else:
        folder = _image_folder(images_root, split)
    return ImageSet.from_folder(folder)


def _check_images(images: ImageSet | None, n_cond: int, label: str) -> None:
    """The image folders must map exactly one image per data condition."""
    if images is None or images.n_conditions == n_cond:
        return
    counts = np.bincount(images.condition_concept, minlength=images.n_concepts)
    detail = ""
    if images.n_concepts and n_cond % images.n_concepts == 0:
        expected = n_cond // images.n_concepts
        odd = [f"{images.concept_folders[i]} ({counts[i]})" for i in np.flatnonzero(counts != expected)[:5]]
        if odd:
            detail = f"; with {expected} images per concept, these folders differ: {', '.join(odd)}"
    raise ToolkitError(
        f"'{label}' has {n_cond} conditions but the image folder '{images.root}' maps {images.n_conditions} images "
        f"in {images.n_concepts} concept folders{detail}; the data and the images must come from the same release "
        "(or load with images_root=None)."
    )


# -- loading ------------------------------------------------------------------------------------------------------
def _open_things_eeg(path: Path, subject: str, split: str, images: ImageSet | None) -> TrialSet:
    """A validated TrialSet whose ``data`` still have the file's dtype (the caller casts to float32)."""
    parsed = _read_eeg_file(path)
    n_cond, n_rep = parsed.data.shape[:2]
    _check_images(images, n_cond, str(path))
    _log_counts(str(path), split, n_cond, n_rep)
    dataset = parsed.dataset
    # ROOT/<preprocessed folder>/sub-XX/file: a root written by the toolkit's simulator carries simulation.json.
    # Say so in the label, so simulated trials are never mistaken for recordings of people.
    if len(path.parents) > 2 and (path.parents[2] / "simulation.json").is_file():
        dataset = f"simulated-{dataset}"
    return TrialSet(
        data=parsed.data,
        ch_names=parsed.ch_names,
        sfreq=parsed.sfreq,
        times=parsed.times,
        subject=subject,
        split=split,
        images=images,
        dataset=dataset,
        ch_type="eeg",
        extra={"source": _source_info(path), **parsed.extra},
    )


def _cached_store(path: Path, subject: str, split: str, opener: Callable[[], TrialSet], prefix: str) -> TrialSet:
    """Convert ``path`` once into a store under the cache (keyed by the file's path, size and mtime) and open it.

    ``opener`` returns the validated TrialSet of the file (without images; they are attached by the caller).
    """
    from ..utils import cache_dir
    from .store import is_store, open_store, write_store

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    store_path = cache_dir("stores") / f"{prefix}-{subject}-{split}-{key}"
    if not is_store(store_path):
        write_store(store_path, [opener()], overwrite=True)
    return open_store(store_path).load(subject, split)


def load_things_eeg(
    root: str | os.PathLike,
    subject: int | str,
    split: str,
    *,
    images_root: str | os.PathLike | None = "auto",
    average: bool = False,
    mmap: bool = False,
    folder: str | None = None,
) -> TrialSet:
    """Load one subject's preprocessed THINGS-EEG split from the official layout.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset root (see the module notes for the accepted layouts).
    subject : int | str
        ``1``, ``"01"`` or ``"sub-01"``.
    split : str
        ``"train"`` or ``"test"``.
    images_root : str | os.PathLike | None
        ``"auto"`` attaches ``ROOT/training_images`` / ``ROOT/test_images`` when present; a path names the folder
        holding those two folders (an error if the split's folder is missing); ``None`` loads without images.
    average : bool
        Average the repetitions (``n_repetitions == 1``), the THINGS convention for the test split.
    mmap : bool
        Convert the file once into a memory-mapped store under the toolkit's cache (keyed by the file's path, size
        and modification time) and return a read-only memory map, so later loads cost no RAM. Without it the data
        are read into memory: the official training file is 8.3 GB of float64 and loading it needs that plus the
        4.2 GB float32 result.
    folder : str | None
        Only look in ``root / folder`` (e.g. ``"Preprocessed_data_100Hz"`` when both variants are present).

    Returns
    -------
    TrialSet
        float32 ``(n_conditions, n_repetitions, n_chans, n_times)``; ``dataset`` is ``"things-eeg-250hz"`` or
        ``"things-eeg-100hz"`` (prefixed ``"simulated-"`` for a root written by the simulator); ``times`` are
        those of the data (0 … 0.996 s for ATM's release, see the module notes); ``extra["source"]`` records the
        file.

    Raises
    ------
    ToolkitError
        On a missing or malformed file (wrong shape or dtype, NaN/Inf, unknown channel names, a sampling rate other
        than 250/100 Hz, times that do not match the data), on missing image folders, or when the image folders do
        not map one image per condition. The message names the file.
    """
    root = _require_root(root)
    subject, split = normalize_subject(subject), normalize_split(split)
    path = things_eeg_file(root, subject, split, folder=folder)
    images = _things_images(root, split, images_root)
    if mmap:
        trials = _cached_store(
            path, subject, split, lambda: _open_things_eeg(path, subject, split, None), "things-eeg"
        )
        _check_images(images, trials.n_conditions, str(path))
        trials = replace(trials, images=images)
    else:
        trials = _open_things_eeg(path, subject, split, images)
        trials = replace(trials, data=_to_float32(trials.data))
    return trials.average() if average else trials


def write_things_eeg_file(
    path: str | os.PathLike,
    data: np.ndarray,
    ch_names: list[str],
    times: np.ndarray,
    *,
    protocol: int = 4,
) -> Path:
    """Write a preprocessed THINGS-EEG file in ATM's container (a raw pickled dict), atomically.

    Parameters
    ----------
    path : str | os.PathLike
        Destination, e.g. ``ROOT/Preprocessed_data_250Hz/sub-01/preprocessed_eeg_test.npy``.
    data : np.ndarray, shape (n_conditions, n_repetitions, n_chans, n_times)
        Floating-point data.
    ch_names : list of str
        One name per channel.
    times : np.ndarray
        The ``times`` vector to store (ATM's files store 300 entries from −0.2 s for 250 data samples).
    protocol : int
        Pickle protocol (ATM's files use 4).

    Returns
    -------
    Path
        The written file.
    """
    from ..utils import atomic_path

    data = np.asarray(data)
    if data.ndim != 4 or data.dtype.kind != "f" or len(ch_names) != data.shape[2]:
        raise ToolkitError(
            f"Cannot write '{path}': data must be a 4-D float array with one channel name per channel; got shape "
            f"{data.shape}, dtype {data.dtype} and {len(ch_names)} names."
        )
    obj = {"preprocessed_eeg_data": data, "ch_names": list(ch_names), "times": np.asarray(times, dtype=np.float64)}
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return Path(path)
