"""Temporal and spatial analyses as in ATM (§11 of the reference sheet): what retrieval accuracy is left when only part
of the signal is available.

Two modes:

- **Test-time ablation** (:func:`ablate`, :func:`ablate_windows`, :func:`ablate_regions`) — fast: one trained model,
  the removed part of every trial replaced by a baseline (zeros, or the mean trial over the evaluated trials, which
  keeps the average response but removes everything trial-specific). Windows: ATM's growing windows ``[0, t)`` and
  sliding 100 ms windows ``[t - 100 ms, t)`` (samples outside the window are replaced); regions: keep only one
  region / drop one region (channels outside / inside it are replaced). Every condition reports zero-shot
  retrieval through :mod:`toolkit.retrieval`: full-gallery top-1 / top-5 and the exact expected k-way accuracy.
  A model never trained on ablated inputs may fail on them for reasons unrelated to information content (their
  statistics shift), so these numbers bound the information *the trained model uses*.
- **Retraining per window / region** (:func:`retrain_analysis`) — ATM's own protocol: one model trained and
  evaluated per window (the samples cropped) or region (the channels selected). Long; each condition's result is
  written atomically to its own JSON file and conditions already done are skipped, so an interrupted run resumes.
  ``python -m toolkit explain retrain`` drives it with the common trainer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .aggregate import (
    check_times,
    growing_windows,
    resolve_groups,
    sliding_windows,
    window_indices,
    window_label,
)

logger = logging.getLogger(__name__)

ANALYSES: tuple[str, ...] = ("growing", "sliding", "region_keep", "region_drop")
"""Analyses run by :func:`ablate` (and :func:`retrain_analysis`); ``"full"`` (nothing removed) is always added."""

ABLATION_BASELINES: tuple[str, ...] = ("mean", "zeros")


@dataclass(frozen=True)
class Condition:
    """One ablation condition: which samples and channels are kept.

    Attributes
    ----------
    analysis : str
        ``"full"``, ``"growing"``, ``"sliding"``, ``"region_keep"`` or ``"region_drop"``.
    label : str
        Human-readable name (``"0–200 ms"``, ``"occipital"``).
    samples : np.ndarray of int64
        Kept sample indices.
    channels : np.ndarray of int64
        Kept channel indices.
    window_s : tuple of float | None
        ``(tmin, tmax)`` of a window condition.
    region : str | None
        Region of a region condition.
    """

    analysis: str
    label: str
    samples: np.ndarray
    channels: np.ndarray
    window_s: tuple[float, float] | None = None
    region: str | None = None

    @property
    def key(self) -> str:
        """File-name-safe identifier (``"growing_0-200ms"``, ``"region_keep_occipital"``)."""
        if self.window_s is not None:
            detail = f"{self.window_s[0] * 1000:g}-{self.window_s[1] * 1000:g}ms"
        else:
            detail = self.region or "all"
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{self.analysis}_{detail}")

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description."""
        out: dict[str, Any] = {"analysis": self.analysis, "label": self.label, "key": self.key}
        if self.window_s is not None:
            out["window_s"] = [float(self.window_s[0]), float(self.window_s[1])]
        if self.region is not None:
            out["region"] = self.region
        out["n_samples"] = int(self.samples.size)
        out["n_channels"] = int(self.channels.size)
        return out


