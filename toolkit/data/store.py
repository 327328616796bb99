"""The memory-mapped store: official files converted once, then read one trial at a time without loading a file.

A store is a directory::

    STORE/store.json          format name and version; per (subject, split): file, shape, dtype, channels, rate,
                              times, dataset, image mapping, labels, provenance (source file, size, mtime)
    STORE/sub-01_train.npy    float32 (n_conditions, n_repetitions, n_chans, n_times), one per (subject, split)
    STORE/sub-01_test.npy

The ``.npy`` files are plain numeric arrays (no pickles): :meth:`Store.load` opens them with
``np.load(mmap_mode="r", allow_pickle=False)``, so ``TrialSet.trial(c, r)`` reads only that trial from disk and the
loaded set costs almost no memory. A store is written atomically (a temporary sibling directory renamed into place),
array by array in chunks through :func:`numpy.lib.format.open_memmap`, so converting holds at most one source file
plus one chunk in memory, and a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .images import ImageSet
from .trials import TrialSet

logger = logging.getLogger(__name__)

__all__ = ["STORE_FORMAT", "STORE_VERSION", "Store", "StoreEntry", "convert", "inspect_path", "is_store", "open_store",
           "write_store"]

STORE_FORMAT = "eeg-visual-toolkit-store"
STORE_VERSION = 1
_META = "store.json"
_CHUNK_BYTES = 64 * 2**20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.+-]")


# -- helpers ------------------------------------------------------------------------------------------------------
def _jsonable(obj: Any, where: str) -> Any:
    """Plain JSON types from numpy scalars/arrays, paths and tuples; anything else is an error naming ``where``."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, np.generic):
        return _jsonable(obj.item(), where)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), where)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, where) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
    raise ToolkitError(f"{where} holds a {type(obj).__name__}, which cannot be stored in store.json.")


