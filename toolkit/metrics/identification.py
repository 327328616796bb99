"""Two-way identification and correlation distance of paired feature vectors (MindEye / ATM definitions).

Both take the features of the ground-truth images and of the reconstructions, row ``j`` of one paired with row
``j`` of the other. Feature maps of any shape are flattened per image.

- **Two-way identification** (after Ozcelik & VanRullen): with ``r[i, j]`` the Pearson correlation between the
  features of ground truth ``i`` and of reconstruction ``j``, reconstruction ``j`` scores the fraction of the
  ``N − 1`` other ground truths ``i`` with ``r[i, j] < r[j, j]``; the metric is the mean over ``j`` (chance 0.5,
  perfect 1.0). Ties count as failures, and so does an undefined (NaN) correlation, as in the reference code where
  NaN comparisons are false.
- **Correlation distance**: ``1 − r[j, j]`` per pair (``scipy.spatial.distance.correlation``), mean over pairs;
  lower is better (0 for identical features).

Correlations are computed in float64 over feature chunks, so high-dimensional feature maps (AlexNet's ``features.4``
has 184,512 values per 256 × 256 image) need no float64 copy of the whole matrix.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import ToolkitError

logger = logging.getLogger(__name__)

# Feature columns converted to float64 at a time.
_CHUNK = 8192


def pearson_matrix(a: Any, b: Any, *, names: tuple[str, str] = ("a", "b")) -> np.ndarray:
    """Pearson correlation between every row of ``a`` and every row of ``b``.

    Parameters
    ----------
    a : array-like, shape (n_a, ...)
        Feature vectors (flattened per row).
    b : array-like, shape (n_b, ...)
        Feature vectors of the same length.
    names : tuple of str
        Argument names for error messages.

    Returns
    -------
    np.ndarray of float64, shape (n_a, n_b)
        ``r[i, j] = corr(a[i], b[j])``; NaN where a row is constant.
    """
    a = _as_features(a, names[0])
    b = _as_features(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ToolkitError(
            f"'{names[0]}' has {a.shape[1]} features per item but '{names[1]}' has {b.shape[1]}; extract both with "
            "the same network and layer."
        )
    mean_a = a.mean(axis=1, dtype=np.float64)
    mean_b = b.mean(axis=1, dtype=np.float64)
    cross = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    ss_a = np.zeros(a.shape[0], dtype=np.float64)
    ss_b = np.zeros(b.shape[0], dtype=np.float64)
    for start in range(0, a.shape[1], _CHUNK):
        ca = a[:, start : start + _CHUNK].astype(np.float64) - mean_a[:, None]
        cb = b[:, start : start + _CHUNK].astype(np.float64) - mean_b[:, None]
        cross += ca @ cb.T
        ss_a += np.einsum("ij,ij->i", ca, ca)
        ss_b += np.einsum("ij,ij->i", cb, cb)
    den = np.sqrt(np.outer(ss_a, ss_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cross / den
    r[den == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


def identification_from_correlation(r: Any, *, per_item: bool = False) -> float | np.ndarray:
    """Two-way identification from a ground truth × reconstruction correlation matrix.

    Parameters
    ----------
    r : array-like, shape (n, n)
        ``r[i, j]`` = correlation between ground truth ``i`` and reconstruction ``j`` (``j`` pairs with ``j``).
    per_item : bool
        Return the score of every reconstruction instead of the mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n,)
        Mean over reconstructions of the fraction of other ground truths less correlated with it than its own.
    """
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1]:
        raise ToolkitError(f"The correlation matrix must be square (n, n), got shape {r.shape}.")
    n = r.shape[0]
    if n < 2:
        raise ToolkitError(
            f"Two-way identification needs at least 2 image pairs (each is compared with the others), got {n}."
        )
    congruent = np.diag(r)
    if np.isnan(r).any():
        logger.warning(
            "%d correlation(s) are undefined (constant feature vectors); they count as failed comparisons.",
            int(np.isnan(r).sum()),
        )
    with np.errstate(invalid="ignore"):
        success = r < congruent[None, :]  # success[i, j]: corr(GT_i, rec_j) < corr(GT_j, rec_j); False on the diagonal
    scores = success.sum(axis=0) / (n - 1)
    return scores if per_item else float(scores.mean())


def two_way_identification(gt_features: Any, recon_features: Any, *, per_item: bool = False) -> float | np.ndarray:
    """Two-way identification accuracy of reconstructions from their features (see the module docstring).

    Parameters
    ----------
    gt_features : array-like, shape (n, ...)
        Features of the ground-truth images.
    recon_features : array-like, shape (n, ...)
        Features of the reconstructions, row ``j`` paired with ground truth ``j``.
    per_item : bool
        Return the score of every reconstruction instead of the mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n,)
        Higher is better; 0.5 is chance, 1.0 perfect.
    """
    _check_paired(gt_features, recon_features)
    r = pearson_matrix(gt_features, recon_features, names=("gt_features", "recon_features"))
    return identification_from_correlation(r, per_item=per_item)


def correlation_distance(gt_features: Any, recon_features: Any, *, per_pair: bool = False) -> float | np.ndarray:
    """Mean correlation distance ``1 − r`` between paired feature vectors (EffNet-B1 / SwAV metrics).

    Parameters
    ----------
    gt_features : array-like, shape (n, ...)
        Features of the ground-truth images.
    recon_features : array-like, shape (n, ...)
        Features of the reconstructions, row ``j`` paired with ground truth ``j``.
    per_pair : bool
        Return the distance of every pair instead of the mean.

    Returns
    -------
    float | np.ndarray of float64, shape (n,)
        Lower is better; 0 for identical features, 1 for uncorrelated ones, at most 2. Pairs with a constant
        feature vector have no correlation: NaN, logged, and left out of the mean.
    """
    gt, rec = _check_paired(gt_features, recon_features)
    if gt.shape[1] != rec.shape[1]:
        raise ToolkitError(
            f"'gt_features' has {gt.shape[1]} features per item but 'recon_features' has {rec.shape[1]}; extract "
            "both with the same network and layer."
        )
    mean_g = gt.mean(axis=1, dtype=np.float64)
    mean_r = rec.mean(axis=1, dtype=np.float64)
    cross = np.zeros(gt.shape[0])
    ss_g = np.zeros(gt.shape[0])
    ss_r = np.zeros(gt.shape[0])
    for start in range(0, gt.shape[1], _CHUNK):
        cg = gt[:, start : start + _CHUNK].astype(np.float64) - mean_g[:, None]
        cr = rec[:, start : start + _CHUNK].astype(np.float64) - mean_r[:, None]
        cross += np.einsum("ij,ij->i", cg, cr)
        ss_g += np.einsum("ij,ij->i", cg, cg)
        ss_r += np.einsum("ij,ij->i", cr, cr)
    den = np.sqrt(ss_g * ss_r)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = 1.0 - np.clip(cross / den, -1.0, 1.0)
    dist[den == 0] = np.nan
    if per_pair:
        return dist
    finite = dist[~np.isnan(dist)]
    if finite.size < dist.size:
        logger.warning(
            "Correlation distance is undefined for %d pair(s) with a constant feature vector; left out of the mean.",
            dist.size - finite.size,
        )
    return float(finite.mean()) if finite.size else float("nan")


def _as_features(x: Any, name: str) -> np.ndarray:
    """A finite 2-D float array ``(n, n_features)`` (feature maps flattened), or a ToolkitError naming ``name``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, handled without importing torch
        x = x.detach().cpu().float().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"'{name}' could not be read as an array ({err}); pass (n_items, n_features).") from None
    if arr.dtype.kind not in "fiu":
        raise ToolkitError(f"'{name}' has dtype {arr.dtype}; features must be numbers.")
    if arr.ndim < 2:
        raise ToolkitError(f"'{name}' has shape {arr.shape}; pass one feature vector (or map) per item, (n, ...).")
    if arr.size == 0:
        raise ToolkitError(f"'{name}' is empty (shape {arr.shape}); pass at least one non-empty feature vector.")
    arr = arr.reshape(arr.shape[0], -1)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ToolkitError(f"'{name}' contains NaN or Inf in {bad} item(s); check the feature extraction.")
    return arr


def _check_paired(gt_features: Any, recon_features: Any) -> tuple[np.ndarray, np.ndarray]:
    gt = _as_features(gt_features, "gt_features")
    rec = _as_features(recon_features, "recon_features")
    if gt.shape[0] != rec.shape[0]:
        raise ToolkitError(
            f"Got features of {gt.shape[0]} ground truths but {rec.shape[0]} reconstructions; pass one "
            "reconstruction per ground-truth image, in the same order."
        )
    return gt, rec