def build_conditions(
    ch_names: Sequence[str],
    times: Any,
    *,
    analyses: Sequence[str] = ANALYSES,
    growing_ends: Sequence[float] | None = None,
    sliding_width: float = 0.1,
    sliding_step: float | None = None,
    windows: Sequence[Sequence[float]] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[Condition]:
    """The conditions of the temporal and spatial analyses, starting with ``"full"``.

    Parameters
    ----------
    ch_names : sequence of str
        Channel names of the data.
    times : array, shape (n_times,)
        Sample times in seconds.
    analyses : sequence of str
        Any of :data:`ANALYSES`, plus ``"windows"`` for the custom ``windows``.
    growing_ends : sequence of float | None
        Ends of the growing windows (``None``: ATM's ends within the epoch).
    sliding_width, sliding_step : float
        Sliding windows ``[t - width, t)``, ends ``step`` apart (``None``: adjacent windows).
    windows : sequence of (float, float) | None
        Custom windows for the ``"windows"`` analysis.
    groups : Mapping | None
        Channel groups (``None``: ATM's five regions).

    Returns
    -------
    list of Condition
        ``full`` first, then each analysis in order.
    """
    names = [str(c) for c in ch_names]
    times = check_times(times)
    if isinstance(analyses, str):
        raise ToolkitError(f"analyses must be a list of names, e.g. ['growing', 'sliding']; got {analyses!r}.")
    unknown = [a for a in analyses if a not in (*ANALYSES, "windows")]
    if unknown:
        raise ToolkitError(f"Unknown analysis {unknown[0]!r}; known: {', '.join((*ANALYSES, 'windows'))}.")
    all_samples = np.arange(times.size, dtype=np.int64)
    all_channels = np.arange(len(names), dtype=np.int64)
    out = [Condition("full", "all channels, whole epoch", all_samples, all_channels)]
    for analysis in analyses:
        if analysis in ("growing", "sliding", "windows"):
            if analysis == "growing":
                wins = growing_windows(times, growing_ends)
            elif analysis == "sliding":
                wins = sliding_windows(times, width=sliding_width, step=sliding_step)
            else:
                if windows is None:
                    raise ToolkitError("The 'windows' analysis needs windows=[(tmin, tmax), ...] in seconds.")
                wins = [tuple(float(v) for v in w) for w in windows]
            for w in wins:
                out.append(
                    Condition(analysis, window_label(w), window_indices(times, w), all_channels, window_s=tuple(w))
                )
        else:
            resolved = resolve_groups(names, groups)
            for region, idx in resolved.items():
                if analysis == "region_keep":
                    kept, label = idx, f"only {region}"
                else:
                    kept, label = np.setdiff1d(all_channels, idx), f"without {region}"
                if kept.size == 0:
                    continue
                out.append(Condition(analysis, label, all_samples, np.asarray(kept, dtype=np.int64), region=region))
    return out


# ------------------------------------------------------------------------------------------------ results
@dataclass
class AblationResult:
    """Retrieval accuracy per ablation condition.

    Attributes
    ----------
    rows : list of dict
        One per condition: its description (``analysis``, ``label``, ``window_s`` / ``region``, sizes) and
        ``top1``, ``top5`` (full gallery), ``kway`` (``{k: {"top1": .., "top5": ..}}``, exact expectation),
        ``mean_rank`` (1 = best).
    gallery_size, n_trials : int
        Retrieval setting.
    normalize : bool
        Cosine (``True``) or dot-product scores.
    baseline : str
        What replaced the removed signal.
    chance : dict
        Chance level of each reported number.
    """

    rows: list[dict]
    gallery_size: int
    n_trials: int
    normalize: bool
    baseline: str
    chance: dict = field(default_factory=dict)

    def select(self, analysis: str) -> list[dict]:
        """The rows of one analysis (``"growing"``, ``"region_keep"``, ...)."""
        return [r for r in self.rows if r["analysis"] == analysis]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "gallery_size": self.gallery_size,
            "n_trials": self.n_trials,
            "normalize": self.normalize,
            "baseline": self.baseline,
            "chance": self.chance,
            "rows": self.rows,
        }

    def table(self) -> Any:
        """A :class:`pandas.DataFrame`, one row per condition (k-way columns flattened)."""
        import pandas as pd

        flat = []
        for r in self.rows:
            row = {k: v for k, v in r.items() if k != "kway"}
            for k, tops in r.get("kway", {}).items():
                for m, v in tops.items():
                    row[f"{k}way_{m}"] = v
            flat.append(row)
        return pd.DataFrame(flat)


