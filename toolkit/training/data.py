"""Paired training data: trials + image/text embeddings + labels + subject ids, a validation split, subject settings.

- :class:`PairedTrials` — a torch ``Dataset`` over one or more :class:`~toolkit.data.TrialSet` s yielding
  :class:`TrialSample` ``(eeg, image_embed, text_embed, label, subject_id)``. Every repetition is a sample (the
  THINGS training convention) unless ``average=True`` (one condition-averaged sample per condition, the THINGS test
  convention). Small selections are loaded into RAM; large ones are read trial by trial from the memory map (a
  batch is fetched with one sorted fancy-indexing read through ``__getitems__``).
- :class:`ValidationSplit` / :func:`make_validation_split` — a seeded split of the **training** conditions only:
  whole concepts (all their images and repetitions, mirroring the zero-shot test) or single images.
- :func:`build_run_data` — everything a run needs for a :class:`~toolkit.training.TrainConfig`: the subject setting
  (intra-subject, leave-one-subject-out, joint), the embeddings (files or an embedder), the split, the datasets.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ToolkitError
from .config import EMBEDDING_OBJECTIVES, TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..data import TrialSet

logger = logging.getLogger(__name__)

__all__ = [
    "UNKNOWN_SUBJECT",
    "EmbeddingTable",
    "EpochSampler",
    "PairedTrials",
    "RunData",
    "TrialSample",
    "ValidationSplit",
    "batch_to_dict",
    "build_run_data",
    "collate_trials",
    "load_embedding_file",
    "make_validation_split",
    "open_trials",
    "subject_numbers",
]

#: ``subject_id`` of a sample whose subject the encoder must treat as unknown (its shared token).
UNKNOWN_SUBJECT = -1
#: "auto" in-memory threshold.
_IN_MEMORY_BYTES = 1 << 30
_NORM_ATOL = 1e-3


# ==================================================================================================== samples
class TrialSample(NamedTuple):
    """One training sample, or a batch of them after :func:`collate_trials` (a leading batch axis on each field).

    Attributes
    ----------
    eeg : torch.Tensor, shape (n_chans, n_times)
        float32 EEG of one trial (or a condition average).
    image_embed : torch.Tensor, shape (embed_dim,) or (0,)
        Embedding of the trial's image (empty when the run has no image embeddings).
    text_embed : torch.Tensor, shape (embed_dim,) or (0,)
        Embedding of the trial's concept text (empty when absent).
    label : torch.Tensor
        int64 class label (the concept index for THINGS).
    subject_id : torch.Tensor
        int64 subject number passed to the encoder, or :data:`UNKNOWN_SUBJECT`.
    """

    eeg: torch.Tensor
    image_embed: torch.Tensor
    text_embed: torch.Tensor
    label: torch.Tensor
    subject_id: torch.Tensor


def collate_trials(batch: Any) -> TrialSample | dict[str, torch.Tensor]:
    """Collate samples into a batch; a batch already assembled by a dataset's ``__getitems__`` (a
    :class:`TrialSample` of :class:`PairedTrials` or the dict of :class:`~toolkit.training.tasks.PairedRows`)
    passes through."""
    if (isinstance(batch, TrialSample) and batch.eeg.ndim == 3) or isinstance(batch, dict):
        return batch
    from torch.utils.data import default_collate

    return default_collate(batch)


def batch_to_dict(batch: TrialSample | dict, device: torch.device | str | None = None) -> dict[str, Any]:
    """The batch as the dict the objectives (and models' ``training_loss``) receive.

    Keys: ``eeg`` (batch, n_chans, n_times), ``image_embeds`` / ``text_embeds`` (batch, embed_dim) or ``None``,
    ``labels`` (batch,), ``subject_ids`` (batch,) or ``None`` when every subject is unknown. A dict batch (``inputs``
    / ``targets`` of the other tasks) is returned with its tensors moved to ``device``.
    """

    def move(t: torch.Tensor) -> torch.Tensor:
        return t if device is None else t.to(device, non_blocking=True)

    if isinstance(batch, dict):
        return {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    ids = batch.subject_id
    if bool((ids == UNKNOWN_SUBJECT).all()):
        subject_ids = None
    elif bool((ids == UNKNOWN_SUBJECT).any()):
        raise ToolkitError("A batch mixes known and unknown subjects; every sample needs a subject id or none.")
    else:
        subject_ids = move(ids)
    return {
        "eeg": move(batch.eeg),
        "image_embeds": move(batch.image_embed) if batch.image_embed.shape[-1] else None,
        "text_embeds": move(batch.text_embed) if batch.text_embed.shape[-1] else None,
        "labels": move(batch.label),
        "subject_ids": subject_ids,
    }


# ==================================================================================================== dataset
def _memmap_recipe(data: np.ndarray) -> tuple | None:
    if isinstance(data, np.memmap) and getattr(data, "filename", None):
        return (str(data.filename), int(data.offset), tuple(data.shape), data.dtype.str)
    return None


class PairedTrials(Dataset):
    """Trials of one or more trial sets paired with embeddings, labels and subject ids.

    All trial sets must share their conditions (the same image set, as THINGS-EEG subjects do).

    Parameters
    ----------
    trialsets : sequence of TrialSet
        One set per subject (same conditions, channels and samples).
    subject_ids : sequence of int
        Subject number per set (:data:`UNKNOWN_SUBJECT` for "unknown": the encoder's shared token).
    conditions : array of int | None
        Conditions to use (default: all), e.g. the training part of a :class:`ValidationSplit`.
    image_embeds : np.ndarray | None, shape (n_conditions, embed_dim)
        One embedding per condition (indexed by the original condition number).
    text_embeds : np.ndarray | None, shape (n_concepts, embed_dim)
        One embedding per concept.
    concept_of : np.ndarray | None, shape (n_conditions,)
        Concept index of each condition (to look up ``text_embeds``; default: the trial set's concepts).
    labels : np.ndarray | None, shape (n_conditions,)
        Class label per condition (default: :meth:`TrialSet.labels`).
    average : bool
        One sample per (set, condition): the average over its repetitions (computed once, condition by condition).
    in_memory : str
        ``"auto"`` (load the selected trials into RAM under 1 GiB), ``"yes"`` or ``"no"`` (read from the memory map).
    order_seed : int | None
        Permute the sample order once with this seed (a fixed, mixed order for evaluation batches).

    Attributes
    ----------
    subject_labels, source_splits : list of str
        Subject and split of each trial set (so a test can prove validation never reads the test split).
    in_memory : bool
        Whether the selected trials were loaded into RAM (otherwise each batch is read from the memory map).
    """

    def __init__(
        self,
        trialsets: Sequence[TrialSet],
        subject_ids: Sequence[int],
        *,
        conditions: Sequence[int] | np.ndarray | None = None,
        image_embeds: np.ndarray | None = None,
        text_embeds: np.ndarray | None = None,
        concept_of: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        average: bool = False,
        in_memory: str = "auto",
        order_seed: int | None = None,
    ) -> None:
        if not trialsets:
            raise ToolkitError("PairedTrials needs at least one trial set.")
        if len(subject_ids) != len(trialsets):
            raise ToolkitError(f"{len(trialsets)} trial sets but {len(subject_ids)} subject ids were given.")
        first = trialsets[0]
        n_cond = first.n_conditions
        for ts in trialsets[1:]:
            if ts.data.shape[0] != n_cond or ts.data.shape[2:] != first.data.shape[2:]:
                raise ToolkitError(
                    f"Trial sets of {first.subject} and {ts.subject} differ in shape ({tuple(first.data.shape)} vs "
                    f"{tuple(ts.data.shape)}); subjects trained together need the same conditions, channels and "
                    "samples."
                )
        conds = np.arange(n_cond) if conditions is None else np.unique(np.asarray(conditions, dtype=np.int64))
        if conds.size and (conds[0] < 0 or conds[-1] >= n_cond):
            raise ToolkitError(f"Condition indices must lie in [0, {n_cond}); got {conds[0]}…{conds[-1]}.")
        if image_embeds is not None and image_embeds.shape[0] != n_cond:
            raise ToolkitError(f"{image_embeds.shape[0]} image embeddings for {n_cond} conditions.")
        self.n_conditions = n_cond
        self.conditions = conds
        self.average = bool(average)
        self.subject_labels = [ts.subject for ts in trialsets]
        self.source_splits = [ts.split for ts in trialsets]
        self.subject_ids = [int(s) for s in subject_ids]
        self.image_embeds = None if image_embeds is None else np.ascontiguousarray(image_embeds, dtype=np.float32)
        self.text_embeds = None if text_embeds is None else np.ascontiguousarray(text_embeds, dtype=np.float32)
        self.concept_of = np.asarray(
            concept_of if concept_of is not None else _concepts_of(first), dtype=np.int64
        )
        self.labels = np.asarray(labels if labels is not None else first.labels(), dtype=np.int64)
        if self.text_embeds is not None and self.concept_of.max(initial=-1) >= self.text_embeds.shape[0]:
            raise ToolkitError(
                f"{self.text_embeds.shape[0]} text embeddings for {int(self.concept_of.max()) + 1} concepts."
            )
        n_reps = 1 if self.average else first.n_repetitions
        bytes_needed = len(trialsets) * conds.size * n_reps * first.n_chans * first.n_times * 4
        load = in_memory == "yes" or (in_memory == "auto" and bytes_needed <= _IN_MEMORY_BYTES) or self.average
        # Per set: the array read from and the local row of each original condition (-1: not selected).
        self._arrays: list[np.ndarray] = []
        self._local: list[np.ndarray] = []
        for ts in trialsets:
            local = np.full(n_cond, -1, dtype=np.int64)
            if self.average:
                arr = np.empty((conds.size, 1, ts.n_chans, ts.n_times), dtype=np.float32)
                for row, c in enumerate(conds):  # condition by condition: never the whole set in memory
                    arr[row, 0] = np.asarray(ts.data[c], dtype=np.float32).mean(axis=0)
                local[conds] = np.arange(conds.size)
            elif load:
                arr = np.ascontiguousarray(np.asarray(ts.data[conds], dtype=np.float32))
                local[conds] = np.arange(conds.size)
            else:
                arr = ts.data
                local[conds] = conds
            self._arrays.append(arr)
            self._local.append(local)
        self.in_memory = bool(load)
        # The flat sample index: (set, condition, repetition), condition-major within each set.
        part = np.repeat(np.arange(len(trialsets)), conds.size * n_reps)
        cond = np.tile(np.repeat(conds, n_reps), len(trialsets))
        rep = np.tile(np.arange(n_reps), len(trialsets) * conds.size)
        if order_seed is not None:
            perm = np.random.default_rng([int(order_seed), 0x0DE5]).permutation(part.size)
            part, cond, rep = part[perm], cond[perm], rep[perm]
        self._part, self._cond, self._rep = part, cond, rep
        self.n_chans, self.n_times = first.n_chans, first.n_times

    # -- pickling for DataLoader workers: a memory map travels as its file, not as its bytes ---------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = [
            ("memmap", recipe) if (recipe := _memmap_recipe(a)) is not None else ("array", a) for a in self._arrays
        ]
        return state

    def __setstate__(self, state: dict) -> None:
        arrays = []
        for kind, value in state["_arrays"]:
            if kind == "memmap":
                filename, offset, shape, dtype = value
                arrays.append(np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape))
            else:
                arrays.append(value)
        state["_arrays"] = arrays
        self.__dict__.update(state)

    # -- Dataset protocol --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._part.size)

    def _targets(self, cond: np.ndarray, part: np.ndarray) -> tuple[torch.Tensor, ...]:
        n = cond.size
        image = (
            torch.from_numpy(self.image_embeds[cond]) if self.image_embeds is not None else torch.zeros((n, 0))
        )
        text = (
            torch.from_numpy(self.text_embeds[self.concept_of[cond]])
            if self.text_embeds is not None
            else torch.zeros((n, 0))
        )
        label = torch.from_numpy(self.labels[cond])
        subject = torch.as_tensor(np.asarray(self.subject_ids, dtype=np.int64)[part])
        return image, text, label, subject

    def _read(self, part: int, cond: np.ndarray, rep: np.ndarray) -> np.ndarray:
        rows = self._local[part][cond]
        if self.average:
            rep = np.zeros_like(rep)
        order = np.lexsort((rep, rows))  # sorted reads: sequential access on a memory map
        out = np.empty((rows.size, self.n_chans, self.n_times), dtype=np.float32)
        out[order] = self._arrays[part][rows[order], rep[order]]
        return out

    def __getitem__(self, index: int) -> TrialSample:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} is out of range for {len(self)} samples")
        batch = self.__getitems__([index])
        return TrialSample(*(t[0] for t in batch))

    def __getitems__(self, indices: Sequence[int]) -> TrialSample:
        """A whole batch in one go (used by ``DataLoader``): grouped by subject, sorted reads."""
        idx = np.asarray(indices, dtype=np.int64)
        part, cond, rep = self._part[idx], self._cond[idx], self._rep[idx]
        eeg = np.empty((idx.size, self.n_chans, self.n_times), dtype=np.float32)
        for p in np.unique(part):
            sel = part == p
            eeg[sel] = self._read(int(p), cond[sel], rep[sel])
        return TrialSample(torch.from_numpy(eeg), *self._targets(cond, part))

    # -- descriptions ------------------------------------------------------------------------------------------
    @property
    def sample_conditions(self) -> np.ndarray:
        """Original condition number of every sample."""
        return self._cond.copy()

    @property
    def sample_subjects(self) -> list[str]:
        """Subject label of every sample."""
        return [self.subject_labels[p] for p in self._part]

    def all_eeg(self) -> torch.Tensor:
        """Every sample's EEG as one ``(n_samples, n_chans, n_times)`` tensor (for small evaluation sets)."""
        return self.__getitems__(np.arange(len(self))).eeg


def _concepts_of(trials: TrialSet) -> np.ndarray:
    if trials.images is not None:
        return np.asarray(trials.images.condition_concept, dtype=np.int64)
    return trials.labels()


class EpochSampler(Sampler[int]):
    """A shuffling sampler whose order is a pure function of ``(seed, epoch)`` (call :meth:`set_epoch`).

    No hidden generator state: resuming at epoch ``e`` reproduces the order exactly, on one process or many
    (accelerate forwards ``set_epoch``).
    """

    def __init__(self, n: int, seed: int, *, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the order of epoch ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        return iter(np.random.default_rng([self.seed, self.epoch, 0x5A3]).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


# ==================================================================================================== split
@dataclass(frozen=True)
class ValidationSplit:
    """Which **training** conditions are held out for validation (the test split is never involved).

    Attributes
    ----------
    unit : str
        ``"concepts"`` (whole concepts: all their images and repetitions) or ``"images"``.
    fraction : float
        The requested fraction of concepts (or images).
    seed : int
        Seed of the draw.
    n_conditions : int
        Number of training conditions.
    val_conditions : tuple of int
        Held-out condition (image) indices, sorted.
    val_concepts : tuple of int
        Concepts of the held-out conditions (whole concepts with ``unit="concepts"``), sorted.
    """

    unit: str
    fraction: float
    seed: int
    n_conditions: int
    val_conditions: tuple[int, ...]
    val_concepts: tuple[int, ...]

    @property
    def train_conditions(self) -> np.ndarray:
        """The training conditions that remain for training."""
        mask = np.ones(self.n_conditions, dtype=bool)
        mask[list(self.val_conditions)] = False
        return np.flatnonzero(mask)

    @property
    def n_val(self) -> int:
        """Number of held-out conditions."""
        return len(self.val_conditions)

    def describe(self) -> str:
        """One line for protocol cards and logs."""
        if not self.val_conditions:
            return "no validation split (val_fraction 0)"
        what = (
            f"{len(self.val_concepts)} training concepts ({self.n_val} images, all repetitions)"
            if self.unit == "concepts"
            else f"{self.n_val} training images (all repetitions)"
        )
        return f"validation split carved from training data only: {what} held out, fraction {self.fraction}, " \
               f"seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the held-out ids)."""
        return {
            "unit": self.unit,
            "fraction": self.fraction,
            "seed": self.seed,
            "n_conditions": self.n_conditions,
            "val_conditions": list(self.val_conditions),
            "val_concepts": list(self.val_concepts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationSplit:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            unit=str(data["unit"]),
            fraction=float(data["fraction"]),
            seed=int(data["seed"]),
            n_conditions=int(data["n_conditions"]),
            val_conditions=tuple(int(c) for c in data["val_conditions"]),
            val_concepts=tuple(int(c) for c in data["val_concepts"]),
        )


def make_validation_split(
    condition_concept: Any, *, fraction: float, unit: str = "concepts", seed: int = 0
) -> ValidationSplit:
    """Hold out a seeded fraction of the training concepts (or images) for validation.

    Parameters
    ----------
    condition_concept : TrialSet | ImageSet | array of int, shape (n_conditions,)
        The **training** split's condition → concept map (a trial set or image set of the training split).
    fraction : float
        Fraction in [0, 0.9]; the count is rounded, and at least one concept (image) is held out when the
        fraction is positive. 0 gives an empty validation set.
    unit : str
        ``"concepts"`` or ``"images"``.
    seed : int
        Seed of the draw.

    Returns
    -------
    ValidationSplit
        The held-out ids.
    """
    from ..data import ImageSet, TrialSet

    if isinstance(condition_concept, TrialSet):
        if condition_concept.split == "test":
            raise ToolkitError("The validation split is carved from training data only; a test trial set was given.")
        concepts = _concepts_of(condition_concept)
    elif isinstance(condition_concept, ImageSet):
        concepts = np.asarray(condition_concept.condition_concept, dtype=np.int64)
    else:
        concepts = np.asarray(condition_concept, dtype=np.int64)
    if concepts.ndim != 1 or concepts.size == 0:
        raise ToolkitError("make_validation_split needs a non-empty 1-D condition → concept array.")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 0.9:
        raise ToolkitError(f"val_fraction must be a number in [0, 0.9]; got {fraction!r}.")
    if unit not in ("concepts", "images"):
        raise ToolkitError(f"Unknown val_unit {unit!r}; known values: concepts, images.")
    rng = np.random.default_rng([int(seed), 0x7A1])
    pool = np.unique(concepts) if unit == "concepts" else np.arange(concepts.size)
    n_out = 0 if fraction == 0 else max(1, round(fraction * pool.size))
    if n_out >= pool.size:
        raise ToolkitError(
            f"val_fraction {fraction} would hold out all {pool.size} training {unit}; lower --val-fraction."
        )
    chosen = np.sort(rng.permutation(pool)[:n_out])
    val_conds = np.flatnonzero(np.isin(concepts, chosen)) if unit == "concepts" else chosen
    return ValidationSplit(
        unit=unit,
        fraction=float(fraction),
        seed=int(seed),
        n_conditions=int(concepts.size),
        val_conditions=tuple(int(c) for c in val_conds),
        val_concepts=tuple(int(c) for c in np.unique(concepts[val_conds])),
    )


# ==================================================================================================== embeddings
@dataclass(frozen=True)
class EmbeddingTable:
    """Embeddings read from a file or computed by an embedder, with what is known about them."""

    embeds: np.ndarray
    normalized: bool
    source: str
    backbone: str
    metadata: dict = field(default_factory=dict, repr=False)
    arrays: tuple[str, ...] = ()


def _rows_unit(x: np.ndarray) -> bool:
    return bool(x.size) and bool(np.all(np.abs(np.linalg.norm(x, axis=1) - 1.0) <= _NORM_ATOL))


def _backbone(metadata: dict, fallback: str) -> str:
    identity = metadata.get("identity")
    if isinstance(identity, dict) and identity.get("model"):
        parts = [str(identity.get(k)) for k in ("backend", "model", "weights") if identity.get(k)]
        return " ".join(parts)
    return fallback


def load_embedding_file(path: str | os.PathLike, *, key: str = "image_embeds", what: str = "--image-embeds") -> (
    EmbeddingTable
):
    """Read embeddings from ``path``: a ``save_embeddings`` file (``.safetensors`` / ``.npz`` with metadata, as
    written by ``python -m toolkit embed --out``) or a plain 2-D ``.npy`` array.

    Parameters
    ----------
    path : str | os.PathLike
        The file.
    key : str
        Array to read from a ``.safetensors`` / ``.npz`` file (``"image_embeds"`` or ``"text_embeds"``).
    what : str
        The argument the path came from, named in errors.

    Returns
    -------
    EmbeddingTable
        float32 ``(n, embed_dim)`` embeddings; ``normalized`` from the metadata (``.npy``: detected from the row
        norms); the backbone named by the metadata's embedder identity.
    """
    from ..embeddings import load_embeddings

    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"{what} file '{path}' does not exist; check the path.")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ToolkitError(f"{what} file '{path}' is not a readable .npy array ({err}).") from None
        metadata: dict = {}
        names: tuple[str, ...] = ()
    else:
        arrays, metadata = load_embeddings(path)
        if key not in arrays:
            raise ToolkitError(
                f"{what} file '{path}' holds no '{key}' array (it holds {', '.join(sorted(arrays)) or 'nothing'})."
            )
        arr = arrays[key]
        names = tuple(sorted(arrays))
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.floating):
        raise ToolkitError(
            f"{what} file '{path}' must hold a 2-D float array (n, embed_dim); got {arr.dtype} {tuple(arr.shape)}."
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ToolkitError(f"{what} file '{path}' contains NaN or infinite values; recompute the embeddings.")
    stated = metadata.get("normalize")
    normalized = bool(stated) if isinstance(stated, bool) else _rows_unit(arr)
    backbone = _backbone(metadata, f"unknown (from {path.name})")
    return EmbeddingTable(arr, normalized, str(path), backbone, metadata, names)


def _prepare_targets(table: EmbeddingTable, *, normalize: bool, what: str) -> np.ndarray:
    from ..embeddings import l2_normalize

    if normalize:
        return l2_normalize(table.embeds)
    if table.normalized:
        raise ToolkitError(
            f"{what} '{table.source}' holds L2-normalised embeddings but this run needs raw ones (target_normalize "
            "is false, e.g. for recon-mix/mse); export raw embeddings with `python -m toolkit embed --no-normalize "
            "--out FILE`, or pass --target-normalize."
        )
    return table.embeds


def _check_rows(
    table: EmbeddingTable, n: int, what: str, unit: str, names: Sequence[str] | None, meta_key: str
) -> None:
    if table.embeds.shape[0] != n:
        raise ToolkitError(
            f"{what} '{table.source}' holds {table.embeds.shape[0]} embeddings but the data have {n} {unit}; "
            f"embed the {unit} of this split (one row per {unit[:-1]}, in order)."
        )
    stored = table.metadata.get(meta_key)
    if names is not None and isinstance(stored, list) and len(stored) == n:
        for i, (a, b) in enumerate(zip(stored, names)):
            if str(a) != str(b):
                raise ToolkitError(
                    f"{what} '{table.source}' row {i} is for {a!r} but the data's {unit[:-1]} {i} is {b!r}; the "
                    "embeddings belong to another image set or order."
                )


# ==================================================================================================== run data
def open_trials(data: str | os.PathLike, subject: str, split: str) -> TrialSet:
    """One subject's split from a store (memory-mapped) or an official THINGS-EEG root (converted once to a cached
    memory-mapped store by :func:`toolkit.data.load_things_eeg` with ``mmap=True``)."""
    from ..data import is_store, load_things_eeg, open_store

    path = Path(data).expanduser()
    if is_store(path):
        return open_store(path).load(subject, split)
    if not path.is_dir():
        raise ToolkitError(
            f"--data '{path}' is neither a store nor a dataset folder; pass a store (python -m toolkit data convert) "
            "or the root of the official THINGS-EEG layout."
        )
    return load_things_eeg(path, subject, split, mmap=True)


def _data_subjects(data: str | os.PathLike) -> list[str]:
    from ..data import is_store, list_subjects, open_store

    path = Path(data).expanduser()
    if is_store(path):
        store = open_store(path)
        return [s for s in store.subjects if "train" in store.splits(s)]
    if path.is_dir():
        return list_subjects(path)
    raise ToolkitError(f"--data '{path}' is neither a store nor a dataset folder.")


def subject_numbers(subjects: Sequence[str]) -> dict[str, int]:
    """Subject label → number fed to the encoder: ``sub-08`` → 8 (as ATM); other labels by 1-based sorted position."""
    numbers = {}
    if all(re.fullmatch(r"sub-0*(\d+)", s) for s in subjects):
        for s in subjects:
            numbers[s] = int(re.fullmatch(r"sub-0*(\d+)", s).group(1))
    else:
        for i, s in enumerate(sorted(subjects), start=1):
            numbers[s] = i
    return numbers


@dataclass
class RunData:
    """Everything a training run reads (built by :func:`build_run_data`)."""

    config: TrainConfig
    train_subjects: list[str]
    test_subject: str
    subject_ids: dict[str, int]
    split: ValidationSplit
    train: PairedTrials
    val: PairedTrials | None
    val_queries: PairedTrials | None
    image_embeds: np.ndarray | None
    text_embeds: np.ndarray | None
    test_image_embeds: np.ndarray | None
    backbone: str
    n_classes: int
    info: dict[str, Any]
    test_trials: TrialSet | None = field(default=None, repr=False)
    test_labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def embed_dim(self) -> int | None:
        """Dimension of the target embeddings (``None`` without image embeddings)."""
        return None if self.image_embeds is None else int(self.image_embeds.shape[1])

    def test_dataset(self) -> PairedTrials | None:
        """The test set (repetitions averaged unless ``average_test`` is off); built only when asked for."""
        if self.test_trials is None:
            return None
        sid = self.subject_ids.get(self.test_subject, UNKNOWN_SUBJECT) if self.config.setting != "loso" else (
            UNKNOWN_SUBJECT
        )
        return PairedTrials(
            [self.test_trials],
            [sid],
            image_embeds=self.test_image_embeds,
            average=self.config.average_test,
            in_memory=self.config.in_memory,
        )


def _pool(config: TrainConfig) -> tuple[list[str], list[str]]:
    """(training subjects, all subjects considered)."""
    if config.setting == "intra":
        return [config.subject], [config.subject]
    pool = list(config.subjects) if config.subjects is not None else _data_subjects(config.data)
    if config.setting == "loso":
        if config.subject not in pool:
            raise ToolkitError(
                f"The held-out subject {config.subject!r} is not in the subject pool {pool}; check --subject and "
                "--subjects."
            )
        train = [s for s in pool if s != config.subject]
        if not train:
            raise ToolkitError(f"Leave-one-subject-out needs at least 2 subjects; the pool is {pool}.")
        return train, pool
    if config.subject not in pool:
        pool = [*pool, config.subject]
    return pool, pool


def build_run_data(config: TrainConfig, *, embedder: Any = None) -> RunData:
    """Open the data of a run: subjects by setting, embeddings, the validation split and the datasets.

    Parameters
    ----------
    config : TrainConfig
        The configuration (resolved here).
    embedder : toolkit.embeddings.Embedder | None
        Compute the embeddings with this embedder (cached) instead of reading ``image_embeds`` files; built from
        ``clip_model`` when that is set and no embedder is given.

    Returns
    -------
    RunData
        The datasets and the split. The test trial set is opened (memory-mapped, shape checked) but nothing is
        computed from it until :meth:`RunData.test_dataset` is called at the end of training.
    """
    config = config.resolved()
    if config.data is None:
        raise ToolkitError("No training data given; pass data (--data STORE_OR_ROOT).")
    train_subjects, pool = _pool(config)
    ids = subject_numbers(pool)
    if config.setting == "loso":
        # The held-out subject is unknown to the encoder: train and test through the shared token (ATM's LOSO
        # effectively trains one token for all training subjects; here it is the shared one, used at test time).
        part_ids = [UNKNOWN_SUBJECT] * len(train_subjects)
    else:
        part_ids = [ids[s] for s in train_subjects]
    train_sets = [open_trials(config.data, s, "train") for s in train_subjects]
    first = train_sets[0]
    for ts in train_sets[1:]:
        if ts.ch_names != first.ch_names or ts.n_times != first.n_times or ts.n_conditions != first.n_conditions:
            raise ToolkitError(
                f"{ts.subject}'s training data ({ts.n_conditions} conditions, {ts.n_chans} channels, {ts.n_times} "
                f"samples) differ from {first.subject}'s; subjects trained together need the same layout."
            )
    try:
        test_set = open_trials(config.data, config.subject, "test")
    except ToolkitError as err:
        logger.warning("No test data for %s (%s); the run will report validation figures only.", config.subject, err)
        test_set = None
    if test_set is not None and (test_set.ch_names != first.ch_names or test_set.n_times != first.n_times):
        raise ToolkitError(
            f"{config.subject}'s test data have {test_set.n_chans} channels x {test_set.n_times} samples but the "
            f"training data {first.n_chans} x {first.n_times}."
        )

    images = first.images
    concept_of = _concepts_of(first)
    n_concepts = int(concept_of.max()) + 1
    image_files = list(images.image_files) if images is not None else None
    concept_names = images.concepts if images is not None else None

    # -- embeddings --------------------------------------------------------------------------------------------
    image_embeds = text_embeds = test_image_embeds = None
    backbone = "none"
    if config.image_embeds is not None:
        table = load_embedding_file(config.image_embeds, what="--image-embeds")
        _check_rows(table, first.n_conditions, "--image-embeds", "conditions", image_files, "image_files")
        image_embeds = _prepare_targets(table, normalize=config.target_normalize, what="--image-embeds")
        backbone = table.backbone
        text_source = config.text_embeds or (config.image_embeds if "text_embeds" in table.arrays else None)
        if text_source is not None:
            ttable = load_embedding_file(text_source, key="text_embeds", what="--text-embeds")
            _check_rows(ttable, n_concepts, "--text-embeds", "concepts", concept_names, "concepts")
            text_embeds = _prepare_targets(ttable, normalize=config.target_normalize, what="--text-embeds")
        if config.test_image_embeds is not None and test_set is not None:
            ttable = load_embedding_file(config.test_image_embeds, what="--test-image-embeds")
            test_files = list(test_set.images.image_files) if test_set.images is not None else None
            _check_rows(ttable, test_set.n_conditions, "--test-image-embeds", "conditions", test_files, "image_files")
            test_image_embeds = _prepare_targets(ttable, normalize=config.target_normalize, what="--test-image-embeds")
            if ttable.embeds.shape[1] != image_embeds.shape[1]:
                raise ToolkitError(
                    f"--test-image-embeds has {ttable.embeds.shape[1]}-d embeddings but --image-embeds "
                    f"{image_embeds.shape[1]}-d; embed both splits with the same model."
                )
    elif config.text_embeds is not None or config.test_image_embeds is not None:
        raise ToolkitError("--text-embeds / --test-image-embeds need --image-embeds for the training images too.")
    elif embedder is not None or config.clip_model is not None:
        image_embeds, text_embeds, test_image_embeds, backbone = _embed_with(
            config, embedder, first, test_set, need_texts=config.objective == "atm-mix"
        )
    if text_embeds is not None and image_embeds is not None and text_embeds.shape[1] != image_embeds.shape[1]:
        raise ToolkitError(
            f"Text embeddings are {text_embeds.shape[1]}-d but image embeddings {image_embeds.shape[1]}-d; embed "
            "both with the same model."
        )
    if config.objective in EMBEDDING_OBJECTIVES and image_embeds is None:
        raise ToolkitError(
            f"The {config.objective!r} objective needs image embeddings; pass --image-embeds FILE (from "
            "`python -m toolkit embed --out`) or --clip-model NAME."
        )
    if config.objective == "atm-mix" and text_embeds is None:
        raise ToolkitError(
            "The 'atm-mix' objective needs concept text embeddings; pass --text-embeds FILE or an --image-embeds "
            "file that holds text_embeds (`python -m toolkit embed --concepts --out FILE`)."
        )
    if config.selection == "val_top1" and image_embeds is None and config.objective != "classification":
        raise ToolkitError("selection 'val_top1' needs image embeddings for validation retrieval; use 'val_loss'.")

    # -- split and datasets ------------------------------------------------------------------------------------
    split = make_validation_split(concept_of, fraction=config.val_fraction, unit=config.val_unit, seed=config.seed)
    train_conds = split.train_conditions
    labels = first.labels()
    common = {
        "image_embeds": image_embeds,
        "text_embeds": text_embeds,
        "concept_of": concept_of,
        "labels": labels,
    }
    if train_conds.size == 0:
        raise ToolkitError("The training set is empty after the validation split; lower --val-fraction.")
    train = PairedTrials(train_sets, part_ids, conditions=train_conds, in_memory=config.in_memory, **common)
    if len(train) == 0:
        raise ToolkitError("The training set is empty after the validation split; lower --val-fraction.")
    if config.drop_last and len(train) < config.batch_size:
        raise ToolkitError(
            f"The training set has {len(train)} trials after the validation split, fewer than one batch of "
            f"{config.batch_size} (drop_last drops it); lower --batch-size or pass --no-drop-last."
        )
    val = val_queries = None
    if split.n_val:
        val = PairedTrials(
            train_sets, part_ids, conditions=split.val_conditions, in_memory=config.in_memory,
            order_seed=config.seed, **common,
        )
        val_queries = PairedTrials(train_sets, part_ids, conditions=split.val_conditions, average=True, **common)
    n_classes = int(labels[train_conds].max()) + 1
    test_labels = _test_class_labels(first, test_set, n_classes) if test_set is not None else None
    info = {
        "dataset": _dataset_label(config.data, first),
        "n_chans": first.n_chans,
        "n_times": first.n_times,
        "sfreq": float(first.sfreq),
        "ch_names": list(first.ch_names),
        "time_window": [float(first.times[0]), float(first.times[-1])],
        "n_train_conditions": int(train_conds.size),
        "n_train_trials": len(train),
        "n_val_trials": 0 if val is None else len(val),
        "n_test_conditions": None if test_set is None else test_set.n_conditions,
        "test_repetitions": None if test_set is None else test_set.n_repetitions,
        "in_memory": train.in_memory,
        "source": str(config.data),
    }
    return RunData(
        config=config,
        train_subjects=train_subjects,
        test_subject=config.subject,
        subject_ids={s: (UNKNOWN_SUBJECT if config.setting == "loso" else ids[s]) for s in pool},
        split=split,
        train=train,
        val=val,
        val_queries=val_queries,
        image_embeds=image_embeds,
        text_embeds=text_embeds,
        test_image_embeds=test_image_embeds,
        backbone=backbone,
        n_classes=n_classes,
        info=info,
        test_trials=test_set,
        test_labels=test_labels,
    )


def _test_class_labels(train_set: TrialSet, test_set: TrialSet, n_classes: int) -> np.ndarray | None:
    """Test labels in the training classes' numbering, or ``None`` when the test classes are not training classes.

    Explicit class labels (EEG-ImageNet) are shared between splits. Concept indices are per split (THINGS test
    concept 0 is not training concept 0), so they are matched by concept name; zero-shot test concepts give ``None``.
    """
    if train_set.condition_labels is not None and test_set.condition_labels is not None:
        labels = np.asarray(test_set.condition_labels, dtype=np.int64)
        return labels if labels.max(initial=0) < n_classes else None
    if train_set.images is None or test_set.images is None:
        return None
    index = {name: i for i, name in enumerate(train_set.images.concepts)}
    names = [test_set.images.concept_of(c) for c in range(test_set.n_conditions)]
    if not all(name in index for name in names):
        return None
    return np.asarray([index[name] for name in names], dtype=np.int64)


def _dataset_label(data: str, trials: TrialSet) -> str:
    """The trial set's dataset name, or ``"simulated"`` when the data come from the toolkit's simulator (whose
    official-layout files would otherwise pass for real THINGS-EEG)."""
    candidates = [Path(data).expanduser()]
    source = trials.extra.get("source")
    if isinstance(source, dict) and isinstance(source.get("file"), str):
        candidates += list(Path(source["file"]).parents)[:4]
    if any((folder / "simulation.json").is_file() for folder in candidates):
        return "simulated"
    return str(trials.dataset)


def _embed_with(
    config: TrainConfig, embedder: Any, train_set: TrialSet, test_set: TrialSet | None, *, need_texts: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    from ..embeddings import embed_concepts, embed_image_set

    if train_set.images is None or train_set.images.root is None:
        raise ToolkitError(
            f"Computing embeddings needs the stimulus images, but {train_set.subject}'s training data have no image "
            "folder attached; convert the store with the image folders beside the data or pass --image-embeds."
        )
    if embedder is None:
        from ..embeddings import ClipEmbedder

        device = "cuda" if config.device == "cuda" else "cpu"
        embedder = ClipEmbedder.from_open_clip(config.clip_model, config.clip_pretrained, device=device)
    norm = bool(config.target_normalize)
    image = embed_image_set(embedder, train_set.images, normalize=norm).embeds
    text = embed_concepts(embedder, train_set.images, normalize=norm).embeds if need_texts else None
    test = None
    if test_set is not None and test_set.images is not None and test_set.images.root is not None:
        test = embed_image_set(embedder, test_set.images, normalize=norm).embeds
    identity = embedder.identity
    backbone = " ".join(str(identity.get(k)) for k in ("backend", "model", "weights") if identity.get(k))
    return image, text, test, backbone or type(embedder).__name__
