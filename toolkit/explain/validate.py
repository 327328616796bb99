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


def _truth_samples(truth: Mapping[str, Any], times: np.ndarray, n_truth: int) -> tuple[np.ndarray, np.ndarray]:
    """For the data's ``times``: which samples exist in the truth (mask) and their truth indices."""
    sfreq = float(truth.get("sfreq", 250.0))
    nearest = np.rint(times * sfreq).astype(np.int64)
    clipped = np.clip(nearest, 0, n_truth - 1)
    ok = (nearest >= 0) & (nearest < n_truth) & (np.abs(clipped / sfreq - times) < 0.5 / sfreq)
    return ok, clipped


def information_shares(
    truth: Mapping[str, Any],
    *,
    ch_names: Sequence[str],
    times: Any,
    windows: Sequence[Sequence[float]] = (),
    groups: Mapping[str, Sequence[str]] | None = None,
    feature_weights: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Share of the simulator's image information inside time windows and channel groups.

    The information is the ground truth's ``information`` map: the variance across images of the noise-free
    response, per channel and sample (``(63, 250)``, data units squared). The share of a window is its sum over the
    window's samples (all channels) divided by the sum over the data's samples; the share of a group is its sum over
    the group's channels (all samples) divided by the sum over the data's channels. Variances of different channels
    and samples add, so the shares of disjoint windows (groups) add up; they say where the information lies, not
    how much of it a decoder restricted to the window can recover (channels carrying the same source are
    redundant), so compare rankings, not values.

    With ``feature_weights`` the map is the information about what a decoder is asked to recover instead: the
    simulator's per-feature-group maps (``group_information``: the response's variance with only that group of
    image features varying), each normalised to a total of 1 and weighted by how much the decoding target depends
    on the group (e.g. the group's share of the variance of the target embeddings). A window that holds little of
    the EEG's variance but most of a heavily weighted group's (the P300 tail carrying the per-concept dimensions)
    then counts as informative.

    Parameters
    ----------
    truth : Mapping
        :func:`toolkit.data.load_ground_truth` of the simulated dataset (needs ``information``, ``ch_names``).
    ch_names : sequence of str
        Channel names of the data (matched to the truth by name).
    times : array, shape (n_times,)
        Sample times of the data in seconds (matched to the truth's samples by time).
    windows : sequence of (float, float)
        Half-open windows ``[tmin, tmax)`` in seconds.
    groups : Mapping | None
        Channel groups (``None``: ATM's regions, as :func:`~toolkit.explain.resolve_groups`).
    feature_weights : Mapping of str to float | None
        Weight of each feature group of the truth (``truth["features"]["groups"]``: shape, colour, texture, size,
        x, y, concept); groups left out weigh 0. ``None``: the plain ``information`` map.

    Returns
    -------
    dict
        ``windows``: list of ``{"window_s", "label", "share"}``; ``groups``: ``{name: share}``.
    """
    from .aggregate import resolve_groups, window_indices, window_label

    if "information" not in truth:
        raise ToolkitError("The ground truth lacks 'information'; load it with toolkit.data.load_ground_truth(root).")
    info = np.asarray(truth["information"], dtype=np.float64)
    if feature_weights is not None:
        info = _weighted_information(truth, feature_weights)
    names = [str(c) for c in ch_names]
    times = check_times(times)
    truth_names = {str(c).lower(): i for i, c in enumerate(truth.get("ch_names", []))}
    if len(truth_names) != info.shape[0]:
        raise ToolkitError("The ground truth lacks 'ch_names' matching 'information'; reload it.")
    rows = np.array([truth_names.get(c.lower(), -1) for c in names])
    ok, samples = _truth_samples(truth, times, info.shape[1])
    # The information of the data's channels (rows) and samples (columns); channels/samples the truth lacks hold 0.
    sub = np.where((rows >= 0)[:, None] & ok[None, :], info[np.clip(rows, 0, None)][:, samples], 0.0)
    total = sub.sum()
    if not total > 0:
        raise ToolkitError("The data's channels and samples hold none of the ground truth's information.")
    out_windows = []
    for w in windows:
        idx = window_indices(times, w)
        out_windows.append({"window_s": [float(w[0]), float(w[1])], "label": window_label(w),
                            "share": float(sub[:, idx].sum() / total)})
    out_groups = {name: float(sub[idx].sum() / total) for name, idx in resolve_groups(names, groups).items()}
    return {"windows": out_windows, "groups": out_groups}


def _weighted_information(truth: Mapping[str, Any], weights: Mapping[str, float]) -> np.ndarray:
    """``sum_g w_g * I_g / sum(I_g)`` over the truth's feature groups (see :func:`information_shares`)."""
    names = list((truth.get("features") or {}).get("groups") or {})
    if "group_information" not in truth or not names:
        raise ToolkitError(
            "The ground truth lacks 'group_information' or its feature groups; load it with "
            "toolkit.data.load_ground_truth(root)."
        )
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ToolkitError(f"feature_weights names unknown feature group(s) {unknown}; the truth has {names}.")
    values = {name: float(w) for name, w in weights.items()}
    if any(not np.isfinite(w) or w < 0 for w in values.values()) or not sum(values.values()) > 0:
        raise ToolkitError(f"feature_weights must be finite, non-negative and not all 0; got {values}.")
    per_group = np.asarray(truth["group_information"], dtype=np.float64)
    out = np.zeros(per_group.shape[1:])
    for gi, name in enumerate(names):
        total = per_group[gi].sum()
        if values.get(name, 0.0) > 0 and total > 0:
            out += values[name] * per_group[gi] / total
    return out


def _row_metric(row: Mapping[str, Any], metric: str) -> float | None:
    """``metric`` of an ablation row (top level) or a retraining row (under ``metrics``, ``test_`` prefixed)."""
    if metric.endswith("-way"):
        k = metric[: -len("-way")]
        kway = row.get("kway") or (row.get("metrics") or {}).get("kway_top1") or {}
        value = kway.get(k, kway.get(int(k)) if k.isdigit() else None) if isinstance(kway, Mapping) else None
        if isinstance(value, Mapping):  # test-time ablation rows: {k: {"top1": .., "top5": ..}}
            value = value.get("top1")
        return None if value is None else float(value)
    if metric in row:
        return float(row[metric])
    metrics = row.get("metrics") or {}
    value = metrics.get(metric, metrics.get(f"test_{metric}"))
    return None if value is None else float(value)


def compare_conditions_with_ground_truth(
    rows: Sequence[Mapping[str, Any]],
    truth: Mapping[str, Any],
    *,
    ch_names: Sequence[str],
    times: Any,
    metric: str = "top1",
    groups: Mapping[str, Sequence[str]] | None = None,
    feature_weights: Mapping[str, float] | None = None,
    informative_share: float = 0.1,
    uninformative_share: float = 0.01,
) -> dict[str, Any]:
    """Score window/region analyses (test-time ablation or retraining) against the simulator's ground truth.

    For every analysis of ``rows`` — ``"sliding"`` / ``"windows"`` windows, ``"region_keep"`` regions — the
    condition with the best ``metric`` is compared with the one holding the largest share of the image information
    (:func:`information_shares`); the Spearman correlation between metric and share is computed over the
    conditions, and the conditions holding at least ``informative_share`` of the information are compared with
    those holding less than ``uninformative_share``. (``"growing"`` windows and ``"region_drop"`` are listed, not
    scored: their shares grow with the window and shrink with the dropped region by construction.)

    Without ``feature_weights`` the shares measure where the simulated response varies across images, not how much
    of the decoding target a model can read there (the target may weigh the image features differently from the
    EEG); pass the target's weights of the feature groups to score against the target-relevant information. Even
    then, neighbouring informative conditions are often within the noise of a small test set, so the clear-cut
    checks are that the best condition is an informative one and that informative conditions beat uninformative
    ones.

    Parameters
    ----------
    rows : sequence of dict
        :attr:`AblationResult.rows <toolkit.explain.AblationResult>` or the ``rows`` of a
        :func:`~toolkit.explain.retrain_analysis` summary.
    truth : Mapping
        :func:`toolkit.data.load_ground_truth` of the simulated dataset.
    ch_names : sequence of str
        Channel names of the full data (before any region selection).
    times : array, shape (n_times,)
        Sample times of the full data in seconds.
    metric : str
        ``"top1"``, ``"top5"`` (full gallery; ``test_top1`` etc. in retraining rows) or ``"<k>-way"`` (exact k-way
        top-1, e.g. ``"2-way"``: the smoothest measure for small test sets).
    groups : Mapping | None
        The channel groups the regions came from (``None``: ATM's regions).
    feature_weights : Mapping of str to float | None
        Weigh the information by what the decoding target depends on (see :func:`information_shares`).
    informative_share, uninformative_share : float
        Conditions holding at least / less than this share of the information count as informative /
        uninformative.

    Returns
    -------
    dict
        Per analysis: ``rows`` (label, ``window_s`` / ``region``, ``value`` of the metric, information ``share``),
        ``best`` (label of the best condition), ``best_share``, ``truth_best`` (label of the most informative one),
        ``match``, ``best_share_rank`` (1 = the best condition is the most informative one), ``spearman``,
        ``best_is_informative``, ``best_margin`` (the best condition's value minus the best uninformative one's) and
        ``separation`` (the worst informative condition's value minus the best uninformative one's: positive when
        every informative condition beats every uninformative one); both ``None`` without uninformative (and
        informative) conditions; plus ``metric`` and ``region_shares``.
    """
    from scipy.stats import spearmanr

    windows = [r["window_s"] for r in rows if r.get("window_s") is not None and r.get("analysis") != "full"]
    shares = information_shares(truth, ch_names=ch_names, times=times, windows=windows, groups=groups,
                                feature_weights=feature_weights)
    window_share = {tuple(round(v, 9) for v in w["window_s"]): w["share"] for w in shares["windows"]}
    report: dict[str, Any] = {"metric": metric, "region_shares": shares["groups"]}
    for analysis in dict.fromkeys(r.get("analysis") for r in rows):
        if analysis in (None, "full"):
            continue
        table = []
        for r in rows:
            if r.get("analysis") != analysis:
                continue
            value = _row_metric(r, metric)
            if r.get("window_s") is not None:
                share = window_share[tuple(round(float(v), 9) for v in r["window_s"])]
            else:
                share = shares["groups"].get(str(r.get("region")))
                if share is not None and analysis == "region_drop":
                    share = 1.0 - share
            item = {"label": r.get("label"), "value": value, "share": share}
            item.update({k: r[k] for k in ("window_s", "region") if r.get(k) is not None})
            table.append(item)
        entry: dict[str, Any] = {"rows": table}
        scored = [t for t in table if t["value"] is not None and t["share"] is not None]
        if analysis in ("sliding", "windows", "region_keep") and len(scored) >= 2:
            best = max(scored, key=lambda t: t["value"])
            truth_best = max(scored, key=lambda t: t["share"])
            by_share = sorted(scored, key=lambda t: -t["share"])
            informative = [t["value"] for t in scored if t["share"] >= informative_share]
            uninformative = [t["value"] for t in scored if t["share"] < uninformative_share]
            entry.update(
                best=best["label"], best_share=best["share"], truth_best=truth_best["label"],
                match=best is truth_best, best_share_rank=1 + by_share.index(best),
                spearman=float(spearmanr([t["value"] for t in scored], [t["share"] for t in scored]).statistic),
                best_is_informative=bool(best["share"] >= informative_share),
                best_margin=float(best["value"] - max(uninformative)) if uninformative else None,
                separation=float(min(informative) - max(uninformative)) if informative and uninformative else None,
            )
        report[analysis] = entry
    return report


__all__ = [
    "channel_auroc",
    "compare_conditions_with_ground_truth",
    "compare_with_ground_truth",
    "information_shares",
    "peak_latency",
]
