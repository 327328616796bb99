"""The bridge between :class:`~toolkit.data.TrialSet` and MNE: ``TrialSet`` <-> :class:`mne.EpochsArray`.

``to_epochs`` gives MNE's whole toolbox (ERPs, topomaps, decoding, statistics) to any trial set; ``from_epochs``
brings epochs cut elsewhere back into the toolkit's object model.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ToolkitError
from ._montage import DEFAULT_MONTAGE, make_montage, montage_positions, resolve_montage_name

if TYPE_CHECKING:  # pragma: no cover
    import mne

    from .images import ImageSet
    from .trials import TrialSet

logger = logging.getLogger(__name__)


def to_epochs(
    trials: TrialSet, *, average: bool = False, montage: str | None = DEFAULT_MONTAGE
) -> mne.EpochsArray:
    """Convert a trial set to :class:`mne.EpochsArray`.

    Parameters
    ----------
    trials : TrialSet
        ``(n_conditions, n_repetitions, n_chans, n_times)`` trials.
    average : bool
        One epoch per condition (the average over repetitions) instead of one per trial.
    montage : str | None
        Built-in MNE montage giving EEG electrode positions (``"standard_1005"``, the same as MNE 1.13's
        ``"colin27_1005"``). It is set when at least one channel name is known to it; channels it does not know
        keep no position, and names it knows none of (EEG-ImageNet's ``E1`` ... ``E128`` with the default) leave
        the epochs without a montage. Ignored for non-EEG channel types (MEG ``"mag"``). ``None``: no montage.

    Returns
    -------
    mne.EpochsArray
        Condition-major epochs (condition 0 repetitions 0 ... R-1, then condition 1, ...), ``tmin = times[0]``,
        channel type ``trials.ch_type``, one event code per concept/label with ``event_id`` mapping the concept
        name to it, and ``metadata`` = :meth:`TrialSet.metadata` (with ``average=True``: one row per condition,
        ``repetition`` replaced by ``n_averaged``).
    """
    import mne

    n_cond, n_rep, n_chans, n_times = trials.data.shape
    if average:
        data = np.asarray(trials.data, dtype=np.float32).mean(axis=1, dtype=np.float64)
        per_cond = 1
    else:
        data = np.asarray(trials.data, dtype=np.float64).reshape(n_cond * n_rep, n_chans, n_times)
        per_cond = n_rep
    try:
        info = mne.create_info(list(trials.ch_names), float(trials.sfreq), ch_types=trials.ch_type)
    except (ValueError, KeyError, TypeError) as err:
        raise ToolkitError(
            f"Cannot describe the channels for MNE (ch_type={trials.ch_type!r}, sfreq={trials.sfreq}): {err}"
        ) from err
    codes, event_id = _event_codes(trials)
    cond = np.repeat(np.arange(n_cond), per_cond)
    events = np.column_stack(
        [np.arange(len(cond), dtype=np.int64) * n_times, np.zeros(len(cond), dtype=np.int64), codes[cond]]
    )
    metadata = trials.metadata()
    if average:
        metadata = metadata[metadata["repetition"] == 0].drop(columns="repetition").reset_index(drop=True)
        metadata["n_averaged"] = n_rep
    epochs = mne.EpochsArray(
        data,
        info,
        events=events,
        tmin=float(trials.times[0]),
        event_id=event_id,
        baseline=None,
        metadata=metadata,
        verbose="error",
    )
    if montage is not None and trials.ch_type == "eeg":
        known = montage_positions(trials.ch_names, montage)
        if known:
            epochs.set_montage(make_montage(montage), on_missing="ignore", verbose="error")
            missing = [c for c in trials.ch_names if c not in known]
            if missing:
                logger.info("montage %s has no position for %d channels: %s", montage, len(missing), missing[:10])
        else:
            logger.info("montage %s knows none of the channel names; epochs have no positions", montage)
    return epochs


def _event_codes(trials: TrialSet) -> tuple[np.ndarray, dict[str, int]]:
    """Event code per condition and the name -> code mapping (one code per concept/label)."""
    labels = trials.labels()
    names = trials.concept_names()
    given = trials.extra.get("event_id") if isinstance(trials.extra.get("event_id"), dict) else None
    codes = np.empty(trials.n_conditions, dtype=np.int64)
    event_id: dict[str, int] = {}
    label_code: dict[int, int] = {}
    for c, (label, name) in enumerate(zip(labels, names)):
        label = int(label)
        if label not in label_code:
            code = int(given[name]) if given and name in given else label + 1  # MNE reserves code 0 for "none"
            key = name.replace("/", "-")  # "/" would split the name into MNE event tags
            if key in event_id:
                key = f"{key} (label {label})"
            event_id[key] = code
            label_code[label] = code
        codes[c] = label_code[label]
    return codes, event_id


def from_epochs(
    epochs: mne.BaseEpochs,
    *,
    subject: str,
    split: str,
    dataset: str = "imported",
    images: ImageSet | None = None,
    unequal: str = "truncate",
    picks: str | list[str] | None = None,
) -> TrialSet:
    """Build a trial set from MNE epochs.

    Conditions come from the ``condition`` column of ``epochs.metadata`` when present (so that
    ``from_epochs(to_epochs(ts))`` restores the conditions, names and labels), otherwise from the event codes
    (named by ``epochs.event_id``), in code order. Repetitions are the epochs of a condition in their order.

    Parameters
    ----------
    epochs : mne.BaseEpochs
        The epochs (loaded into memory).
    subject, split : str
        Labels of the trial set.
    dataset : str
        Dataset label.
    images : ImageSet | None
        Stimulus mapping to attach (must have one image per condition); default: one named by each condition.
    unequal : str
        What to do when conditions have different numbers of epochs: ``"truncate"`` keeps the first ``n`` epochs
        of every condition, ``n`` the smallest count (the default: a TrialSet needs equal counts); ``"single"``
        makes every epoch its own condition with one repetition (nothing lost; labels keep the condition).
    picks : str | list of str | None
        Channels to take; default: the data channels, which must all be of one type.

    Returns
    -------
    TrialSet
        float32 ``(n_conditions, n_repetitions, n_chans, n_times)``; ``extra["left_out_per_condition"]`` counts
        what truncation dropped.
    """
    from .images import ImageSet
    from .trials import TrialSet

    if unequal not in ("truncate", "single"):
        raise ToolkitError(f"unequal must be 'truncate' or 'single'; got {unequal!r}.")
    if len(epochs) == 0:
        raise ToolkitError("The epochs are empty; there is nothing to convert.")
    inst = epochs.copy().pick(picks if picks is not None else "data", exclude="bads")
    kinds = sorted(set(inst.get_channel_types()))
    if len(kinds) != 1:
        raise ToolkitError(
            f"The epochs mix channel types {kinds}; choose one with picks= (e.g. picks='eeg')."
        )
    data = inst.get_data().astype(np.float32)
    meta = epochs.metadata
    code_name = {code: name for name, code in epochs.event_id.items()}
    if meta is not None and "condition" in meta.columns:
        keys = meta["condition"].to_numpy().astype(np.int64)
        first = {k: int(np.flatnonzero(keys == k)[0]) for k in np.unique(keys)}
        has_concept = "concept" in meta.columns
        cond_names = {k: str(meta["concept"].iloc[i]) if has_concept else f"condition-{k}" for k, i in first.items()}
        cond_labels = {k: int(meta["label"].iloc[i]) for k, i in first.items()} if "label" in meta.columns else None
        extra: dict = {}
    else:
        keys = epochs.events[:, 2].astype(np.int64)
        cond_names = {int(k): code_name.get(int(k), str(int(k))) for k in np.unique(keys)}
        cond_labels = None
        extra = {"event_id": {cond_names[k]: int(k) for k in sorted(cond_names)}}
    order = sorted(cond_names)
    if unequal == "single":
        trials = data[:, None]
        per_trial = [int(k) for k in keys]
        names = [cond_names[k] for k in per_trial]
        labels = np.array([order.index(k) if cond_labels is None else cond_labels[k] for k in per_trial])
        concept_index = {name: i for i, name in enumerate(dict.fromkeys(names))}
        concept_of = np.array([concept_index[n] for n in names], dtype=np.int64)
        concepts = list(concept_index)
    else:
        counts = {k: int((keys == k).sum()) for k in order}
        n_rep = min(counts.values())
        trials = np.stack([data[keys == k][:n_rep] for k in order])
        extra["left_out_per_condition"] = {cond_names[k]: counts[k] - n_rep for k in order}
        if any(extra["left_out_per_condition"].values()):
            logger.warning("unequal epoch counts %s: kept the first %d of each condition", counts, n_rep)
        labels = np.array([order.index(k) if cond_labels is None else cond_labels[k] for k in order])
        concepts = [cond_names[k] for k in order]
        concept_of = np.arange(len(order), dtype=np.int64)
    if images is None:
        images = ImageSet(
            root=None,
            concept_folders=tuple(f"{i + 1:05d}_{name}" for i, name in enumerate(concepts)),
            image_files=("",) * len(concept_of),
            condition_concept=concept_of,
        )
    default_labels = np.asarray(images.condition_concept, dtype=np.int64)
    return TrialSet(
        data=np.ascontiguousarray(trials, dtype=np.float32),
        ch_names=list(inst.ch_names),
        sfreq=float(inst.info["sfreq"]),
        times=inst.times.copy(),
        subject=subject,
        split=split,
        images=images,
        dataset=dataset,
        ch_type=kinds[0],
        condition_labels=None if np.array_equal(labels, default_labels) else labels.astype(np.int64),
        extra=extra,
    )


__all__ = ["from_epochs", "resolve_montage_name", "to_epochs"]
