"""The whole reconstruction metric suite over (reconstruction, ground truth) pairs, and tables of results.

:func:`evaluate_reconstructions` loads both image sets once (float RGB in [0, 1], resized to 256 × 256), then
computes the requested metrics — PixCorr and SSIM (:mod:`toolkit.metrics.image`), two-way identification with
AlexNet(2), AlexNet(5), Inception and CLIP features, and the correlation distance of EffNet-B1 and SwAV features
(:mod:`toolkit.metrics.features`, :mod:`toolkit.metrics.identification`) — loading each network once, for all of
its layers, and releasing it before the next. :func:`to_frame` turns one or several results (of this function or
of :func:`toolkit.metrics.evaluate_captions`) into a table.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .features import DEFAULT_CLIP_MODEL, FEATURE_METRICS, NETWORKS, check_weights, load_network
from .identification import correlation_distance, two_way_identification
from .image import DEFAULT_IMAGE_SIZE, LOW_LEVEL_SIZE, load_pairs, pixcorr_from_tensors, ssim_from_tensors

logger = logging.getLogger(__name__)

#: Image metrics in the order of the papers' tables.
IMAGE_METRICS: tuple[str, ...] = ("pixcorr", "ssim", "alexnet2", "alexnet5", "inception", "clip", "effnet", "swav")

#: Caption metrics (see :func:`toolkit.metrics.evaluate_captions`).
CAPTION_METRICS: tuple[str, ...] = ("bleu1", "bleu4", "meteor", "rouge_l", "sentence", "clip_text", "clip_image")

#: Table label and direction of every metric.
METRIC_INFO: dict[str, tuple[str, bool]] = {
    "pixcorr": ("PixCorr", True),
    "ssim": ("SSIM", True),
    **{name: (spec.label, spec.higher_is_better) for name, spec in FEATURE_METRICS.items()},
    "bleu1": ("BLEU-1", True),
    "bleu4": ("BLEU-4", True),
    "meteor": ("METEOR", True),
    "rouge_l": ("ROUGE-L", True),
    "sentence": ("Sentence", True),
    "clip_text": ("CLIP text-text", True),
    "clip_image": ("CLIP text-image", True),
}


def evaluate_reconstructions(
    recons: Any,
    ground_truths: Any,
    *,
    metrics: Sequence[str] = IMAGE_METRICS,
    feature_weights: Any = "pretrained",
    clip_model: str = DEFAULT_CLIP_MODEL,
    device: str = "cpu",
    batch_size: int = 32,
    image_size: int = DEFAULT_IMAGE_SIZE,
    per_pair: bool = False,
) -> dict[str, Any]:
    """Compute the reconstruction metrics of MindEye / ATM over paired images.

    Parameters
    ----------
    recons : sequence | torch.Tensor | np.ndarray
        Reconstructions: PIL images, image paths, uint8 ``(H, W, C)`` arrays or float ``(C, H, W)`` tensors in
        [0, 1] (mixed sizes and modes are converted; see :func:`toolkit.metrics.image.load_images`).
    ground_truths : sequence | torch.Tensor | np.ndarray
        The ground-truth images, one per reconstruction, in the same order.
    metrics : sequence of str
        Any of :data:`IMAGE_METRICS` (default: all).
    feature_weights : str | os.PathLike | None | FeatureNetwork | dict
        Weights of the feature networks: one value for all of them or a dict ``{network: value}`` (networks
        ``alexnet``, ``inception``, ``clip``, ``effnet``, ``swav``; missing ones get ``"pretrained"``). A value is
        ``"pretrained"`` (the reference weights, from the local torch hub / Hugging Face cache; never
        downloaded), a weights file path, ``None`` (random weights), ``"tiny"`` (small random stand-ins) or a
        ready :class:`~toolkit.metrics.FeatureNetwork` (see :func:`~toolkit.metrics.load_network`).
    clip_model : str
        open_clip model of the CLIP metric (``"ViT-L-14"``: OpenAI CLIP ViT-L/14 with ``"pretrained"``).
    device : str
        Where the networks run (``"cpu"``, ``"cuda"``, ...).
    batch_size : int
        Images per forward pass.
    image_size : int
        Common size both sets are resized to first (256 in the reference notebook).
    per_pair : bool
        Also return every pair's value under ``"per_pair"`` (identification: the score of each reconstruction).

    Returns
    -------
    dict
        One float per requested metric under its name (higher is better except ``effnet`` and ``swav``), and
        ``n_pairs``, ``image_size``, ``random_weights`` (True if any network had random weights: such numbers
        are not comparable with published ones), ``weights`` (the weights used, per network), ``timings_s`` (per
        metric group) and, with ``per_pair``, ``per_pair``.

    Notes
    -----
    Both image sets are held in memory at 256 × 256 (0.8 MB per image), and so are the features of one network at
    a time: AlexNet's ``features.4`` is the largest, 0.74 MB per image.
    """
    wanted = _check_metrics(metrics, IMAGE_METRICS, "metrics")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ToolkitError(f"batch_size must be a positive integer, got {batch_size!r}.")
    weights_by_network = _weights_by_network(feature_weights)
    for network in {FEATURE_METRICS[m].network for m in wanted if m in FEATURE_METRICS}:
        check_weights(network, weights_by_network[network])  # a missing weights file fails before any work
    timings: dict[str, float] = {}
    start = time.perf_counter()
    rec, gt = load_pairs(recons, ground_truths, size=image_size)
    timings["load"] = time.perf_counter() - start
    n = rec.shape[0]
    ident = [m for m in wanted if m in FEATURE_METRICS and FEATURE_METRICS[m].kind == "identification"]
    if ident and n < 2:
        raise ToolkitError(
            f"Two-way identification ({', '.join(ident)}) needs at least 2 image pairs, got {n}; add pairs or "
            "leave those metrics out."
        )
    result: dict[str, Any] = {"n_pairs": int(n), "image_size": int(image_size)}
    pairs: dict[str, list[float]] = {}
    for name, fn in (("pixcorr", pixcorr_from_tensors), ("ssim", ssim_from_tensors)):
        if name in wanted:
            start = time.perf_counter()
            values = fn(rec, gt, resize=LOW_LEVEL_SIZE)
            finite = values[~np.isnan(values)]
            result[name] = float(finite.mean()) if finite.size else float("nan")
            pairs[name] = values.tolist()
            timings[name] = time.perf_counter() - start
    used_weights: dict[str, str] = {}
    random_flags: list[bool] = []
    for network in NETWORKS:
        specs = [FEATURE_METRICS[m] for m in wanted if m in FEATURE_METRICS and FEATURE_METRICS[m].network == network]
        if not specs:
            continue
        start = time.perf_counter()
        net = load_network(network, weights_by_network[network], device=device, clip_model=clip_model)
        layers = [spec.layer for spec in specs]
        gt_feats = net.extract(gt, layers, batch_size=batch_size)
        rec_feats = net.extract(rec, layers, batch_size=batch_size)
        used_weights[network] = net.weights
        random_flags.append(net.random_weights)
        if net.random_weights:
            logger.warning("The '%s' network has random weights: its metric values are stand-in numbers.", network)
        for spec in specs:
            g, r = gt_feats[spec.layer], rec_feats[spec.layer]
            if spec.kind == "identification":
                values = two_way_identification(g, r, per_item=True)
                result[spec.metric] = float(values.mean())
            else:
                values = correlation_distance(g, r, per_pair=True)
                finite = values[~np.isnan(values)]
                result[spec.metric] = float(finite.mean()) if finite.size else float("nan")
            pairs[spec.metric] = values.tolist()
        del net, gt_feats, rec_feats  # free this network (unless the caller holds it) before loading the next
        gc.collect()
        timings[network] = time.perf_counter() - start
    result["random_weights"] = any(random_flags)
    result["weights"] = used_weights
    result["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    if per_pair:
        result["per_pair"] = pairs
    ordered = {m: result[m] for m in IMAGE_METRICS if m in result}
    return {**ordered, **{k: v for k, v in result.items() if k not in ordered}}


def to_frame(results: Any, *, labels: bool = False) -> Any:
    """A table of metric results: one row per result, one column per metric, in the papers' order.

    Parameters
    ----------
    results : dict | mapping of str to dict | sequence of dict
        One result of :func:`evaluate_reconstructions` / :func:`~toolkit.metrics.evaluate_captions`, several
        keyed by a row name (``{"ATM": res, "NICE": res2}``), or a list of them.
    labels : bool
        Use table labels with the direction (``"AlexNet(2) ↑"``, ``"SwAV ↓"``) instead of the metric names.

    Returns
    -------
    pandas.DataFrame
        The metrics, plus a ``random_weights`` column when any result reports it.
    """
    import pandas as pd

    if isinstance(results, Mapping) and _is_result(results):
        rows = {0: results}
    elif isinstance(results, Mapping):
        rows = dict(results)
    elif isinstance(results, Sequence) and not isinstance(results, (str, bytes)):
        rows = dict(enumerate(results))
    else:
        raise ToolkitError(
            f"to_frame needs a result dict, a dict of results or a list of results, not {type(results).__name__}."
        )
    if not rows:
        raise ToolkitError("to_frame got no results; pass at least one.")
    for key, row in rows.items():
        if not isinstance(row, Mapping) or not _is_result(row):
            raise ToolkitError(
                f"Row {key!r} is not a metrics result (no known metric in it); pass results of "
                "evaluate_reconstructions or evaluate_captions."
            )
    columns = [m for m in METRIC_INFO if any(m in row for row in rows.values())]
    table = pd.DataFrame(
        [[row.get(m, np.nan) for m in columns] for row in rows.values()], index=list(rows), columns=columns
    )
    if any("random_weights" in row for row in rows.values()):
        table["random_weights"] = [bool(row.get("random_weights", False)) for row in rows.values()]
    if labels:
        table = table.rename(columns={m: f"{METRIC_INFO[m][0]} {'↑' if METRIC_INFO[m][1] else '↓'}" for m in columns})
    return table


def per_pair_frame(result: Mapping[str, Any]) -> Any:
    """Per-pair values of one result computed with ``per_pair=True``, as a table (one row per pair).

    Parameters
    ----------
    result : dict
        A result of :func:`evaluate_reconstructions` or :func:`~toolkit.metrics.evaluate_captions` with
        ``per_pair``.

    Returns
    -------
    pandas.DataFrame
        One row per pair, one column per metric.
    """
    import pandas as pd

    if not isinstance(result, Mapping) or "per_pair" not in result:
        raise ToolkitError("This result has no per-pair values; compute it with per_pair=True.")
    pairs = result["per_pair"]
    return pd.DataFrame({m: pairs[m] for m in METRIC_INFO if m in pairs})


# ================================================================================================ helpers
def _is_result(obj: Mapping[str, Any]) -> bool:
    return any(m in obj for m in METRIC_INFO)


def _check_metrics(metrics: Any, known: Sequence[str], argument: str) -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    try:
        names = list(dict.fromkeys(metrics))
    except TypeError:
        raise ToolkitError(f"'{argument}' must be a list of metric names; known: {', '.join(known)}.") from None
    if not names:
        raise ToolkitError(f"'{argument}' is empty; pass at least one of: {', '.join(known)}.")
    unknown = [m for m in names if m not in known]
    if unknown:
        raise ToolkitError(f"Unknown metric(s) {', '.join(map(repr, unknown))}; known metrics: {', '.join(known)}.")
    return names


def _weights_by_network(feature_weights: Any) -> dict[str, Any]:
    """One weights value per network (dict values, or the single value for every network)."""
    if isinstance(feature_weights, Mapping):
        unknown = [k for k in feature_weights if k not in NETWORKS]
        if unknown:
            hints = {m: s.network for m, s in FEATURE_METRICS.items() if m in unknown}
            hint = "".join(f" (for '{m}' use '{net}')" for m, net in hints.items())
            raise ToolkitError(
                f"Unknown network(s) {', '.join(map(repr, unknown))} in feature_weights{hint}; its keys are network "
                f"names: {', '.join(NETWORKS)}."
            )
        return {net: feature_weights.get(net, "pretrained") for net in NETWORKS}
    return dict.fromkeys(NETWORKS, feature_weights)
