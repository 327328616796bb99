"""Summaries of attribution maps: per channel, per time window, per region group, time courses; batched attribution.

Maps are float arrays ``(n_chans, n_times)`` or ``(n_trials, n_chans, n_times)``. Every reducer takes ``signed``:

- ``signed=False`` (default) averages the **magnitude** ``|attr|`` — "how much does this channel/sample matter";
  the absolute value is taken per trial and per sample *before* averaging, so opposite signs in different trials
  do not cancel;
- ``signed=True`` averages the signed values — "in which direction does it push the target".

Channel groups are a mapping ``name -> channel names`` (ATM's five regions, :data:`toolkit.data.channels.REGIONS_63`,
by default). Time windows are ``(tmin, tmax)`` pairs in seconds, half-open ``[tmin, tmax)``: at 250 Hz the window
``(0.2, 0.3)`` holds samples 50 … 74, as in ATM's per-window experiments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ToolkitError

OTHER_GROUP = "other"
"""Name of the group collecting channels that no group names (when the default regions are used)."""

ATM_GROWING_ENDS_S: tuple[float, ...] = (
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
)
"""Window ends of ATM's growing-window experiment ``[0, t]`` (ATM.md §11.1), in seconds."""


# ---------------------------------------------------------------------------------------------------- validation
def as_maps(attr: Any, *, name: str = "attr") -> np.ndarray:
    """Attribution maps as a float64 ``(n_trials, n_chans, n_times)`` array (a 2-D map gets a trial axis)."""
    if hasattr(attr, "detach") and hasattr(attr, "cpu"):
        attr = attr.detach().cpu().numpy()
    try:
        arr = np.asarray(attr, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"{name} could not be read as a float array ({err}).") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ToolkitError(
            f"{name} must be (n_chans, n_times) or (n_trials, n_chans, n_times) and non-empty; got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ToolkitError(f"{name} contains NaN or infinite values; recompute the attributions.")
    return arr


def check_times(times: Any, n_times: int | None = None) -> np.ndarray:
    """Sample times in seconds as a strictly increasing float64 array (of length ``n_times`` if given)."""
    arr = np.asarray(times, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise ToolkitError("times must be a non-empty 1-D array of finite sample times in seconds.")
    if arr.size > 1 and not (np.diff(arr) > 0).all():
        raise ToolkitError("times must be strictly increasing (one time per sample, in seconds).")
    if n_times is not None and arr.size != n_times:
        raise ToolkitError(f"times has {arr.size} values but the maps have {n_times} samples; pass the data's times.")
    return arr


def _sample_period(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if times.size > 1 else 1.0


def epoch_span(times: Any) -> tuple[float, float]:
    """``(first sample time, last sample time + one sample period)``: the span windows may cover, in seconds."""
    times = check_times(times)
    return float(times[0]), float(times[-1] + _sample_period(times))


def window_indices(times: Any, window: Sequence[float]) -> np.ndarray:
    """Sample indices of the half-open window ``[tmin, tmax)`` (seconds); fails outside the epoch or when empty.

    Parameters
    ----------
    times : array, shape (n_times,)
        Sample times in seconds.
    window : pair of float
        ``(tmin, tmax)`` in seconds.

    Returns
    -------
    np.ndarray of int64
        The samples in the window.
    """
    times = check_times(times)
    try:
        tmin, tmax = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ToolkitError(f"A time window must be a (tmin, tmax) pair of seconds; got {window!r}.") from None
    dt = _sample_period(times)
    start, stop = epoch_span(times)
    if not (np.isfinite(tmin) and np.isfinite(tmax)) or tmin >= tmax:
        raise ToolkitError(f"Time window ({tmin}, {tmax}) s must have tmin < tmax.")
    tol = dt / 2
    if tmin < start - tol or tmax > stop + tol:
        raise ToolkitError(
            f"Time window ({tmin:g}, {tmax:g}) s lies outside the epoch, which spans {start:.3f} to {stop:.3f} s "
            f"({times.size} samples at {1 / dt:g} Hz); choose windows inside it."
        )
    eps = dt * 1e-3
    idx = np.flatnonzero((times >= tmin - eps) & (times < tmax - eps))
    if idx.size == 0:
        raise ToolkitError(
            f"Time window ({tmin:g}, {tmax:g}) s holds no sample (samples are {dt * 1000:g} ms apart); widen it."
        )
    return idx


def check_windows(times: Any, windows: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Sample indices of every window (see :func:`window_indices`); ``windows`` must be non-empty."""
    if windows is None or isinstance(windows, (str, bytes)) or len(windows) == 0:
        raise ToolkitError(f"windows must be a non-empty list of (tmin, tmax) pairs in seconds; got {windows!r}.")
    return [window_indices(times, w) for w in windows]


def window_label(window: Sequence[float]) -> str:
    """``"100–200 ms"`` for the window ``(0.1, 0.2)``."""
    tmin, tmax = (float(v) for v in window)
    return f"{tmin * 1000:g}–{tmax * 1000:g} ms"


def growing_windows(times: Any, ends: Sequence[float] | None = None, *, start: float | None = None) -> list[tuple]:
    """ATM's growing windows ``[start, t)`` for each end ``t`` (default: ATM's ends that fit in the epoch).

    Parameters
    ----------
    times : array, shape (n_times,)
        Sample times in seconds.
    ends : sequence of float | None
        Window ends in seconds; ``None`` uses :data:`ATM_GROWING_ENDS_S` up to the end of the epoch.
    start : float | None
        Common start; ``None``: 0 s if the epoch contains it, else the first sample.

    Returns
    -------
    list of (float, float)
        The windows.
    """
    t0, t1 = epoch_span(times)
    if start is None:
        start = 0.0 if t0 <= 0.0 < t1 else t0
    if ends is None:
        dt = _sample_period(check_times(times))
        ends = [e for e in ATM_GROWING_ENDS_S if start < e <= t1 + dt / 2]
        if not ends:
            ends = [t1]
    windows = [(float(start), float(e)) for e in ends]
    for w in windows:
        window_indices(times, w)
    return windows


def sliding_windows(
    times: Any, *, width: float = 0.1, step: float | None = None, start: float | None = None
) -> list[tuple]:
    """Sliding windows ``[t - width, t)`` stepping by ``step`` over the epoch (ATM: 100 ms windows).

    Parameters
    ----------
    times : array, shape (n_times,)
        Sample times in seconds.
    width : float
        Window length in seconds.
    step : float | None
        Distance between consecutive window ends; ``None`` uses ``width`` (adjacent windows, as in ATM's
        ``0–100, 100–200, …`` models).
    start : float | None
        Start of the first window; ``None``: 0 s if the epoch contains it, else the first sample.

    Returns
    -------
    list of (float, float)
        The windows.
    """
    t0, t1 = epoch_span(times)
    width = float(width)
    step = width if step is None else float(step)
    if not width > 0 or not step > 0:
        raise ToolkitError(f"width and step must be positive seconds; got width={width}, step={step}.")
    if start is None:
        start = 0.0 if t0 <= 0.0 < t1 else t0
    dt = _sample_period(check_times(times))
    windows = []
    end = float(start) + width
    while end <= t1 + dt / 2:
        windows.append((round(end - width, 9), round(end, 9)))
        end += step
    if not windows:
        raise ToolkitError(
            f"No {width * 1000:g} ms window fits in the epoch ({t0:.3f} to {t1:.3f} s); use a shorter width."
        )
    return windows


def resolve_groups(
    ch_names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None
) -> dict[str, np.ndarray]:
    """Channel indices of every group.

    Parameters
    ----------
    ch_names : sequence of str
        The data's channel names.
    groups : Mapping of str to sequence of str | None
        Group name → channel names. Every named channel must be in the data (matched case-insensitively); an
        error names those that are not. ``None`` uses ATM's five regions (:data:`~toolkit.data.channels.REGIONS_63`)
        restricted to the data's channels, dropping empty regions and collecting unlisted channels in
        ``"other"``.

    Returns
    -------
    dict of str to np.ndarray of int64
        Group name → channel indices (in the data's order), in the order of ``groups``.
    """
    names = [str(c) for c in ch_names]
    lookup: dict[str, int] = {}
    for i, c in enumerate(names):
        lookup.setdefault(c.lower(), i)
    if groups is None:
        from ..data.channels import REGIONS_63

        out: dict[str, np.ndarray] = {}
        for region, chans in REGIONS_63.items():
            idx = sorted(lookup[c.lower()] for c in chans if c.lower() in lookup)
            if idx:
                out[region] = np.asarray(idx, dtype=np.int64)
        covered = set(np.concatenate(list(out.values())).tolist()) if out else set()
        rest = [i for i in range(len(names)) if i not in covered]
        if rest:
            out[OTHER_GROUP] = np.asarray(rest, dtype=np.int64)
        return out
    if not isinstance(groups, Mapping) or not groups:
        raise ToolkitError(
            f"groups must be a non-empty mapping of group name -> channel names; got {type(groups).__name__}."
        )
    out = {}
    for group, chans in groups.items():
        if isinstance(chans, str) or not isinstance(chans, Sequence) or len(chans) == 0:
            raise ToolkitError(f"Channel group {group!r} must list at least one channel name; got {chans!r}.")
        missing = [str(c) for c in chans if str(c).lower() not in lookup]
        if missing:
            raise ToolkitError(
                f"Channel group {group!r} names channel(s) {', '.join(missing)} that the data lack; the data have "
                f"{len(names)} channels ({', '.join(names[:8])}{', …' if len(names) > 8 else ''}). Remove them "
                "from the group or pass groups=None for ATM's regions restricted to these channels."
            )
        out[str(group)] = np.asarray(sorted({lookup[str(c).lower()] for c in chans}), dtype=np.int64)
    return out


def channel_order(ch_names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None) -> tuple:
    """Channels ordered by group, for heat maps.

    Parameters
    ----------
    ch_names : sequence of str
        The data's channel names.
    groups : Mapping | None
        See :func:`resolve_groups`. A channel in several groups is listed under the first; channels in none
        come last, under ``"other"``.

    Returns
    -------
    order : np.ndarray of int64, shape (n_chans,)
        Channel indices in display order.
    spans : list of (str, int, int)
        ``(group, first row, stop row)`` of each group in ``order``.
    """
    resolved = resolve_groups(ch_names, groups)
    order: list[int] = []
    spans = []
    seen: set[int] = set()
    for group, idx in resolved.items():
        rows = [int(i) for i in idx if int(i) not in seen]
        if not rows:
            continue
        spans.append((group, len(order), len(order) + len(rows)))
        order.extend(rows)
        seen.update(rows)
    rest = [i for i in range(len(ch_names)) if i not in seen]
    if rest:
        spans.append((OTHER_GROUP, len(order), len(order) + len(rest)))
        order.extend(rest)
    return np.asarray(order, dtype=np.int64), spans


# --------------------------------------------------------------------------------------------------- reducers
def _values(maps: np.ndarray, signed: bool) -> np.ndarray:
    if not isinstance(signed, (bool, np.bool_)):
        raise ToolkitError(f"signed must be True or False; got {signed!r}.")
    return maps if signed else np.abs(maps)


def channel_scores(attr: Any, *, signed: bool = False, per_trial: bool = False) -> np.ndarray:
    """Mean attribution per channel (over samples, and over trials unless ``per_trial``).

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    signed : bool
        Average signed values instead of magnitudes.
    per_trial : bool
        Keep the trial axis.

    Returns
    -------
    np.ndarray, shape (n_chans,) or (n_trials, n_chans)
        The scores.
    """
    values = _values(as_maps(attr), signed).mean(axis=2)
    return values if per_trial else values.mean(axis=0)


def time_course(attr: Any, *, signed: bool = False, channels: Sequence[int] | None = None) -> np.ndarray:
    """Mean attribution per sample, over channels (all, or ``channels``) and trials.

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    signed : bool
        Average signed values instead of magnitudes.
    channels : sequence of int | None
        Channel indices to average (``None``: all).

    Returns
    -------
    np.ndarray, shape (n_times,)
        The time course.
    """
    values = _values(as_maps(attr), signed)
    if channels is not None:
        idx = np.asarray(channels, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= values.shape[1]:
            raise ToolkitError(f"channels must be indices between 0 and {values.shape[1] - 1}; got {channels!r}.")
        values = values[:, idx]
    return values.mean(axis=(0, 1))


def window_maps(attr: Any, times: Any, windows: Sequence[Sequence[float]], *, signed: bool = False) -> np.ndarray:
    """Mean attribution per channel within each time window (one topography per window).

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    times : array, shape (n_times,)
        Sample times in seconds.
    windows : sequence of (float, float)
        ``(tmin, tmax)`` windows in seconds, half-open.
    signed : bool
        Average signed values instead of magnitudes.

    Returns
    -------
    np.ndarray, shape (n_windows, n_chans)
        The topographies.
    """
    maps = as_maps(attr)
    times = check_times(times, maps.shape[2])
    values = _values(maps, signed).mean(axis=0)
    return np.stack([values[:, idx].mean(axis=1) for idx in check_windows(times, windows)])


def window_scores(attr: Any, times: Any, windows: Sequence[Sequence[float]], *, signed: bool = False) -> np.ndarray:
    """Mean attribution within each time window, over channels and trials; shape ``(n_windows,)``."""
    return window_maps(attr, times, windows, signed=signed).mean(axis=1)


def region_scores(
    attr: Any,
    ch_names: Sequence[str],
    groups: Mapping[str, Sequence[str]] | None = None,
    *,
    signed: bool = False,
    reduce: str = "mean",
) -> dict[str, float]:
    """Attribution per channel group.

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    ch_names : sequence of str
        Channel names of the maps.
    groups : Mapping of str to sequence of str | None
        See :func:`resolve_groups` (``None``: ATM's five regions).
    signed : bool
        Average signed values instead of magnitudes.
    reduce : str
        ``"mean"``: mean per channel of the group (comparable across groups of different sizes); ``"sum"``: the
        group's total (its share of the attribution).

    Returns
    -------
    dict of str to float
        Group → score, in group order.
    """
    if reduce not in ("mean", "sum"):
        raise ToolkitError(f"reduce must be 'mean' or 'sum'; got {reduce!r}.")
    scores = channel_scores(attr, signed=signed)
    if len(ch_names) != scores.size:
        raise ToolkitError(f"ch_names has {len(ch_names)} names but the maps have {scores.size} channels.")
    resolved = resolve_groups(ch_names, groups)
    agg = np.mean if reduce == "mean" else np.sum
    return {group: float(agg(scores[idx])) for group, idx in resolved.items()}


def peak(values: Any, times: Any) -> tuple[float, float]:
    """``(time, value)`` of the largest value of a time course."""
    values = np.asarray(values, dtype=np.float64)
    times = check_times(times, values.size)
    i = int(np.argmax(values))
    return float(times[i]), float(values[i])


def summarize(
    attr: Any,
    ch_names: Sequence[str],
    times: Any,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    windows: Sequence[Sequence[float]] | None = None,
    signed: bool = False,
    top: int = 10,
) -> dict[str, Any]:
    """A JSON-friendly summary: top channels, region scores, window scores, peak latency, time course.

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps.
    ch_names : sequence of str
        Channel names.
    times : array, shape (n_times,)
        Sample times in seconds.
    groups : Mapping | None
        Channel groups (``None``: ATM's regions).
    windows : sequence of (float, float) | None
        Windows to score (``None``: adjacent 100 ms windows over the epoch).
    signed : bool
        Signed values instead of magnitudes.
    top : int
        Number of channels listed.

    Returns
    -------
    dict
        ``top_channels``, ``channel_scores``, ``region_scores``, ``window_scores``, ``peak_latency_s``,
        ``time_course`` and ``times``.
    """
    maps = as_maps(attr)
    times = check_times(times, maps.shape[2])
    names = [str(c) for c in ch_names]
    if len(names) != maps.shape[1]:
        raise ToolkitError(f"ch_names has {len(names)} names but the maps have {maps.shape[1]} channels.")
    chan = channel_scores(maps, signed=signed)
    course = time_course(maps, signed=signed)
    if windows is None:
        try:
            windows = sliding_windows(times, width=0.1)
        except ToolkitError:
            windows = [epoch_span(times)]
    win = window_scores(maps, times, windows, signed=signed)
    order = np.argsort(-chan)[: max(1, int(top))]
    peak_t, _ = peak(course if signed is False else np.abs(course), times)
    return {
        "n_trials": int(maps.shape[0]),
        "signed": bool(signed),
        "top_channels": [{"channel": names[i], "score": float(chan[i])} for i in order],
        "channel_scores": {names[i]: float(chan[i]) for i in range(len(names))},
        "region_scores": region_scores(maps, names, groups, signed=signed),
        "window_scores": [
            {"window_s": [float(w[0]), float(w[1])], "label": window_label(w), "score": float(s)}
            for w, s in zip(windows, win)
        ],
        "peak_latency_s": peak_t,
        "time_course": [float(v) for v in course],
        "times": [float(t) for t in times],
    }


# ------------------------------------------------------------------------------------------------ feature masks
@dataclass(frozen=True)
class FeatureMask:
    """A captum ``feature_mask``: one feature id per (channel, sample), with a label per id.

    Attributes
    ----------
    mask : np.ndarray of int64, shape (n_chans, n_times)
        Feature id of every element; ids run from 0 to ``len(labels) - 1``.
    labels : tuple of str
        ``"group @ window"`` label of each id.
    """

    mask: np.ndarray
    labels: tuple[str, ...]

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.labels)


def make_feature_mask(
    ch_names: Sequence[str],
    times: Any,
    *,
    groups: Mapping[str, Sequence[str]] | str | None = None,
    windows: Sequence[Sequence[float]] | None = None,
) -> FeatureMask:
    """Build a feature mask whose features are (channel group × time window) cells, for grouped occlusion.

    Parameters
    ----------
    ch_names : sequence of str
        The data's channel names.
    times : array, shape (n_times,)
        Sample times in seconds.
    groups : Mapping | "regions" | None
        Channel groups (see :func:`resolve_groups`); ``"regions"``: ATM's regions; ``None``: every channel alone.
        Channels in no group form one more group, ``"other"``; a channel in several groups counts in the first.
    windows : sequence of (float, float) | None
        Time windows (half-open, seconds); ``None``: the whole epoch. Samples in no window form one more window,
        ``"rest"``; a sample in several windows counts in the first.

    Returns
    -------
    FeatureMask
        The mask and its labels.
    """
    names = [str(c) for c in ch_names]
    times = check_times(times)
    n_chans, n_times = len(names), times.size
    if groups is None:
        chan_groups = {c: np.array([i]) for i, c in enumerate(names)}
    elif groups == "regions":
        chan_groups = resolve_groups(names, None)
    else:
        chan_groups = resolve_groups(names, groups)  # type: ignore[arg-type]
    chan_id = np.full(n_chans, -1, dtype=np.int64)
    chan_labels = []
    for label, idx in chan_groups.items():
        free = idx[chan_id[idx] < 0]
        if free.size:
            chan_id[free] = len(chan_labels)
            chan_labels.append(label)
    if (chan_id < 0).any():
        chan_id[chan_id < 0] = len(chan_labels)
        chan_labels.append(OTHER_GROUP)
    time_id = np.full(n_times, -1, dtype=np.int64)
    time_labels = []
    if windows is None:
        time_id[:] = 0
        time_labels.append("all")
    else:
        for w, idx in zip(windows, check_windows(times, windows)):
            free = idx[time_id[idx] < 0]
            if free.size:
                time_id[free] = len(time_labels)
                time_labels.append(window_label(w))
        if (time_id < 0).any():
            time_id[time_id < 0] = len(time_labels)
            time_labels.append("rest")
    mask = chan_id[:, None] * len(time_labels) + time_id[None, :]
    labels = [f"{c} @ {t}" for c in chan_labels for t in time_labels]
    # Renumber to the ids actually present (captum needs consecutive ids from 0).
    used, mask = np.unique(mask, return_inverse=True)
    return FeatureMask(mask=mask.reshape(n_chans, n_times).astype(np.int64), labels=tuple(labels[i] for i in used))


# ----------------------------------------------------------------------------------------------- batched runs
def attribute_batched(
    model: Any,
    eeg: Any,
    *,
    method: str = "ig",
    target: Any = "similarity",
    index: Any = None,
    image_embeds: Any = None,
    normalize: bool | None = None,
    baselines: Any = None,
    subject_ids: Any = None,
    batch_size: int = 16,
    progress: bool = True,
    **method_kwargs: Any,
) -> np.ndarray:
    """:func:`~toolkit.explain.attribute` over many trials, ``batch_size`` at a time, with a progress bar.

    Parameters
    ----------
    model, method, target, image_embeds, normalize, **method_kwargs
        See :func:`~toolkit.explain.attribute`.
    eeg : array, shape (n_trials, n_chans, n_times)
        The trials (a memory map is read batch by batch).
    index : array of int, shape (n_trials,) | int | None
        True gallery row or class per trial.
    baselines : see :func:`~toolkit.explain.attribute`
        ``"mean"`` is the mean over **all** ``n_trials`` trials (computed once); a ``(n_trials, n_chans,
        n_times)`` array is split with the trials; a ``(n_chans, n_times)`` array or a distribution for
        ``deeplift_shap`` is shared by every batch.
    subject_ids : array of int, shape (n_trials,) | int | None
        Subject index per trial (or one for all).
    batch_size : int
        Trials per call (with integrated gradients each call runs ``batch_size * n_steps`` forward passes; pass
        ``internal_batch_size`` to bound memory).
    progress : bool
        Show a progress bar (silenced by ``EEG_TOOLKIT_NO_PROGRESS=1``).

    Returns
    -------
    np.ndarray of float32, shape (n_trials, n_chans, n_times)
        The attributions.
    """
    from ..utils import progress as progress_bar
    from .attribution import attribute

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ToolkitError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if hasattr(eeg, "shape") and len(eeg.shape) == 3:
        n_trials = int(eeg.shape[0])
    else:
        raise ToolkitError(
            "eeg must be a 3-D array (n_trials, n_chans, n_times); got "
            f"{getattr(eeg, 'shape', type(eeg).__name__)}."
        )
    index = _per_trial(index, n_trials, "index")
    subject_ids = _per_trial(subject_ids, n_trials, "subject_ids")
    per_trial_baseline = False
    if isinstance(baselines, str) and baselines == "mean":
        baselines = _mean_trial(eeg, batch_size)
    elif baselines is not None and not isinstance(baselines, (str, int, float)):
        shape = tuple(getattr(baselines, "shape", ()))
        per_trial_baseline = method != "deeplift_shap" and len(shape) == 3 and shape[0] == n_trials and n_trials > 1
    chunks = []
    bar = progress_bar(total=n_trials, desc=f"attribution ({method})", disable=None if progress else True)
    try:
        for start in range(0, n_trials, int(batch_size)):
            stop = min(start + int(batch_size), n_trials)
            chunks.append(
                attribute(
                    model,
                    np.asarray(eeg[start:stop], dtype=np.float32) if not hasattr(eeg, "detach") else eeg[start:stop],
                    method=method,
                    target=target,
                    index=None if index is None else index[start:stop],
                    image_embeds=image_embeds,
                    normalize=normalize,
                    baselines=baselines[start:stop] if per_trial_baseline else baselines,
                    subject_ids=None if subject_ids is None else subject_ids[start:stop],
                    **method_kwargs,
                )
            )
            bar.update(stop - start)
    finally:
        bar.close()
    return np.concatenate(chunks, axis=0)


def _per_trial(values: Any, n_trials: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n_trials, arr.item())
    if arr.shape != (n_trials,) or arr.dtype.kind not in "iu":
        raise ToolkitError(f"{name} must be integers, one per trial ({n_trials},) or one for all; got {arr.shape}.")
    return arr.astype(np.int64)


def _mean_trial(eeg: Any, batch_size: int) -> np.ndarray:
    """Mean over trials, read in chunks (works on memory maps and tensors)."""
    total = None
    n = int(eeg.shape[0])
    step = max(int(batch_size), 256)
    for start in range(0, n, step):
        chunk = eeg[start : start + step]
        if hasattr(chunk, "detach"):
            chunk = chunk.detach().cpu().numpy()
        part = np.asarray(chunk, dtype=np.float64).sum(axis=0)
        total = part if total is None else total + part
    return (total / n).astype(np.float32)


__all__ = [
    "ATM_GROWING_ENDS_S",
    "OTHER_GROUP",
    "FeatureMask",
    "as_maps",
    "attribute_batched",
    "channel_order",
    "channel_scores",
    "check_times",
    "check_windows",
    "epoch_span",
    "growing_windows",
    "make_feature_mask",
    "peak",
    "region_scores",
    "resolve_groups",
    "sliding_windows",
    "summarize",
    "time_course",
    "window_indices",
    "window_label",
    "window_maps",
    "window_scores",
]