def _embed_batch(model: Any, x: Any, subject_ids: Any) -> np.ndarray:
    import torch

    if hasattr(model, "encode"):
        out = model.encode(x, subject_ids, batch_size=max(1, int(x.shape[0])), normalize=False)
    else:
        with torch.inference_mode():
            out = model(x) if subject_ids is None else model(x, subject_ids)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ToolkitError(
            "The model must return embeddings (batch, embed_dim) as a torch.Tensor for the ablation analysis."
        )
    return out.detach().to("cpu", torch.float32).numpy()


def _check_baseline(baseline: Any, eeg: Any, batch_size: int) -> tuple[str, np.ndarray]:
    n_chans, n_times = int(eeg.shape[1]), int(eeg.shape[2])
    if isinstance(baseline, str):
        if baseline == "zeros":
            return "zeros", np.zeros((n_chans, n_times), dtype=np.float32)
        if baseline == "mean":
            from .aggregate import _mean_trial

            return "mean", _mean_trial(eeg, batch_size)
        raise ToolkitError(
            f"Unknown ablation baseline {baseline!r}; use {', '.join(ABLATION_BASELINES)} or an array "
            f"({n_chans}, {n_times})."
        )
    arr = np.asarray(baseline, dtype=np.float32)
    if arr.shape != (n_chans, n_times) or not np.isfinite(arr).all():
        raise ToolkitError(
            f"The ablation baseline must be 'mean', 'zeros' or a finite array ({n_chans}, {n_times}); got shape "
            f"{arr.shape}."
        )
    return "custom", arr


