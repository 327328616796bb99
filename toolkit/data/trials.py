"""The toolkit's one object model for trials: :class:`TrialSet`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ToolkitError
from .images import ImageSet

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import pandas as pd

SPLITS = ("train", "test")


@dataclass
class TrialSet:
    """Trials of one subject and one split, as ``(n_conditions, n_repetitions, n_chans, n_times)``.

    THINGS-EEG, THINGS-MEG, EEG-ImageNet, imported recordings and the simulator all produce this object, so every
    later stage runs on one code path. ``data`` may be a read-only memory map: indexing one trial reads only that
    trial from disk.

    Parameters
    ----------
    data : np.ndarray, shape (n_conditions, n_repetitions, n_chans, n_times)
        float32 signal (whitened data are unitless; imported raw EEG is in volts). May be a ``np.memmap``.
    ch_names : list of str
        Channel names (10-10 names for EEG).
    sfreq : float
        Sampling rate in Hz.
    times : np.ndarray, shape (n_times,)
        Time of each sample in seconds relative to stimulus onset.
    subject : str
        Subject label, ``"sub-01"`` style.
    split : str
        ``"train"`` or ``"test"`` (imported recordings may use another label).
    images : ImageSet | None
        Condition → concept → image mapping, when known.
    dataset : str
        Dataset variant, e.g. ``"things-eeg-250hz"``, ``"things-eeg-100hz"``, ``"things-meg"``, ``"eeg-imagenet"``,
        ``"simulated"``, ``"imported"``.
    ch_type : str
        MNE channel type of all channels (``"eeg"`` or ``"mag"``).
    condition_labels : np.ndarray | None, shape (n_conditions,)
        Integer class label per condition where it differs from the concept index (e.g. EEG-ImageNet classes).
    extra : dict
        Free-form provenance (source file, preprocessing applied, channel mapping report, ...).
    """

    data: np.ndarray
    ch_names: list[str]
    sfreq: float
    times: np.ndarray
    subject: str
    split: str
    images: ImageSet | None = None
    dataset: str = "things-eeg-250hz"
    ch_type: str = "eeg"
    condition_labels: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 4:
            raise ToolkitError(
                f"TrialSet data must be 4-D (n_conditions, n_repetitions, n_chans, n_times); got shape "
                f"{tuple(self.data.shape)}."
            )
        n_cond, _, n_chans, n_times = self.data.shape
        if len(self.ch_names) != n_chans:
            raise ToolkitError(f"TrialSet has {n_chans} channels in its data but {len(self.ch_names)} channel names.")
        self.times = np.asarray(self.times, dtype=np.float64)
        if self.times.shape != (n_times,):
            raise ToolkitError(f"TrialSet has {n_times} samples in its data but {self.times.size} time points.")
        if self.images is not None and self.images.n_conditions != n_cond:
            raise ToolkitError(
                f"TrialSet has {n_cond} conditions but its image set maps {self.images.n_conditions} images."
            )

    # -- shape ------------------------------------------------------------------------------------------------
    @property
    def n_conditions(self) -> int:
        """Number of image conditions."""
        return int(self.data.shape[0])

    @property
    def n_repetitions(self) -> int:
        """Number of repetitions per condition."""
        return int(self.data.shape[1])

    @property
    def n_chans(self) -> int:
        """Number of channels."""
        return int(self.data.shape[2])

    @property
    def n_times(self) -> int:
        """Number of samples per trial."""
        return int(self.data.shape[3])

    def __len__(self) -> int:
        return self.n_conditions * self.n_repetitions

    # -- access -----------------------------------------------------------------------------------------------
    def trial(self, condition: int, repetition: int = 0) -> np.ndarray:
        """One trial as a float32 ``(n_chans, n_times)`` array (reads only that trial from a memory map)."""
        if not 0 <= condition < self.n_conditions:
            raise ToolkitError(f"condition {condition} is out of range; this set has {self.n_conditions}.")
        if not 0 <= repetition < self.n_repetitions:
            raise ToolkitError(f"repetition {repetition} is out of range; this set has {self.n_repetitions}.")
        return np.array(self.data[condition, repetition], dtype=np.float32)

    def condition_average(self, condition: int) -> np.ndarray:
        """Average over the repetitions of one condition, float32 ``(n_chans, n_times)``."""
        if not 0 <= condition < self.n_conditions:
            raise ToolkitError(f"condition {condition} is out of range; this set has {self.n_conditions}.")
        return np.asarray(self.data[condition], dtype=np.float32).mean(axis=0)

    def average(self) -> TrialSet:
        """A new in-memory set with the repetitions averaged (``n_repetitions == 1``), as done for THINGS test."""
        avg = np.asarray(self.data, dtype=np.float32).mean(axis=1, keepdims=True).astype(np.float32)
        return replace(self, data=avg, extra={**self.extra, "averaged_repetitions": self.n_repetitions})

    def select_channels(self, ch_names: list[str]) -> TrialSet:
        """A new set holding only ``ch_names`` in that order (in memory)."""
        missing = [c for c in ch_names if c not in self.ch_names]
        if missing:
            raise ToolkitError(f"Channels {missing} are not in this trial set; available: {self.ch_names}.")
        idx = [self.ch_names.index(c) for c in ch_names]
        return replace(self, data=np.asarray(self.data[:, :, idx, :], dtype=np.float32), ch_names=list(ch_names))

    def crop(self, tmin: float, tmax: float) -> TrialSet:
        """A new set restricted to samples with ``tmin <= times <= tmax`` (seconds)."""
        mask = (self.times >= tmin - 1e-9) & (self.times <= tmax + 1e-9)
        if not mask.any():
            raise ToolkitError(
                f"No samples between {tmin} s and {tmax} s; this set spans {self.times[0]:.3f} to "
                f"{self.times[-1]:.3f} s."
            )
        idx = np.flatnonzero(mask)
        return replace(
            self, data=np.asarray(self.data[..., idx[0] : idx[-1] + 1], dtype=np.float32), times=self.times[mask]
        )

    def labels(self) -> np.ndarray:
        """Integer label per condition: ``condition_labels`` if set, else the concept index, else the condition."""
        if self.condition_labels is not None:
            return np.asarray(self.condition_labels, dtype=np.int64)
        if self.images is not None:
            return np.asarray(self.images.condition_concept, dtype=np.int64)
        return np.arange(self.n_conditions, dtype=np.int64)

    def concept_names(self) -> list[str]:
        """Concept text per condition (``"condition-<i>"`` when no image set is attached)."""
        if self.images is None:
            return [f"condition-{i}" for i in range(self.n_conditions)]
        return [self.images.concept_of(i) for i in range(self.n_conditions)]

    def metadata(self) -> pd.DataFrame:
        """One row per trial (condition-major): subject, split, condition, concept, label, image, repetition."""
        import pandas as pd

        cond = np.repeat(np.arange(self.n_conditions), self.n_repetitions)
        rep = np.tile(np.arange(self.n_repetitions), self.n_conditions)
        concepts = np.asarray(self.concept_names(), dtype=object)
        images = (
            np.asarray(self.images.image_files, dtype=object)
            if self.images is not None
            else np.full(self.n_conditions, "", dtype=object)
        )
        return pd.DataFrame(
            {
                "subject": self.subject,
                "split": self.split,
                "condition": cond,
                "concept": concepts[cond],
                "label": self.labels()[cond],
                "image": images[cond],
                "repetition": rep,
            }
        )

    def to_epochs(self, *, average: bool = False, montage: str | None = "standard_1005") -> mne.EpochsArray:
        """Convert to :class:`mne.EpochsArray` with a standard montage and a metadata table.

        See :func:`toolkit.data.to_epochs`.
        """
        from .mne_bridge import to_epochs

        return to_epochs(self, average=average, montage=montage)
