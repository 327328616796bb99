"""Validating attribution maps against a known ground truth (the simulator's informative channels and latencies).

The simulator (:mod:`toolkit.data.simulate`) records which channels and samples carry image information
(``load_ground_truth(root)``: ``informative_channels_mask``, ``channel_score``, ``informative_samples_mask``,
``time_score``, ``components`` with latencies). A faithful attribution method applied to a model trained on the
simulation should rank the informative channels first and peak near the informative latencies::

    truth = load_ground_truth(root)
    attr = attribute_batched(encoder, eeg, method="ig", index=conditions, image_embeds=gallery, normalize=True)
    report = compare_with_ground_truth(attr, truth, ch_names=trials.ch_names, times=trials.times)
    assert report["channel_auroc"] >= 0.8
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .aggregate import as_maps, channel_scores, check_times, time_course


def channel_auroc(channel_scores: Any, informative_mask: Any) -> float:
    """Area under the ROC curve of a channel ranking against the truly informative channels.

    1.0: every informative channel scores above every other; 0.5: chance. Computed as the Mann-Whitney U
    statistic of the informative channels' scores against the others' divided by the number of pairs (ties count
    one half), which equals scikit-learn's ``roc_auc_score``.

    Parameters
    ----------
    channel_scores : array, shape (n_chans,)
        Importance per channel (higher = more important), e.g. :func:`~toolkit.explain.channel_scores`.
    informative_mask : array of bool, shape (n_chans,)
        True for the channels that carry information.

    Returns
    -------
    float
        The AUROC.
    """
    from scipy.stats import mannwhitneyu

    scores = np.asarray(channel_scores, dtype=np.float64)
    mask = np.asarray(informative_mask)
    if scores.ndim != 1 or mask.shape != scores.shape:
        raise ToolkitError(
            f"channel_scores and informative_mask must be 1-D of the same length; got {scores.shape} and {mask.shape}."
        )
    if mask.dtype != bool:
        if mask.dtype.kind in "iu" and set(np.unique(mask).tolist()) <= {0, 1}:
            mask = mask.astype(bool)
        else:
            raise ToolkitError(f"informative_mask must be boolean (True = informative); got dtype {mask.dtype}.")
    if not np.isfinite(scores).all():
        raise ToolkitError("channel_scores contains NaN or infinite values.")
    n_pos, n_neg = int(mask.sum()), int((~mask).sum())
    if n_pos == 0 or n_neg == 0:
        raise ToolkitError(
            f"The AUROC needs informative and uninformative channels; the mask marks {n_pos} of {mask.size} "
            "channels as informative."
        )
    u = mannwhitneyu(scores[mask], scores[~mask], alternative="two-sided").statistic
    return float(u / (n_pos * n_neg))


def peak_latency(time_course: Any, times: Any, *, window: Sequence[float] | None = None) -> float:
    """Time (seconds) of the largest value of a time course, optionally within ``[tmin, tmax)``.

    Parameters
    ----------
    time_course : array, shape (n_times,)
        E.g. mean |attribution| per sample (:func:`~toolkit.explain.time_course`).
    times : array, shape (n_times,)
        Sample times in seconds.
    window : (float, float) | None
        Restrict the search to this window.

    Returns
    -------
    float
        The latency of the peak in seconds.
    """
    values = np.asarray(time_course, dtype=np.float64)
    if values.ndim != 1:
        raise ToolkitError(f"time_course must be 1-D (n_times,); got shape {values.shape}.")
    times = check_times(times, values.size)
    idx = np.arange(values.size)
    if window is not None:
        from .aggregate import window_indices

        idx = window_indices(times, window)
    if not np.isfinite(values[idx]).all():
        raise ToolkitError("time_course contains NaN or infinite values.")
    return float(times[idx[int(np.argmax(values[idx]))]])


def _truth_channels(truth: Mapping[str, Any], ch_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into ``ch_names`` of the truth's channels, with their mask and score (matched by name)."""
    names = [str(c) for c in truth.get("ch_names", [])]
    mask = np.asarray(truth["informative_channels_mask"], dtype=bool)
    score = np.asarray(truth.get("channel_score", mask.astype(float)), dtype=np.float64)
    if not names or len(names) != mask.size:
        raise ToolkitError("The ground truth lacks 'ch_names' matching 'informative_channels_mask'; reload it.")
    lookup = {c.lower(): i for i, c in enumerate(ch_names)}
    data_idx, truth_idx = [], []
    for ti, c in enumerate(names):
        if c.lower() in lookup:
            data_idx.append(lookup[c.lower()])
            truth_idx.append(ti)
    if len(data_idx) < 2:
        raise ToolkitError(
            "The data share fewer than 2 channels with the ground truth; pass the channel names of the simulated data."
        )
    return np.asarray(data_idx), mask[truth_idx], score[truth_idx]