def evaluate_conditions(
    model: Any,
    eeg: Any,
    image_embeds: Any,
    conditions: Sequence[Condition],
    *,
    normalize: bool,
    index: Any = None,
    subject_ids: Any = None,
    baseline: str | np.ndarray = "mean",
    ks: Sequence[int] | None = None,
    batch_size: int = 200,
    progress: bool = True,
) -> AblationResult:
    """Retrieval accuracy of ``model`` on ``eeg`` under each ablation condition.

    Parameters
    ----------
    model : EEGEncoder | torch.nn.Module
        The trained encoder (evaluated in eval mode without gradients).
    eeg : array, shape (n_trials, n_chans, n_times)
        The trials (e.g. the 200 averaged test trials); a memory map is read once, batch by batch.
    image_embeds : array, shape (gallery_size, embed_dim)
        The retrieval gallery.
    conditions : sequence of Condition
        From :func:`build_conditions`.
    normalize : bool
        Cosine (``True``) or dot-product scores; no default.
    index : array of int, shape (n_trials,) | None
        Gallery row of each trial's true image (``None``: trial ``i`` ↔ row ``i``).
    subject_ids : array of int, shape (n_trials,) | int | None
        Subject indices for the model.
    baseline : "mean" | "zeros" | array (n_chans, n_times)
        What replaces the removed samples/channels: the mean trial over ``eeg``, zeros, or a given array.
    ks : sequence of int | None
        k values of the exact k-way accuracies (``None``: ATM's 2, 4, 10, 50, 100, 200 up to the gallery size).
    batch_size : int
        Trials per forward pass.
    progress : bool
        Show a progress bar.

    Returns
    -------
    AblationResult
        One row per condition.
    """
    import torch

    from ..retrieval import STANDARD_KS, kway_exact, ranks
    from ..utils import progress as progress_bar

    if not isinstance(normalize, (bool, np.bool_)):
        raise ToolkitError(f"normalize must be True (cosine) or False (dot product); got {normalize!r}.")
    if not hasattr(eeg, "shape") or len(eeg.shape) != 3:
        raise ToolkitError("eeg must be a 3-D array (n_trials, n_chans, n_times).")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ToolkitError(f"batch_size must be a positive integer; got {batch_size!r}.")
    n_trials, n_chans, n_times = (int(s) for s in eeg.shape)
    gallery = np.asarray(image_embeds, dtype=np.float32)
    if gallery.ndim != 2 or gallery.shape[0] < 2:
        raise ToolkitError(f"image_embeds must be (gallery_size >= 2, embed_dim); got shape {gallery.shape}.")
    n_gallery = gallery.shape[0]
    if index is None:
        if n_trials != n_gallery:
            raise ToolkitError(
                f"index=None means trial i matches gallery row i, but there are {n_trials} trials and {n_gallery} "
                "gallery rows; pass index= (the true gallery row of each trial)."
            )
        index = np.arange(n_trials)
    index = np.asarray(index)
    if index.shape != (n_trials,) or index.dtype.kind not in "iu":
        raise ToolkitError(f"index must hold one integer per trial ({n_trials},); got {index.dtype} {index.shape}.")
    for c in conditions:
        if c.samples.size and (c.samples.max() >= n_times or c.channels.max(initial=-1) >= n_chans):
            raise ToolkitError(f"Condition {c.label!r} does not fit data of {n_chans} channels x {n_times} samples.")
    ids = None
    if subject_ids is not None:
        ids = np.asarray(subject_ids)
        ids = np.full(n_trials, int(ids)) if ids.ndim == 0 else ids
        if ids.shape != (n_trials,):
            raise ToolkitError(f"subject_ids must be one integer or one per trial ({n_trials},).")
    ks = tuple(k for k in STANDARD_KS if k <= n_gallery) if ks is None else tuple(int(k) for k in ks)
    bad_k = [k for k in ks if not 2 <= k <= n_gallery]
    if bad_k:
        raise ToolkitError(f"ks must lie between 2 and the gallery size {n_gallery}; got {bad_k}.")
    kind, base = _check_baseline(baseline, eeg, batch_size)
    keep_masks = []
    for c in conditions:
        keep = np.zeros((n_chans, n_times), dtype=bool)
        keep[np.ix_(c.channels, c.samples)] = True
        keep_masks.append(torch.as_tensor(keep))
    base_t = torch.as_tensor(base)
    all_ranks = [np.empty(n_trials, dtype=np.int64) for _ in conditions]
    ref = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    bar = progress_bar(total=n_trials * len(conditions), desc="ablation", disable=None if progress else True)
    try:
        for start in range(0, n_trials, int(batch_size)):
            stop = min(start + int(batch_size), n_trials)
            x = torch.as_tensor(np.asarray(eeg[start:stop], dtype=np.float32))
            batch_ids = None if ids is None else torch.as_tensor(ids[start:stop].astype(np.int64))
            for ci, keep in enumerate(keep_masks):
                xa = torch.where(keep, x, base_t)
                if ref is not None:
                    xa = xa.to(device=ref.device, dtype=ref.dtype)
                    batch_ids = None if batch_ids is None else batch_ids.to(ref.device)
                emb = _embed_batch(model, xa, batch_ids)
                all_ranks[ci][start:stop] = ranks(emb, gallery, index[start:stop], normalize=bool(normalize))
                bar.update(stop - start)
    finally:
        bar.close()
    rows = []
    for c, r in zip(conditions, all_ranks):
        row = c.describe()
        row["top1"] = float(np.mean(r < 1))
        if n_gallery > 5:
            row["top5"] = float(np.mean(r < 5))
        row["mean_rank"] = float(np.mean(r + 1))
        row["kway"] = {
            str(k): {f"top{m}": float(kway_exact(r, n_gallery, k=k, top=m).mean()) for m in (1, 5) if m < k}
            for k in ks
        }
        rows.append(row)
    chance = {"top1": 1.0 / n_gallery, **({"top5": 5.0 / n_gallery} if n_gallery > 5 else {})}
    chance["kway"] = {str(k): {f"top{m}": m / k for m in (1, 5) if m < k} for k in ks}
    return AblationResult(
        rows=rows, gallery_size=n_gallery, n_trials=n_trials, normalize=bool(normalize), baseline=kind, chance=chance
    )