def _rows_per_chunk(shape: tuple[int, ...]) -> int:
    row = int(np.prod(shape[1:], dtype=np.int64)) * 4
    return max(1, _CHUNK_BYTES // max(row, 1))


def _subject_key(subject: int | str, known: Iterable[str]) -> str:
    """Match ``subject`` against the store's labels (``1``/``"01"``/``"sub-01"``; free labels such as ``"all"``)."""
    from .things import normalize_subject

    known = list(known)
    if isinstance(subject, str) and subject in known:
        return subject
    try:
        return normalize_subject(subject)
    except ToolkitError:
        return str(subject)


def _file_name(subject: str, split: str) -> str:
    return f"{_SAFE_NAME.sub('_', subject)}_{_SAFE_NAME.sub('_', split)}.npy"


def _check_destination(path: Path, overwrite: bool) -> None:
    if not path.exists():
        return
    if not overwrite:
        raise ToolkitError(f"'{path}' already exists; choose another path or pass overwrite=True (--overwrite).")
    if not is_store(path):
        raise ToolkitError(
            f"'{path}' exists and is not a store, so it is not overwritten; remove it yourself or choose another path."
        )


def _write_array(path: Path, data: Any, desc: str) -> None:
    """Write ``data`` (any array-like sliceable along axis 0) as float32 ``.npy`` in chunks through a memory map."""
    from ..utils import progress

    shape = tuple(int(n) for n in data.shape)
    # open_memmap writes the .npy header and sizes the file; the chunks are then written through an ordinary file
    # handle at the data offset rather than through the mapping, because dirty mapped pages count in the process's
    # RSS until written back (a 4.2 GB store would show as 4.2 GB resident), while buffered writes do not.
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    offset, dtype = out.offset, out.dtype
    del out
    step = _rows_per_chunk(shape)
    bar = progress(desc=desc, total=shape[0], unit="cond")
    with path.open("r+b") as fh:
        fh.seek(offset)
        for start in range(0, shape[0], step):
            stop = min(start + step, shape[0])
            chunk = np.ascontiguousarray(data[start:stop], dtype=dtype)
            if chunk.shape != (stop - start, *shape[1:]):
                raise ToolkitError(f"Reading rows {start}:{stop} gave shape {chunk.shape}; the data are inconsistent.")
            chunk.tofile(fh)
            bar.update(stop - start)
    bar.close()


def _entry_meta(trials: TrialSet, file: str) -> dict:
    extra = dict(trials.extra)
    source = extra.pop("source", None)
    extra.pop("store", None)
    images = trials.images
    return {
        "subject": trials.subject,
        "split": trials.split,
        "file": file,
        "shape": [int(n) for n in trials.data.shape],
        "dtype": "float32",
        "ch_names": list(trials.ch_names),
        "ch_type": trials.ch_type,
        "sfreq": float(trials.sfreq),
        "times": [float(t) for t in trials.times],
        "dataset": trials.dataset,
        "images": images.to_dict() if images is not None else None,
        "images_root": str(images.root) if images is not None and images.root is not None else None,
        "images_subdir": images.root.name if images is not None and images.root is not None else None,
        "condition_labels": (
            [int(c) for c in trials.condition_labels] if trials.condition_labels is not None else None
        ),
        "extra": _jsonable(extra, f"extra of {trials.subject} {trials.split}"),
        "source": _jsonable(source, "extra['source']"),
    }


# -- writing ------------------------------------------------------------------------------------------------------
def write_store(path: str | os.PathLike, trialsets: Iterable[TrialSet], *, overwrite: bool = False) -> Path:
    """Write trial sets into a new store directory, atomically.

    Parameters
    ----------
    path : str | os.PathLike
        The store directory to create.
    trialsets : Iterable of TrialSet
        One set per (subject, split); consumed one at a time, so a generator keeps only one set in memory. The
        data are read only through ``.shape`` and slices along the first axis and written as float32.
    overwrite : bool
        Replace an existing store at ``path`` (a directory that is not a store is never replaced).

    Returns
    -------
    Path
        The store directory.

    Raises
    ------
    ToolkitError
        If ``path`` exists (without ``overwrite``), two sets share a (subject, split), no set is given, or reading a
        set fails; nothing is left at ``path`` (or its previous content is kept) and no temporary directory remains.
    """
    from .. import __version__
    from ..utils import atomic_path, atomic_write_json

    path = Path(path).expanduser()
    _check_destination(path, overwrite)
    entries: list[dict] = []
    with atomic_path(path, is_dir=True) as tmp:
        for trials in trialsets:
            if not isinstance(trials, TrialSet):
                raise ToolkitError(f"write_store expects TrialSet objects; got a {type(trials).__name__}.")
            key = (trials.subject, trials.split)
            file = _file_name(*key)
            if any((e["subject"], e["split"]) == key or e["file"] == file for e in entries):
                raise ToolkitError(
                    f"Two trial sets are for subject {key[0]!r} split {key[1]!r}; each pair is stored once."
                )
            meta = _entry_meta(trials, file)
            _write_array(tmp / file, trials.data, desc=f"{key[0]} {key[1]}")
            entries.append(meta)
            del trials  # release this set's data before the iterable produces the next one
        if not entries:
            raise ToolkitError(f"No trial sets were given to write into '{path}'.")
        atomic_write_json(
            tmp / _META,
            {
                "format": STORE_FORMAT,
                "version": STORE_VERSION,
                "toolkit_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "entries": entries,
            },
        )
    return path


# -- reading ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreEntry:
    """The description of one (subject, split) array in a store (see the module notes)."""

    subject: str
    split: str
    file: str
    shape: tuple[int, ...]
    dtype: str
    ch_names: list[str]
    ch_type: str
    sfreq: float
    times: np.ndarray
    dataset: str
    images: dict | None
    images_root: str | None
    images_subdir: str | None
    condition_labels: list[int] | None
    extra: dict
    source: dict | None

    @classmethod
    def from_json(cls, obj: dict, label: str) -> StoreEntry:
        """Build from one ``entries`` item of ``store.json``."""
        try:
            return cls(
                subject=str(obj["subject"]),
                split=str(obj["split"]),
                file=str(obj["file"]),
                shape=tuple(int(n) for n in obj["shape"]),
                dtype=str(obj["dtype"]),
                ch_names=[str(c) for c in obj["ch_names"]],
                ch_type=str(obj["ch_type"]),
                sfreq=float(obj["sfreq"]),
                times=np.asarray(obj["times"], dtype=np.float64),
                dataset=str(obj["dataset"]),
                images=obj.get("images"),
                images_root=obj.get("images_root"),
                images_subdir=obj.get("images_subdir"),
                condition_labels=obj.get("condition_labels"),
                extra=dict(obj.get("extra") or {}),
                source=obj.get("source"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ToolkitError(
                f"'{label}' has a damaged entry ({type(err).__name__}: {err}); convert again."
            ) from None

    def summary(self) -> dict:
        """A JSON-ready summary: subject, split, shape, dtype, channels, rate, times, dataset."""
        return {
            "subject": self.subject,
            "split": self.split,
            "file": self.file,
            "dataset": self.dataset,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "n_channels": len(self.ch_names),
            "channels": list(self.ch_names),
            "ch_type": self.ch_type,
            "sfreq": self.sfreq,
            "times": _times_summary(self.times),
            "has_images": self.images is not None,
            "source": self.source,
        }


def _times_summary(times: np.ndarray) -> dict:
    times = np.asarray(times, dtype=np.float64)
    return {"first": float(times[0]), "last": float(times[-1]), "n": int(times.size)} if times.size else {"n": 0}


class Store:
    """An opened store (see :func:`open_store`)."""

    def __init__(self, path: Path, meta: dict) -> None:
        self.path = path
        self.meta = meta
        label = str(path / _META)
        self._entries = [StoreEntry.from_json(e, label) for e in meta["entries"]]

    def __repr__(self) -> str:
        return f"Store('{self.path}', {len(self._entries)} entries, subjects={self.subjects})"

    @property
    def entries(self) -> list[StoreEntry]:
        """All (subject, split) entries, in the order written."""
        return list(self._entries)

    @property
    def subjects(self) -> list[str]:
        """Subject labels, sorted."""
        return sorted({e.subject for e in self._entries})

    def splits(self, subject: int | str) -> list[str]:
        """Splits stored for ``subject``."""
        key = _subject_key(subject, self.subjects)
        return [e.split for e in self._entries if e.subject == key]

    def entry(self, subject: int | str, split: str) -> StoreEntry:
        """The entry of ``subject`` / ``split``."""
        key = _subject_key(subject, self.subjects)
        for e in self._entries:
            if e.subject == key and e.split == split:
                return e
        have = ", ".join(f"{e.subject}/{e.split}" for e in self._entries)
        raise ToolkitError(f"Store '{self.path}' has no {key} {split!r} data; it holds {have}.")

    def _memmap(self, entry: StoreEntry) -> np.ndarray:
        file = self.path / entry.file
        if not file.is_file():
            raise ToolkitError(f"Store file '{file}' is missing; the store is incomplete, convert again.")
        try:
            data = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ToolkitError(f"Store file '{file}' is damaged ({err}); convert again.") from None
        if tuple(data.shape) != entry.shape or data.dtype != np.float32:
            raise ToolkitError(
                f"Store file '{file}' holds {data.dtype} {tuple(data.shape)} but store.json says float32 "
                f"{entry.shape}; the store is damaged, convert again."
            )
        return data

    def _image_root(self, entry: StoreEntry, images_root: str | os.PathLike | None) -> Path | None:
        if entry.images is None:
            if images_root is not None:
                raise ToolkitError(
                    f"Store '{self.path}' has no image mapping for {entry.subject} {entry.split}, so images_root "
                    "cannot be used; convert with the image folders beside the data."
                )
            return None
        files = entry.images.get("image_files") or []
        first = files[0] if files else None
        if images_root is None:
            stored = Path(entry.images_root) if entry.images_root else None
            if stored is not None and first is not None and (stored / first).is_file():
                return stored
            return None
        base = Path(images_root).expanduser()
        candidates = ([base / entry.images_subdir] if entry.images_subdir else []) + [base]
        for folder in candidates:
            if first is None or (folder / first).is_file():
                return folder
        raise ToolkitError(
            f"images_root '{base}' does not hold '{(entry.images_subdir + '/') if entry.images_subdir else ''}"
            f"{first}'; pass the folder holding the stimulus images of this store."
        )

    def load(self, subject: int | str, split: str, *, images_root: str | os.PathLike | None = None) -> TrialSet:
        """Open one (subject, split) as a TrialSet whose ``data`` are a read-only memory map.

        Parameters
        ----------
        subject : int | str
            ``1``, ``"01"`` or ``"sub-01"`` (or the store's own label, e.g. ``"all"``).
        split : str
            ``"train"``, ``"test"`` or another stored split.
        images_root : str | os.PathLike | None
            Where the stimulus images are on this machine: the folder holding the split's image folder (e.g. the
            dataset root with ``training_images/``) or that folder itself. ``None`` uses the folder recorded at
            conversion when it still exists; otherwise the mapping is attached without image files.

        Returns
        -------
        TrialSet
            ``data`` is an ``np.memmap`` opened read-only; indexing one trial reads only that trial.
        """
        entry = self.entry(subject, split)
        data = self._memmap(entry)
        images = None
        if entry.images is not None:
            images = ImageSet.from_dict(entry.images, root=self._image_root(entry, images_root))
        else:
            self._image_root(entry, images_root)
        labels = np.asarray(entry.condition_labels, dtype=np.int64) if entry.condition_labels is not None else None
        extra = {**entry.extra, "store": str(self.path)}
        if entry.source is not None:
            extra["source"] = entry.source
        return TrialSet(
            data=data,
            ch_names=list(entry.ch_names),
            sfreq=entry.sfreq,
            times=entry.times.copy(),
            subject=entry.subject,
            split=entry.split,
            images=images,
            dataset=entry.dataset,
            ch_type=entry.ch_type,
            condition_labels=labels,
            extra=extra,
        )


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a store directory (it holds a ``store.json`` of this format)."""
    meta = Path(path) / _META
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("format") == STORE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def open_store(path: str | os.PathLike) -> Store:
    """Open a store directory written by :func:`write_store` / :func:`convert`.

    Parameters
    ----------
    path : str | os.PathLike
        The store directory.

    Returns
    -------
    Store
        With ``.subjects``, ``.splits(subject)``, ``.entries`` and ``.load(subject, split)``.
    """
    path = Path(path).expanduser()
    meta_file = path / _META
    if not meta_file.is_file():
        raise ToolkitError(
            f"'{path}' is not a store (no {_META}); convert official files first with "
            "'python -m toolkit data convert ROOT STORE'."
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ToolkitError(f"'{meta_file}' cannot be read ({err}); the store is damaged, convert again.") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        raise ToolkitError(f"'{meta_file}' is not a {STORE_FORMAT} description.")
    version = meta.get("version")
    if not isinstance(version, int) or version > STORE_VERSION:
        raise ToolkitError(
            f"'{path}' is a store of format version {version}, newer than this toolkit reads ({STORE_VERSION}); "
            "upgrade eeg-visual-toolkit."
        )
    if not isinstance(meta.get("entries"), list):
        raise ToolkitError(f"'{meta_file}' lists no entries; the store is damaged, convert again.")
    return Store(path, meta)


# -- conversion ---------------------------------------------------------------------------------------------------
def _detect_dataset(root: Path) -> str:
    from .meg import list_meg_subjects
    from .things import list_subjects

    eeg, meg = list_subjects(root), list_meg_subjects(root)
    if eeg and meg:
        raise ToolkitError(f"'{root}' holds both THINGS-EEG and THINGS-MEG files; pass dataset='things-eeg' or "
                           "'things-meg' (--dataset).")
    if eeg:
        return "things-eeg"
    if meg:
        return "things-meg"
    raise ToolkitError(
        f"No THINGS-EEG or THINGS-MEG preprocessed files under '{root}'; expected "
        "ROOT/Preprocessed_data_250Hz/sub-XX/preprocessed_eeg_training.npy or "
        "ROOT/preprocessed_MEG/sub-0N/preprocessed_meg_training.pkl."
    )


def convert(
    root: str | os.PathLike,
    store: str | os.PathLike,
    *,
    subjects: Iterable[int | str] | None = None,
    splits: Iterable[str] = ("train", "test"),
    dataset: str = "auto",
    overwrite: bool = False,
) -> dict:
    """Convert official THINGS-EEG (250 Hz or 100 Hz) or THINGS-MEG files into a memory-mapped store.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset root (the official layout; see :mod:`toolkit.data.things` and :mod:`toolkit.data.meg`).
        THINGS-EEG image folders under it (``training_images/``, ``test_images/``) are recorded in the store.
    store : str | os.PathLike
        The store directory to create.
    subjects : Iterable of int | str | None
        Subjects to convert (default: every subject found).
    splits : Iterable of str
        Splits to convert; each must exist for every subject.
    dataset : str
        ``"auto"`` (detected from the files), ``"things-eeg"`` or ``"things-meg"``.
    overwrite : bool
        Replace an existing store at ``store``.

    Returns
    -------
    dict
        ``store``, ``dataset``, ``entries`` (subject, split, shape, dataset, sfreq each), ``size_bytes`` and
        ``seconds``.

    Raises
    ------
    ToolkitError
        On any bad input file (see the loaders), a missing subject or split, or an existing ``store`` without
        ``overwrite``. Nothing is left at ``store`` on error.
    """
    from ..utils import progress
    from .meg import _open_things_meg, list_meg_subjects, things_meg_file
    from .things import (
        _open_things_eeg,
        _require_root,
        _things_images,
        list_subjects,
        normalize_split,
        normalize_subject,
        things_eeg_file,
    )

    root = _require_root(root)
    store = Path(store).expanduser()
    kind = _detect_dataset(root) if dataset == "auto" else dataset
    if kind not in ("things-eeg", "things-meg"):
        raise ToolkitError(f"dataset={dataset!r} is not known; use 'auto', 'things-eeg' or 'things-meg'.")
    split_list = list(dict.fromkeys(normalize_split(s) for s in splits))
    if not split_list:
        raise ToolkitError("splits is empty; pass e.g. ('train', 'test').")
    if subjects is None:
        subject_list = list_subjects(root) if kind == "things-eeg" else list_meg_subjects(root)
    else:
        subject_list = list(dict.fromkeys(normalize_subject(s) for s in subjects))
    if not subject_list:
        raise ToolkitError(f"No {kind} subjects found under '{root}'.")
    locate = things_eeg_file if kind == "things-eeg" else things_meg_file
    files = {(sub, sp): locate(root, sub, sp) for sub in subject_list for sp in split_list}  # fail before writing
    _check_destination(store, overwrite)

    def sets() -> Iterable[TrialSet]:
        for (sub, sp), file in progress(files.items(), desc="convert", total=len(files), unit="file"):
            logger.info("converting %s", file)
            if kind == "things-eeg":
                yield _open_things_eeg(file, sub, sp, _things_images(root, sp, "auto"))
            else:
                yield _open_things_meg(file, sub, sp)

    start = time.perf_counter()
    write_store(store, sets(), overwrite=overwrite)
    seconds = time.perf_counter() - start
    opened = open_store(store)
    return {
        "store": str(store),
        "dataset": kind,
        "entries": [
            {"subject": e.subject, "split": e.split, "shape": list(e.shape), "dataset": e.dataset, "sfreq": e.sfreq}
            for e in opened.entries
        ],
        "size_bytes": sum(f.stat().st_size for f in store.iterdir() if f.is_file()),
        "seconds": round(seconds, 3),
    }


# -- inspection ---------------------------------------------------------------------------------------------------
def _count_nonfinite(data: Any) -> tuple[int, int]:
    """(NaN count, Inf count) of a float array or memory map, in chunks."""
    if not isinstance(data, np.ndarray) or data.dtype.kind != "f" or data.size == 0:
        return 0, 0
    if data.ndim == 0:
        return int(np.isnan(data)), int(np.isinf(data))
    row = int(np.prod(data.shape[1:], dtype=np.int64)) * data.dtype.itemsize
    step = max(1, _CHUNK_BYTES // max(row, 1))
    n_nan = n_inf = 0
    for start in range(0, data.shape[0], step):
        chunk = np.asarray(data[start : start + step])
        n_nan += int(np.isnan(chunk).sum())
        n_inf += int(np.isinf(chunk).sum())
    return n_nan, n_inf


def _inspect_store(path: Path) -> dict:
    store = open_store(path)
    entries = []
    total_nan = total_inf = 0
    for entry in store.entries:
        n_nan, n_inf = _count_nonfinite(store._memmap(entry))
        total_nan += n_nan
        total_inf += n_inf
        entries.append({**entry.summary(), "nan_count": n_nan, "inf_count": n_inf})
    return {
        "path": str(path),
        "kind": "store",
        "format": STORE_FORMAT,
        "version": store.meta.get("version"),
        "subjects": store.subjects,
        "splits": {s: store.splits(s) for s in store.subjects},
        "datasets": sorted({e.dataset for e in store.entries}),
        "entries": entries,
        "nan_count": total_nan,
        "inf_count": total_inf,
        "size_bytes": sum(f.stat().st_size for f in path.iterdir() if f.is_file()),
    }


def _inspect_root(path: Path) -> dict:
    from .meg import list_meg_subjects, things_meg_file
    from .things import _IMAGE_DIRS, list_subjects, things_eeg_file

    kind = _detect_dataset(path)
    subjects = list_subjects(path) if kind == "things-eeg" else list_meg_subjects(path)
    locate = things_eeg_file if kind == "things-eeg" else things_meg_file
    files: dict[str, dict] = {}
    for sub in subjects:
        files[sub] = {}
        for split in ("train", "test"):
            try:
                file = locate(path, sub, split)
            except ToolkitError:
                continue
            files[sub][split] = {"file": str(file), "size_bytes": file.stat().st_size}
    out = {"path": str(path), "kind": f"{kind}-root", "subjects": subjects, "files": files}
    if kind == "things-eeg":
        out["images"] = {
            name: (sum(1 for p in (path / name).iterdir() if p.is_dir()) if (path / name).is_dir() else None)
            for name in _IMAGE_DIRS.values()
        }
    return out


def _raw_description(data: Any, names: Any, times: Any) -> dict:
    """What a file holds, described without validating it."""
    out: dict = {}
    if isinstance(data, np.ndarray):
        out["shape"], out["dtype"] = list(data.shape), str(data.dtype)
    else:
        out["shape"], out["dtype"] = None, type(data).__name__
    names = names.tolist() if isinstance(names, np.ndarray) else names
    if isinstance(names, (list, tuple)):
        out["n_channels"], out["channels"] = len(names), [str(n) for n in names]
    try:
        t = np.asarray(times, dtype=np.float64).ravel()
        out["file_times"] = _times_summary(t)
        step = np.diff(t)
        out["sfreq"] = round(1.0 / float(np.median(step)), 6) if t.size > 1 and np.median(step) > 0 else None
    except (TypeError, ValueError):
        out["file_times"], out["sfreq"] = None, None
    n_nan, n_inf = _count_nonfinite(data)
    out["nan_count"], out["inf_count"] = n_nan, n_inf
    return out


def _inspect_pickle(path: Path) -> dict:
    from ._unpickle import restricted_load
    from .meg import _parse_meg
    from .things import _parse_eeg

    obj = restricted_load(path)
    base = {"path": str(path), "size_bytes": path.stat().st_size}
    if isinstance(obj, np.ndarray):
        n_nan, n_inf = _count_nonfinite(obj)
        return {**base, "kind": "array", "shape": list(obj.shape), "dtype": str(obj.dtype), "nan_count": n_nan,
                "inf_count": n_inf}
    if isinstance(obj, dict) and "preprocessed_eeg_data" in obj:
        kind, key = "things-eeg-file", "preprocessed_eeg_data"
    elif isinstance(obj, dict) and "meg_data" in obj:
        kind, key = "things-meg-file", "meg_data"
    else:
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ToolkitError(
            f"'{path}' is neither a THINGS-EEG nor a THINGS-MEG file (expected a dict with 'preprocessed_eeg_data' or "
            f"'meg_data'; found {found})."
        )
    out = {**base, "kind": kind, **_raw_description(obj.get(key), obj.get("ch_names"), obj.get("times"))}
    problem = None
    try:
        if kind == "things-eeg-file":
            parsed = _parse_eeg(obj, str(path), check_finite=False)
            out.update(dataset=parsed.dataset, sfreq=parsed.sfreq, data_shape=list(parsed.data.shape),
                       times=_times_summary(parsed.times), times_slice=parsed.extra["times_slice"])
        else:
            parsed_meg = _parse_meg(obj, path, check_finite=False)
            out.update(dataset="things-meg", sfreq=200.0, split=parsed_meg["split"],
                       data_shape=list(parsed_meg["data"].shape), times=_times_summary(parsed_meg["times"]),
                       times_slice=parsed_meg["extra"]["times_slice"])
    except ToolkitError as err:
        problem = str(err)
    if problem is None and out["nan_count"] + out["inf_count"]:
        problem = f"{out['nan_count']} NaN and {out['inf_count']} Inf values"
    out.update(valid=problem is None, problem=problem)
    return out


def _inspect_pth(path: Path) -> dict:
    import torch

    from .eeg_imagenet import (
        CROP,
        EEG_IMAGENET_SFREQ,
        MAX_LENGTH,
        MIN_LENGTH,
        N_CHANNELS,
        _torch_load,
        load_eeg_imagenet_splits,
    )

    obj = _torch_load(path)
    base = {"path": str(path), "size_bytes": path.stat().st_size}
    if isinstance(obj, dict) and "splits" in obj:
        table = load_eeg_imagenet_splits(path)
        return {**base, "kind": "eeg-imagenet-splits", "n_splits": len(table),
                "splits": [{k: int(v.size) for k, v in s.items()} for s in table],
                "max_index": int(max(int(v.max()) if v.size else -1 for s in table for v in s.values()))}
    if not isinstance(obj, dict) or "dataset" not in obj or not isinstance(obj["dataset"], (list, tuple)):
        raise ToolkitError(f"'{path}' is neither an EEG-ImageNet data file nor a split file.")
    trials = obj["dataset"]
    tensors = [t.get("eeg") for t in trials if isinstance(t, dict) and isinstance(t.get("eeg"), torch.Tensor)]
    if not tensors:
        raise ToolkitError(f"'{path}' holds no trial with an 'eeg' tensor.")
    lengths = np.asarray([int(t.shape[-1]) for t in tensors])
    kept = int(((lengths >= max(MIN_LENGTH, CROP[1])) & (lengths <= MAX_LENGTH)).sum())
    n_crop = CROP[1] - CROP[0]
    n_nan = sum(int(torch.isnan(t).sum()) for t in tensors)
    n_inf = sum(int(torch.isinf(t).sum()) for t in tensors)
    subjects = sorted({int(t["subject"]) for t in trials if isinstance(t, dict) and "subject" in t})
    return {
        **base,
        "kind": "eeg-imagenet",
        "dataset": "eeg-imagenet",
        "n_trials": len(trials),
        "n_channels": sorted({int(t.shape[0]) for t in tensors}),
        "channels": [f"E{k}" for k in range(1, N_CHANNELS + 1)],
        "dtype": str(tensors[0].dtype).replace("torch.", ""),
        "sfreq": EEG_IMAGENET_SFREQ,
        "lengths": {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())},
        "n_kept": kept,
        "length_window": [MIN_LENGTH, MAX_LENGTH],
        "shape": [kept, 1, N_CHANNELS, n_crop],
        "times": {"first": CROP[0] / EEG_IMAGENET_SFREQ, "last": (CROP[1] - 1) / EEG_IMAGENET_SFREQ, "n": n_crop},
        "subjects": subjects,
        "n_classes": len(obj.get("labels") or []),
        "n_images": len(obj.get("images") or []),
        "design": "block",
        "nan_count": n_nan,
        "inf_count": n_inf,
    }


def inspect_path(path: str | os.PathLike) -> dict:
    """Describe an official file, a store, a dataset root or an EEG-ImageNet ``.pth`` file.

    Parameters
    ----------
    path : str | os.PathLike
        A THINGS-EEG ``.npy`` / THINGS-MEG ``.pkl`` file, a store directory, an official dataset root, or an
        EEG-ImageNet ``.pth`` (data or split) file.

    Returns
    -------
    dict
        ``kind`` and, as they apply, ``shape``, ``dtype``, ``channels`` / ``n_channels``, ``sfreq``, ``times``
        (first, last, n; for official files also ``file_times``), ``subjects`` / ``splits`` (stores, roots),
        ``nan_count`` / ``inf_count``, and for official files ``valid`` / ``problem`` (the loader's verdict).

    Raises
    ------
    ToolkitError
        If the path does not exist, cannot be read safely, or is none of the above.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ToolkitError(f"'{path}' does not exist; check the path.")
    if path.is_dir():
        if (path / _META).is_file():
            return _inspect_store(path)
        return _inspect_root(path)
    if path.suffix.lower() in (".pth", ".pt"):
        return _inspect_pth(path)
    return _inspect_pickle(path)