def compare_with_ground_truth(
    attr: Any,
    truth: Mapping[str, Any],
    *,
    ch_names: Sequence[str],
    times: Any,
    signed: bool = False,
) -> dict[str, Any]:
    """Score attribution maps against the simulator's ground truth.

    Parameters
    ----------
    attr : array, shape (n_chans, n_times) or (n_trials, n_chans, n_times)
        Attribution maps of trials of the simulated data.
    truth : Mapping
        :func:`toolkit.data.load_ground_truth` of the simulated dataset.
    ch_names : sequence of str
        Channel names of the maps (matched to the truth by name; channels the truth lacks are ignored).
    times : array, shape (n_times,)
        Sample times of the maps in seconds (matched to the truth's samples by time).
    signed : bool
        Use signed values instead of magnitudes (magnitudes are the usual choice).

    Returns
    -------
    dict
        ``channel_auroc`` (ranking of informative channels), ``channel_spearman`` (against the truth's
        ``channel_score``), ``time_auroc`` (informative samples), ``time_spearman`` (against ``time_score``),
        ``peak_latency_s`` (of the maps), ``truth_peak_latency_s`` (of ``time_score``),
        ``nearest_component`` (the simulated component whose latency is closest to the peak, with its latency and
        the distance), ``n_channels`` and ``n_times`` compared.
    """
    from scipy.stats import spearmanr

    maps = as_maps(attr)
    times = check_times(times, maps.shape[2])
    if len(ch_names) != maps.shape[1]:
        raise ToolkitError(f"ch_names has {len(ch_names)} names but the maps have {maps.shape[1]} channels.")
    for key in ("informative_channels_mask", "time_score", "informative_samples_mask"):
        if key not in truth:
            raise ToolkitError(f"The ground truth lacks {key!r}; load it with toolkit.data.load_ground_truth(root).")
    data_idx, mask, score = _truth_channels(truth, [str(c) for c in ch_names])
    chan = channel_scores(maps, signed=signed)[data_idx]
    course = time_course(maps, signed=signed)
    # The truth's samples are 0 .. n-1 at `sfreq` from 0 s; match the maps' samples by time.
    sfreq = float(truth.get("sfreq", 250.0))
    t_score = np.asarray(truth["time_score"], dtype=np.float64)
    t_mask = np.asarray(truth["informative_samples_mask"], dtype=bool)
    truth_times = np.arange(t_score.size) / sfreq
    nearest = np.rint(times * sfreq).astype(np.int64)
    clipped = np.clip(nearest, 0, t_score.size - 1)
    ok = (nearest >= 0) & (nearest < t_score.size) & (np.abs(truth_times[clipped] - times) < 0.5 / sfreq)
    report: dict[str, Any] = {
        "channel_auroc": channel_auroc(chan, mask),
        "channel_spearman": float(spearmanr(chan, score).statistic),
        "n_channels": int(data_idx.size),
        "n_times": int(ok.sum()),
    }
    if ok.sum() >= 2:
        sel_mask = t_mask[nearest[ok]]
        report["time_auroc"] = (
            channel_auroc(course[ok], sel_mask) if 0 < sel_mask.sum() < sel_mask.size else None
        )
        report["time_spearman"] = float(spearmanr(course[ok], t_score[nearest[ok]]).statistic)
    peak = peak_latency(course if not signed else np.abs(course), times)
    report["peak_latency_s"] = peak
    report["truth_peak_latency_s"] = float(truth_times[int(np.argmax(t_score))])
    comps = truth.get("components") or []
    if comps:
        dist = [abs(float(c["latency_s"]) - peak) for c in comps]
        best = int(np.argmin(dist))
        report["nearest_component"] = {
            "name": comps[best].get("name"),
            "latency_s": float(comps[best]["latency_s"]),
            "distance_s": float(dist[best]),
        }
    return report


__all__ = ["channel_auroc", "compare_with_ground_truth", "peak_latency"]