def ablate(
    model: Any,
    eeg: Any,
    image_embeds: Any,
    *,
    normalize: bool,
    times: Any,
    ch_names: Sequence[str],
    index: Any = None,
    subject_ids: Any = None,
    analyses: Sequence[str] = ANALYSES,
    growing_ends: Sequence[float] | None = None,
    sliding_width: float = 0.1,
    sliding_step: float | None = None,
    windows: Sequence[Sequence[float]] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    baseline: str | np.ndarray = "mean",
    ks: Sequence[int] | None = None,
    batch_size: int = 200,
    progress: bool = True,
) -> AblationResult:
    """ATM's temporal and spatial analyses at test time: retrieval accuracy with parts of the signal removed.

    Parameters
    ----------
    model : EEGEncoder | torch.nn.Module
        Trained encoder.
    eeg : array, shape (n_trials, n_chans, n_times)
        Trials.
    image_embeds : array, shape (gallery_size, embed_dim)
        Gallery.
    normalize : bool
        Cosine (``True``) or dot-product scores.
    times : array, shape (n_times,)
        Sample times in seconds.
    ch_names : sequence of str
        Channel names.
    index, subject_ids, baseline, ks, batch_size, progress
        See :func:`evaluate_conditions`.
    analyses, growing_ends, sliding_width, sliding_step, windows, groups
        See :func:`build_conditions`.

    Returns
    -------
    AblationResult
        Rows for ``"full"`` and every condition of every analysis.
    """
    if not hasattr(eeg, "shape") or len(eeg.shape) != 3:
        raise ToolkitError("eeg must be a 3-D array (n_trials, n_chans, n_times).")
    times = check_times(times, int(eeg.shape[2]))
    if len(ch_names) != int(eeg.shape[1]):
        raise ToolkitError(f"ch_names has {len(ch_names)} names but eeg has {eeg.shape[1]} channels.")
    conditions = build_conditions(
        ch_names, times, analyses=analyses, growing_ends=growing_ends, sliding_width=sliding_width,
        sliding_step=sliding_step, windows=windows, groups=groups,
    )
    return evaluate_conditions(
        model, eeg, image_embeds, conditions, normalize=normalize, index=index, subject_ids=subject_ids,
        baseline=baseline, ks=ks, batch_size=batch_size, progress=progress,
    )


def ablate_windows(model: Any, eeg: Any, image_embeds: Any, **kwargs: Any) -> AblationResult:
    """:func:`ablate` with the temporal analyses only (growing and sliding windows)."""
    kwargs.setdefault("analyses", ("growing", "sliding"))
    return ablate(model, eeg, image_embeds, **kwargs)


def ablate_regions(model: Any, eeg: Any, image_embeds: Any, **kwargs: Any) -> AblationResult:
    """:func:`ablate` with the spatial analyses only (keep one region, drop one region)."""
    kwargs.setdefault("analyses", ("region_keep", "region_drop"))
    return ablate(model, eeg, image_embeds, **kwargs)


# ------------------------------------------------------------------------------------------ retraining mode
def scaled_tsconv_kernels(n_features: int) -> dict[str, int]:
    """TSConv kernel sizes for short inputs (ATM's per-window models shrink them; ATM.md §11.1).

    The reference geometry (temporal kernel 25, average pool 51, stride 5) needs at least 75 samples. Shorter
    inputs get ``temporal_kernel = max(2, n // 5)`` and ``pool_kernel = round(0.68 n)`` — for 25 samples, ATM's
    own (5, 17) — and the pool stride is kept at 5 or the largest that still gives one position.

    Parameters
    ----------
    n_features : int
        Samples (NICE) or token width (ATM-S) of the TSConv input.

    Returns
    -------
    dict
        ``temporal_kernel``, ``pool_kernel``, ``pool_stride`` (empty when the defaults fit).
    """
    n = int(n_features)
    if n >= 75:
        return {}
    if n < 3:
        raise ToolkitError(f"A window of {n} samples is too short to train an encoder on; use at least 3 samples.")
    temporal = max(2, min(25, n // 5))
    pool = max(1, min(51, round(0.68 * n), n - temporal + 1))
    return {"temporal_kernel": temporal, "pool_kernel": pool, "pool_stride": 5}


def condition_done(out_dir: str | Path, condition: Condition) -> bool:
    """Whether the retraining result of ``condition`` exists in ``out_dir`` (it is then skipped)."""
    path = Path(out_dir) / f"{condition.key}.json"
    if not path.is_file():
        return False
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")).get("metrics"), dict)
    except (OSError, ValueError, AttributeError):
        logger.warning("%s cannot be read; the condition will be run again.", path)
        return False


def retrain_analysis(
    out_dir: str | Path,
    conditions: Sequence[Condition],
    train_and_evaluate: Callable[[Condition], dict],
    *,
    overwrite: bool = False,
    progress: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one model per condition, resumably.

    Parameters
    ----------
    out_dir : str | Path
        Folder for the results: ``<condition.key>.json`` per condition (written atomically when it finishes) and
        ``summary.json`` (rewritten after each condition).
    conditions : sequence of Condition
        From :func:`build_conditions`.
    train_and_evaluate : callable
        ``train_and_evaluate(condition) -> dict`` of metrics (e.g. ``{"top1": .., "top5": ..}``): trains a model on
        the kept samples/channels and evaluates it.
    overwrite : bool
        Run conditions again even when their result exists.
    progress : bool
        Show a progress bar over conditions.
    metadata : Mapping | None
        Recorded in the summary (model, data, settings).

    Returns
    -------
    dict
        The summary: ``metadata``, ``rows`` (condition description + ``metrics``), ``skipped`` and ``ran``.
    """
    from ..utils import atomic_write_json
    from ..utils import progress as progress_bar

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ToolkitError(f"--out '{out}' is a file; retraining results need a folder.")
    out.mkdir(parents=True, exist_ok=True)
    keys = [c.key for c in conditions]
    if len(set(keys)) != len(keys):
        raise ToolkitError("Two retraining conditions have the same key; pass each window/region once.")
    rows, skipped, ran = [], [], []
    bar = progress_bar(conditions, desc="retrain per condition", disable=None if progress else True)
    for condition in bar:
        path = out / f"{condition.key}.json"
        if not overwrite and condition_done(out, condition):
            rows.append(json.loads(path.read_text(encoding="utf-8")))
            skipped.append(condition.key)
            continue
        metrics = train_and_evaluate(condition)
        if not isinstance(metrics, Mapping):
            raise ToolkitError(f"train_and_evaluate must return a dict of metrics; got {type(metrics).__name__}.")
        row = {**condition.describe(), "metrics": dict(metrics)}
        atomic_write_json(path, row)
        rows.append(row)
        ran.append(condition.key)
        atomic_write_json(out / "summary.json", {"metadata": dict(metadata or {}), "rows": rows, "complete": False})
    summary = {"metadata": dict(metadata or {}), "rows": rows, "skipped": skipped, "ran": ran, "complete": True}
    atomic_write_json(out / "summary.json", {k: v for k, v in summary.items() if k not in ("skipped", "ran")})
    return summary


__all__ = [
    "ABLATION_BASELINES",
    "ANALYSES",
    "AblationResult",
    "Condition",
    "ablate",
    "ablate_regions",
    "ablate_windows",
    "build_conditions",
    "condition_done",
    "evaluate_conditions",
    "retrain_analysis",
    "scaled_tsconv_kernels",
]
