"""Zero-shot k-way retrieval and classification metrics: exact, seeded-sampled and full-gallery.

The functions take embeddings (numpy arrays or torch tensors) and return numbers; they do not care whether the
gallery holds image embeddings (retrieval) or text-prompt embeddings (ATM's "classification"): the protocol card
says which.

Conventions
-----------
- **Scores.** ``similarity(..., normalize=True)`` is the cosine similarity; ``normalize=False`` is the raw dot
  product. A contrastive model's logits are ``s * score`` with a logit scale ``s``: any positive ``s`` leaves every
  ranking (and so every metric here) unchanged, so the scale is not an argument. (A negative scale would invert the
  ranking; clamp it positive when training.)
- **Ranks.** The rank of the true item is the number of *other* gallery items scoring at least as high as it
  (0 = best). Ties count against the true item, so a degenerate encoder that gives every item the same score gets
  rank N - 1, not a lucky 0.
- **Exact k-way.** In k-way evaluation the candidates are the true item and k - 1 distractors drawn uniformly
  without replacement from the N - 1 others. With ``r`` others ranked above the true item, the number of them
  among the distractors is hypergeometric, and the top-m accuracy of that query is exactly
  ``P(X < m)``, ``X ~ Hypergeom(N - 1, r, k - 1)``. This is the expectation of ATM's unseeded sampled metric, with
  no sampling noise.
- **Sampled k-way.** For comparison with papers that sample, each query gets ``n_draws`` independent uniformly
  random orderings of its N - 1 others from a generator seeded by ``seed``; the k-way distractor set is the first
  k - 1 of an ordering. Each k-way set is therefore a uniform draw, the sets for different k are nested (common
  random numbers across k), the sets depend only on ``(seed, n_queries, gallery size, targets)`` — not on the
  embeddings — so two encoders evaluated with the same seed see the same distractors, and the k-way result does
  not depend on which other k were requested. :func:`draw_distractors` returns the sets themselves.
- **Intervals.** The exact value's interval is a percentile bootstrap over queries (whole targets are resampled
  when several queries share a target, since trials of one image are not independent). The sampled value's
  interval is the percentile interval over draws: it reflects distractor sampling only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ToolkitError
from .protocol import ProtocolCard

STANDARD_KS: tuple[int, ...] = (2, 4, 10, 50, 100, 200)
"""The k values of ATM's k-way table (those not larger than the gallery are used by default)."""

STANDARD_TOPS: tuple[int, ...] = (1, 5)
"""The default top-m criteria (each used for the k with m < k)."""

FULL_GALLERY_TOPS: tuple[int, ...] = (1, 5, 10)
"""Top-k accuracies reported over the full gallery (those not larger than the gallery)."""

# Independent random streams derived from one user seed (so the draws do not depend on n_boot and vice versa).
_DRAW_STREAM = 0
_BOOT_STREAM = 1
# Upper bound on the number of elements of one chunk of distractor orderings (queries x draws x others).
_CHUNK_ELEMENTS = 1 << 22


# ================================================================================================ validation
def _as_float_matrix(x: Any, name: str) -> np.ndarray:
    """A finite, non-empty 2-D float64 copy of an array or torch tensor, or a ToolkitError naming ``name``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, handled without importing torch
        if str(getattr(x, "dtype", "")) == "torch.bfloat16":
            x = x.float()
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"'{name}' could not be read as an array ({err}); pass a 2-D float array.") from None
    if arr.dtype.kind != "f":
        raise ToolkitError(
            f"'{name}' has dtype {arr.dtype}; embeddings must be a floating-point array (float16/32/64)."
        )
    if arr.ndim != 2:
        raise ToolkitError(f"'{name}' has shape {arr.shape}; pass a 2-D array (n_items, embed_dim).")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ToolkitError(f"'{name}' is empty (shape {arr.shape}); pass at least one embedding of size >= 1.")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ToolkitError(f"'{name}' contains NaN or Inf in {bad} row(s); fix the embeddings before evaluating.")
    return arr.astype(np.float64, copy=True)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ToolkitError(f"'{name}' must be True or False, got {value!r}; it has no default on purpose.")
    return bool(value)


def _check_int(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ToolkitError(f"'{name}' must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise ToolkitError(f"'{name}' must be >= {low}, got {value}.")
    return int(value)


def _check_pair(eeg_embeds: Any, gallery_embeds: Any) -> tuple[np.ndarray, np.ndarray]:
    queries = _as_float_matrix(eeg_embeds, "eeg_embeds")
    gallery = _as_float_matrix(gallery_embeds, "gallery_embeds")
    if queries.shape[1] != gallery.shape[1]:
        raise ToolkitError(
            f"'eeg_embeds' has embedding size {queries.shape[1]} but 'gallery_embeds' has {gallery.shape[1]}; "
            "both must come from the same embedding space."
        )
    return queries, gallery


def _check_targets(targets: Any, n_queries: int, gallery_size: int) -> np.ndarray:
    if targets is None:
        if n_queries != gallery_size:
            raise ToolkitError(
                f"'targets' is None, which means query i matches gallery item i, but there are {n_queries} "
                f"queries and {gallery_size} gallery items; pass 'targets' (gallery index of each query)."
            )
        return np.arange(n_queries)
    if hasattr(targets, "detach") and hasattr(targets, "cpu"):
        targets = targets.detach().cpu().numpy()
    arr = np.asarray(targets)
    if arr.dtype.kind not in "iu":
        raise ToolkitError(f"'targets' has dtype {arr.dtype}; pass integer gallery indices.")
    if arr.ndim != 1 or arr.shape[0] != n_queries:
        raise ToolkitError(
            f"'targets' has shape {arr.shape}; pass one gallery index per query, shape ({n_queries},)."
        )
    if arr.size and (arr.min() < 0 or arr.max() >= gallery_size):
        raise ToolkitError(
            f"'targets' holds indices from {arr.min()} to {arr.max()} but the gallery has {gallery_size} items "
            f"(valid indices 0 to {gallery_size - 1})."
        )
    return arr.astype(np.int64)


def _check_ks(ks: Sequence[int] | None, gallery_size: int) -> tuple[int, ...]:
    if ks is None:
        return tuple(k for k in STANDARD_KS if k <= gallery_size)
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    out = tuple(_check_int(k, "ks", low=2) for k in ks)
    if not out:
        raise ToolkitError("'ks' is empty; pass at least one k between 2 and the gallery size.")
    if len(set(out)) != len(out):
        raise ToolkitError(f"'ks' lists a value twice: {out}; pass each k once.")
    too_big = [k for k in out if k > gallery_size]
    if too_big:
        raise ToolkitError(
            f"'ks' asks for {too_big[0]}-way evaluation but the gallery has only {gallery_size} items; "
            f"use k <= {gallery_size}."
        )
    return out


def _check_top(top: Sequence[int] | int | None, ks: Sequence[int]) -> tuple[int, ...]:
    if top is None:
        return tuple(m for m in STANDARD_TOPS if any(m < k for k in ks))
    if isinstance(top, (int, np.integer)):
        top = (top,)
    out = tuple(_check_int(m, "top", low=1) for m in top)
    if not out:
        raise ToolkitError("'top' is empty; pass at least one m, e.g. top=(1, 5).")
    if len(set(out)) != len(out):
        raise ToolkitError(f"'top' lists a value twice: {out}; pass each m once.")
    for m in out:
        if not any(m < k for k in ks):
            raise ToolkitError(
                f"top-{m} is not defined for any requested k ({', '.join(map(str, ks))}): top-m needs m < k "
                "(it would always be correct); drop it or add a larger k."
            )
    return out


def _check_card(protocol: Any) -> ProtocolCard:
    if not isinstance(protocol, ProtocolCard):
        raise ToolkitError(
            f"'protocol' must be a toolkit.retrieval.ProtocolCard describing how the embeddings were made, "
            f"got {type(protocol).__name__}."
        )
    return protocol.validate()


# ============================================================================================== core maths
def _normalized_scores(queries: np.ndarray, gallery: np.ndarray, normalize: bool) -> np.ndarray:
    if normalize:
        for arr, name in ((queries, "eeg_embeds"), (gallery, "gallery_embeds")):
            norms = np.linalg.norm(arr, axis=1, keepdims=True)
            if (norms == 0).any():
                raise ToolkitError(
                    f"'{name}' has {int((norms == 0).sum())} all-zero row(s), whose cosine similarity is "
                    "undefined; remove them or use normalize=False."
                )
            arr /= norms
    return queries @ gallery.T


def similarity(eeg_embeds: Any, gallery_embeds: Any, *, normalize: bool) -> np.ndarray:
    """Score every query against every gallery item.

    Parameters
    ----------
    eeg_embeds : array, shape (n_queries, embed_dim)
        EEG embeddings (numpy array or torch tensor, floating point).
    gallery_embeds : array, shape (gallery_size, embed_dim)
        Image or text embeddings of the candidates.
    normalize : bool
        ``True``: cosine similarity (both sides L2-normalised). ``False``: raw dot product. Required: there is no
        hidden default. Multiplying the scores by a positive logit scale does not change any ranking.

    Returns
    -------
    ndarray, shape (n_queries, gallery_size)
        float64 scores.
    """
    normalize = _check_bool(normalize, "normalize")
    queries, gallery = _check_pair(eeg_embeds, gallery_embeds)
    return _normalized_scores(queries, gallery, normalize)


def _others(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Scores of the N - 1 non-target items of each query, shape (n_queries, N - 1), in gallery order."""
    n_others = scores.shape[1] - 1
    slots = np.arange(n_others)[None, :]
    index = slots + (slots >= targets[:, None])
    return np.take_along_axis(scores, index, axis=1)


def _better_mask(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Whether each non-target item scores at least as high as the true item (ties count against it)."""
    true = scores[np.arange(scores.shape[0]), targets]
    return _others(scores, targets) >= true[:, None]


def ranks(eeg_embeds: Any, gallery_embeds: Any, targets: Any = None, *, normalize: bool) -> np.ndarray:
    """Rank of the true gallery item for each query (0 = best).

    Parameters
    ----------
    eeg_embeds : array, shape (n_queries, embed_dim)
        EEG embeddings.
    gallery_embeds : array, shape (gallery_size, embed_dim)
        Candidate embeddings.
    targets : array of int, shape (n_queries,) | None
        Gallery index of each query's true item; several queries may share one (single trials). ``None`` means
        query ``i`` matches item ``i`` (requires ``n_queries == gallery_size``).
    normalize : bool
        Cosine (``True``) or raw dot product (``False``) scores; see :func:`similarity`.

    Returns
    -------
    ndarray of int64, shape (n_queries,)
        The number of other gallery items scoring at least as high as the true item. Ties count against the true
        item (conservative), so ``rank < m`` is exactly "correct at full-gallery top-m".
    """
    normalize = _check_bool(normalize, "normalize")
    queries, gallery = _check_pair(eeg_embeds, gallery_embeds)
    target_idx = _check_targets(targets, queries.shape[0], gallery.shape[0])
    if gallery.shape[0] < 2:
        raise ToolkitError("'gallery_embeds' has 1 item; retrieval needs a gallery of at least 2 items.")
    scores = _normalized_scores(queries, gallery, normalize)
    return _better_mask(scores, target_idx).sum(axis=1).astype(np.int64)


def _exact_table(n_others: int, k: int, m: int) -> np.ndarray:
    """Top-m k-way accuracy for every possible rank r = 0 .. n_others: P(X < m), X ~ Hypergeom(n_others, r, k-1)."""
    from scipy.stats import hypergeom

    r = np.arange(n_others + 1)
    return np.clip(hypergeom.cdf(m - 1, n_others, r, k - 1), 0.0, 1.0)


def kway_exact(ranks: Any, gallery_size: int, *, k: int, top: int = 1) -> np.ndarray:
    """Exact expected top-m k-way accuracy of each query, given its full-gallery rank.

    Parameters
    ----------
    ranks : array of int, shape (n_queries,)
        Ranks from :func:`ranks` (0 = best; number of others scoring at least as high as the true item).
    gallery_size : int
        Number of gallery items ``N``.
    k : int
        Candidates per trial (the true item plus ``k - 1`` distractors), ``2 <= k <= N``.
    top : int
        ``m``: a trial is correct when the true item is among the ``m`` best candidates; ``1 <= m < k``.

    Returns
    -------
    ndarray of float64, shape (n_queries,)
        Probability, over uniformly drawn distractor sets, that the query is correct. ``k == N`` gives exactly
        ``rank < top`` (full-gallery accuracy).
    """
    n = _check_int(gallery_size, "gallery_size", low=2)
    k = _check_int(k, "k", low=2)
    m = _check_int(top, "top", low=1)
    if k > n:
        raise ToolkitError(f"'k' is {k} but the gallery has only {n} items; use k <= {n}.")
    if m >= k:
        raise ToolkitError(f"'top' is {m} but k is {k}; top-m needs m < k (it would always be correct).")
    r = np.asarray(ranks)
    if r.dtype.kind not in "iu" or r.ndim != 1:
        raise ToolkitError(f"'ranks' must be a 1-D integer array, got dtype {r.dtype} and shape {r.shape}.")
    if r.size == 0:
        raise ToolkitError("'ranks' is empty; pass at least one query's rank.")
    if r.min() < 0 or r.max() > n - 1:
        raise ToolkitError(f"'ranks' must lie between 0 and {n - 1} for a gallery of {n} items.")
    return _exact_table(n - 1, k, m)[r]


def _ordering_chunks(
    n_queries: int, n_others: int, n_draws: int, seed: int, chunk_elements: int = _CHUNK_ELEMENTS
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, orderings)`` with orderings of shape (stop - start, n_draws, n_others).

    Row ``[q, d]`` is a uniformly random permutation of the slots ``0 .. n_others - 1`` (the non-target items of
    query ``q`` in gallery order). Permutations are generated query by query from one stream, so the result does
    not depend on the chunk size.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DRAW_STREAM,)))
    dtype = np.int16 if n_others < np.iinfo(np.int16).max else np.int32
    base = np.arange(n_others, dtype=dtype)
    per_query = n_draws * n_others
    step = max(1, chunk_elements // per_query)
    for start in range(0, n_queries, step):
        stop = min(n_queries, start + step)
        # Generator.permuted shuffles each row in C order (Fisher-Yates in C), query-major: chunk-size invariant.
        orderings = rng.permuted(np.broadcast_to(base, (stop - start, n_draws, n_others)), axis=-1)
        yield start, stop, orderings


def draw_distractors(targets: Any, gallery_size: int, *, n_draws: int, seed: int) -> np.ndarray:
    """The seeded distractor sets used by the sampled k-way metric, as gallery indices.

    Parameters
    ----------
    targets : array of int, shape (n_queries,)
        Gallery index of each query's true item.
    gallery_size : int
        Number of gallery items ``N``.
    n_draws : int
        Number of draws per query.
    seed : int
        Seed of the draws (the same as :func:`evaluate_retrieval`'s ``seed``).

    Returns
    -------
    ndarray of int64, shape (n_queries, n_draws, N - 1)
        ``out[q, d, :k - 1]`` are the ``k - 1`` distractors of query ``q`` in draw ``d`` for k-way evaluation
        (never the target). Memory grows as ``n_queries * n_draws * N``: meant for audits and small galleries.
    """
    n = _check_int(gallery_size, "gallery_size", low=2)
    n_draws = _check_int(n_draws, "n_draws", low=1)
    seed = _check_int(seed, "seed", low=0)
    if hasattr(targets, "detach") and hasattr(targets, "cpu"):
        targets = targets.detach().cpu().numpy()
    if targets is None or np.ndim(targets) != 1:
        raise ToolkitError("'targets' must be a 1-D array of gallery indices, one per query.")
    target_idx = _check_targets(targets, len(targets), n)
    out = np.empty((target_idx.size, n_draws, n - 1), dtype=np.int64)
    for start, stop, orderings in _ordering_chunks(target_idx.size, n - 1, n_draws, seed):
        slots = orderings.astype(np.int64)
        out[start:stop] = slots + (slots >= target_idx[start:stop, None, None])
    return out


def _sampled_from_better(
    better: np.ndarray,
    ks: Sequence[int],
    tops: Sequence[int],
    n_draws: int,
    seed: int,
    chunk_elements: int = _CHUNK_ELEMENTS,
) -> np.ndarray:
    """Per-draw accuracy, shape (len(ks), len(tops), n_draws); NaN where top >= k."""
    n_queries, n_others = better.shape
    out = np.full((len(ks), len(tops), n_draws), np.nan)
    sampled = [i for i, k in enumerate(ks) if k - 1 < n_others]
    # k == N: every other item is a distractor, so every draw equals the full-gallery accuracy (no sampling).
    n_better = better.sum(axis=1)
    for i, k in enumerate(ks):
        if k - 1 == n_others:
            for j, m in enumerate(tops):
                if m < k:
                    out[i, j, :] = np.mean(n_better < m)
    if not sampled:
        return out
    prefix = max(ks[i] for i in sampled) - 1
    correct = np.zeros((len(sampled), len(tops), n_draws), dtype=np.int64)
    for start, stop, orderings in _ordering_chunks(n_queries, n_others, n_draws, seed, chunk_elements):
        # better_in_order[q, d, p]: is the p-th drawn distractor ranked above the true item?
        better_in_order = np.take_along_axis(better[start:stop, None, :], orderings[..., :prefix], axis=-1)
        counts = np.cumsum(better_in_order, axis=-1, dtype=np.int32)  # better items among the first p + 1 drawn
        for row, i in enumerate(sampled):
            n_above = counts[..., ks[i] - 2]  # (queries, draws): better items among the k - 1 distractors
            for j, m in enumerate(tops):
                if m < ks[i]:
                    correct[row, j] += (n_above < m).sum(axis=0)
    with np.errstate(invalid="ignore"):
        acc = correct / n_queries
    for row, i in enumerate(sampled):
        for j, m in enumerate(tops):
            if m < ks[i]:
                out[i, j] = acc[row, j]
    return out


def kway_sampled(
    eeg_embeds: Any,
    gallery_embeds: Any,
    targets: Any = None,
    *,
    normalize: bool,
    ks: Sequence[int] | None = None,
    top: Sequence[int] | int = (1,),
    n_draws: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Seeded sampled k-way accuracy, one value per draw.

    Parameters
    ----------
    eeg_embeds, gallery_embeds, targets, normalize
        As in :func:`ranks`.
    ks : sequence of int | None
        k values (``2 <= k <= N``); ``None``: those of :data:`STANDARD_KS` not larger than the gallery.
    top : sequence of int | int
        Top-m values; each is evaluated for the k with ``m < k``.
    n_draws : int
        Independent distractor draws per query (>= 1).
    seed : int
        Seed of the draws (>= 0). The draws are those of :func:`draw_distractors`.

    Returns
    -------
    ndarray of float64, shape (len(ks), len(top), n_draws)
        Accuracy over queries in each draw; NaN where ``m >= k``.
    """
    normalize = _check_bool(normalize, "normalize")
    queries, gallery = _check_pair(eeg_embeds, gallery_embeds)
    n = gallery.shape[0]
    target_idx = _check_targets(targets, queries.shape[0], n)
    ks_ = _check_ks(ks, n)
    if not ks_:
        raise ToolkitError(f"The gallery has {n} item(s); k-way evaluation needs at least 2.")
    tops = _check_top(top, ks_)
    n_draws = _check_int(n_draws, "n_draws", low=1)
    seed = _check_int(seed, "seed", low=0)
    scores = _normalized_scores(queries, gallery, normalize)
    return _sampled_from_better(_better_mask(scores, target_idx), ks_, tops, n_draws, seed)


def _cluster_bootstrap(
    values: np.ndarray, clusters: np.ndarray, *, n_boot: int, seed: int, confidence: float
) -> np.ndarray:
    """Percentile interval of the mean of each column of ``values`` (n_queries, n_metrics), resampling clusters.

    Returns an array (n_metrics, 2). With one query per cluster this is the ordinary bootstrap over queries.
    """
    _, cluster_of = np.unique(clusters, return_inverse=True)
    n_clusters = int(cluster_of.max()) + 1
    sums = np.zeros((n_clusters, values.shape[1]))
    np.add.at(sums, cluster_of, values)
    sizes = np.bincount(cluster_of, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_BOOT_STREAM,)))
    # How often each cluster is picked in each resample (multinomial = sampling clusters with replacement).
    weights = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot).astype(np.float64)
    estimates = (weights @ sums) / (weights @ sizes)[:, None]
    alpha = (1.0 - confidence) / 2.0
    return np.quantile(estimates, [alpha, 1.0 - alpha], axis=0).T


# ================================================================================================= results
@dataclasses.dataclass(frozen=True)
class KWayScore:
    """Top-m accuracy in k-way evaluation (fractions in [0, 1]).

    Attributes
    ----------
    k, top : int
        Candidates per trial and the top-m criterion.
    chance : float
        ``top / k``.
    exact : float
        Exact expected accuracy (mean over queries of the hypergeometric probability).
    exact_ci : tuple of float
        Bootstrap interval of ``exact`` over queries (targets).
    sampled_mean, sampled_std : float
        Mean and standard deviation of the accuracy over the seeded draws.
    sampled_interval : tuple of float
        Percentile interval over draws.
    draws : ndarray, shape (n_draws,)
        Accuracy in each draw.
    """

    k: int
    top: int
    chance: float
    exact: float
    exact_ci: tuple[float, float]
    sampled_mean: float
    sampled_std: float
    sampled_interval: tuple[float, float]
    draws: np.ndarray = dataclasses.field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """E.g. ``"50-way top-5"``."""
        return f"{self.k}-way top-{self.top}"


@dataclasses.dataclass(frozen=True)
class TopKScore:
    """Full-gallery top-k accuracy (fraction) with its bootstrap interval."""

    top: int
    value: float
    ci: tuple[float, float]

    @property
    def label(self) -> str:
        """E.g. ``"full top-5"``."""
        return f"full top-{self.top}"


@dataclasses.dataclass(frozen=True)
class RetrievalResult:
    """Zero-shot retrieval/classification metrics of one evaluation, with the protocol card that produced them.

    Fractions are in [0, 1]. ``median_rank`` and ``mean_rank`` are 1-based (1 = the true item is the best
    match), the usual convention of retrieval papers; the per-query ``ranks`` are 0-based as returned by
    :func:`ranks`.
    """

    protocol: ProtocolCard
    n_queries: int
    gallery_size: int
    n_targets: int
    normalize: bool
    seed: int
    n_draws: int
    n_boot: int
    confidence: float
    kway: tuple[KWayScore, ...]
    full_gallery: tuple[TopKScore, ...]
    median_rank: float
    mean_rank: float
    mrr: float
    mrr_ci: tuple[float, float]
    ranks: np.ndarray = dataclasses.field(repr=False, compare=False)

    @property
    def task(self) -> str:
        """``"retrieval"`` or ``"classification"`` (from the card's gallery kind)."""
        return self.protocol.task

    def score(self, k: int, top: int = 1) -> KWayScore:
        """The :class:`KWayScore` for ``k``-way top-``top``."""
        for item in self.kway:
            if item.k == k and item.top == top:
                return item
        available = ", ".join(item.label for item in self.kway)
        raise ToolkitError(f"No {k}-way top-{top} score in this result; available: {available}.")

    def full(self, top: int = 1) -> TopKScore:
        """The full-gallery :class:`TopKScore` for ``top``."""
        for item in self.full_gallery:
            if item.top == top:
                return item
        available = ", ".join(item.label for item in self.full_gallery)
        raise ToolkitError(f"No full-gallery top-{top} score in this result; available: {available}.")

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-serialisable dict, protocol card included.

        Parameters
        ----------
        detail : bool
            Also include the per-query 0-based ranks (``"ranks_zero_based"``) and each k-way score's per-draw
            accuracies (``"draws"``).
        """
        kway = []
        for item in self.kway:
            entry = {
                "k": item.k,
                "top": item.top,
                "label": item.label,
                "chance": item.chance,
                "exact": item.exact,
                "exact_ci": list(item.exact_ci),
                "sampled_mean": item.sampled_mean,
                "sampled_std": item.sampled_std,
                "sampled_interval": list(item.sampled_interval),
            }
            if detail:
                entry["draws"] = [float(v) for v in item.draws]
            kway.append(entry)
        out: dict[str, Any] = {
            "protocol": self.protocol.to_dict(),
            "task": self.task,
            "warning": self.protocol.warning,
            "n_queries": self.n_queries,
            "gallery_size": self.gallery_size,
            "n_targets": self.n_targets,
            "normalize": self.normalize,
            "seed": self.seed,
            "n_draws": self.n_draws,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "kway": kway,
            "full_gallery": [
                {"top": item.top, "label": item.label, "value": item.value, "ci": list(item.ci)}
                for item in self.full_gallery
            ],
            "median_rank": self.median_rank,
            "mean_rank": self.mean_rank,
            "mrr": self.mrr,
            "mrr_ci": list(self.mrr_ci),
        }
        if detail:
            out["ranks_zero_based"] = [int(v) for v in self.ranks]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the retrieval result") -> RetrievalResult:
        """Rebuild a result from :meth:`to_dict` output (per-draw and per-query details are optional)."""
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must be a JSON object, got {type(data).__name__}.")
        try:
            card = ProtocolCard.from_dict(data["protocol"], source=f"the protocol card in {source}")
            kway = tuple(
                KWayScore(
                    k=int(e["k"]),
                    top=int(e["top"]),
                    chance=float(e["chance"]),
                    exact=float(e["exact"]),
                    exact_ci=_pair(e["exact_ci"]),
                    sampled_mean=float(e["sampled_mean"]),
                    sampled_std=float(e["sampled_std"]),
                    sampled_interval=_pair(e["sampled_interval"]),
                    draws=np.asarray(e.get("draws", []), dtype=np.float64),
                )
                for e in data["kway"]
            )
            full = tuple(
                TopKScore(top=int(e["top"]), value=float(e["value"]), ci=_pair(e["ci"])) for e in data["full_gallery"]
            )
            return cls(
                protocol=card,
                n_queries=int(data["n_queries"]),
                gallery_size=int(data["gallery_size"]),
                n_targets=int(data["n_targets"]),
                normalize=bool(data["normalize"]),
                seed=int(data["seed"]),
                n_draws=int(data["n_draws"]),
                n_boot=int(data["n_boot"]),
                confidence=float(data["confidence"]),
                kway=kway,
                full_gallery=full,
                median_rank=float(data["median_rank"]),
                mean_rank=float(data["mean_rank"]),
                mrr=float(data["mrr"]),
                mrr_ci=_pair(data["mrr_ci"]),
                ranks=np.asarray(data.get("ranks_zero_based", []), dtype=np.int64),
            )
        except KeyError as err:
            raise ToolkitError(
                f"{source} lacks the key {err}; it was not written by RetrievalResult.to_dict."
            ) from None
        except (TypeError, ValueError) as err:
            if isinstance(err, ToolkitError):
                raise
            raise ToolkitError(f"{source} has a malformed value ({err}); it was not written by "
                               "RetrievalResult.to_dict.") from None

    def table(self):
        """One row per metric as a pandas DataFrame (fractions; see :func:`toolkit.retrieval.result_table`)."""
        from .tables import result_table

        return result_table(self)

    def to_markdown(self) -> str:
        """Protocol card (with any warning) and metrics table in markdown, accuracies in percent."""
        from .tables import render_result

        return render_result(self, fmt="markdown")

    def to_text(self) -> str:
        """Plain-text rendering for terminals."""
        from .tables import render_result

        return render_result(self, fmt="text")


def _pair(value: Any) -> tuple[float, float]:
    lo, hi = value
    return float(lo), float(hi)


# ============================================================================================== evaluation
def evaluate_retrieval(
    eeg_embeds: Any,
    gallery_embeds: Any,
    targets: Any = None,
    *,
    normalize: bool,
    protocol: ProtocolCard,
    ks: Sequence[int] | None = None,
    top: Sequence[int] | int | None = None,
    n_draws: int = 100,
    seed: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
) -> RetrievalResult:
    """Zero-shot k-way retrieval (image gallery) or classification (text/class-centre gallery) metrics.

    Parameters
    ----------
    eeg_embeds : array, shape (n_queries, embed_dim)
        EEG embeddings (numpy array or torch tensor, floating point), e.g. 200 averaged test trials.
    gallery_embeds : array, shape (gallery_size, embed_dim)
        Candidate embeddings: test images (retrieval) or text prompts (classification).
    targets : array of int, shape (n_queries,) | None
        Gallery index of each query's true item; several queries may share one (single non-averaged trials).
        ``None``: query ``i`` matches gallery item ``i``.
    normalize : bool
        Cosine (``True``) or raw dot-product (``False``) scores. No default: say which.
    protocol : ProtocolCard
        How the embeddings were made. Its ``embedding_normalize``, ``gallery_size``, ``distractor_seed`` and
        ``n_draws`` are filled in from this call (an error if the card already says something else).
    ks : sequence of int | None
        k values, ``2 <= k <= gallery_size``. ``None``: :data:`STANDARD_KS` up to the gallery size.
    top : sequence of int | int | None
        Top-m criteria, each evaluated for the k with ``m < k`` (top-5 is not reported for 2- or 4-way); an m
        that fits no requested k is an error. ``None``: :data:`STANDARD_TOPS` that fit some k.
    n_draws : int
        Sampled distractor draws per query (>= 1).
    seed : int
        Seed of the distractor draws and of the bootstrap (>= 0); independent streams are derived from it.
    n_boot : int
        Bootstrap resamples for the intervals of the exact values (>= 1).
    confidence : float
        Level of all intervals, in (0, 1).

    Returns
    -------
    RetrievalResult
        Exact, sampled and full-gallery metrics with intervals; ``.to_dict()`` for JSON, ``.table()`` for pandas.
    """
    card = _check_card(protocol)
    normalize = _check_bool(normalize, "normalize")
    queries, gallery = _check_pair(eeg_embeds, gallery_embeds)
    n = gallery.shape[0]
    if n < 2:
        raise ToolkitError("'gallery_embeds' has 1 item; retrieval needs a gallery of at least 2 items.")
    target_idx = _check_targets(targets, queries.shape[0], n)
    ks_ = _check_ks(ks, n)
    tops = _check_top(top, ks_)
    n_draws = _check_int(n_draws, "n_draws", low=1)
    seed = _check_int(seed, "seed", low=0)
    n_boot = _check_int(n_boot, "n_boot", low=1)
    if isinstance(confidence, bool) or not isinstance(confidence, (float, int)) or not 0 < confidence < 1:
        raise ToolkitError(f"'confidence' must be a number strictly between 0 and 1, got {confidence!r}.")
    card = _fill_card(card, normalize=normalize, gallery_size=n, seed=seed, n_draws=n_draws)

    scores = _normalized_scores(queries, gallery, normalize)
    better = _better_mask(scores, target_idx)
    rank = better.sum(axis=1).astype(np.int64)

    # Per-query values whose means are the reported numbers; one bootstrap serves them all.
    pairs = [(k, m) for k in ks_ for m in tops if m < k]
    full_tops = [t for t in FULL_GALLERY_TOPS if t <= n]
    columns = [_exact_table(n - 1, k, m)[rank] for k, m in pairs]
    columns += [(rank < t).astype(np.float64) for t in full_tops]
    columns.append(1.0 / (rank + 1.0))
    per_query = np.stack(columns, axis=1)
    means = per_query.mean(axis=0)
    cis = _cluster_bootstrap(per_query, target_idx, n_boot=n_boot, seed=seed, confidence=float(confidence))

    draws = _sampled_from_better(better, ks_, tops, n_draws, seed)
    alpha = (1.0 - confidence) / 2.0
    kway = []
    for col, (k, m) in enumerate(pairs):
        d = draws[ks_.index(k), tops.index(m)]
        lo, hi = np.quantile(d, [alpha, 1.0 - alpha])
        kway.append(
            KWayScore(
                k=k,
                top=m,
                chance=m / k,
                exact=float(means[col]),
                exact_ci=(float(cis[col, 0]), float(cis[col, 1])),
                # Identical draws (k = N, or a saturated metric) report that value exactly, without rounding noise.
                sampled_mean=float(d[0]) if np.ptp(d) == 0 else float(d.mean()),
                sampled_std=0.0 if np.ptp(d) == 0 else float(d.std(ddof=1)),
                sampled_interval=(float(lo), float(hi)),
                draws=d.copy(),
            )
        )
    offset = len(pairs)
    full = tuple(
        TopKScore(top=t, value=float(means[offset + i]), ci=(float(cis[offset + i, 0]), float(cis[offset + i, 1])))
        for i, t in enumerate(full_tops)
    )
    return RetrievalResult(
        protocol=card,
        n_queries=int(queries.shape[0]),
        gallery_size=n,
        n_targets=int(np.unique(target_idx).size),
        normalize=normalize,
        seed=seed,
        n_draws=n_draws,
        n_boot=n_boot,
        confidence=float(confidence),
        kway=tuple(kway),
        full_gallery=full,
        median_rank=float(np.median(rank + 1)),
        mean_rank=float(np.mean(rank + 1)),
        mrr=float(means[-1]),
        mrr_ci=(float(cis[-1, 0]), float(cis[-1, 1])),
        ranks=rank,
    )


def _fill_card(card: ProtocolCard, *, normalize: bool, gallery_size: int, seed: int, n_draws: int) -> ProtocolCard:
    """Fill the computation fields of the card from the call, refusing contradictions."""
    call = {"embedding_normalize": normalize, "gallery_size": gallery_size, "distractor_seed": seed,
            "n_draws": n_draws}
    argument = {"embedding_normalize": "normalize", "gallery_size": "gallery_embeds", "distractor_seed": "seed",
                "n_draws": "n_draws"}
    for name, value in call.items():
        stated = getattr(card, name)
        if stated is not None and stated != value:
            raise ToolkitError(
                f"The protocol card says {name}={stated!r} but the call uses {argument[name]} giving {value!r}; "
                f"make them agree (or leave {name} as None on the card to have it filled in)."
            )
    return card.replace(**call)


__all__ = [
    "FULL_GALLERY_TOPS",
    "STANDARD_KS",
    "STANDARD_TOPS",
    "KWayScore",
    "RetrievalResult",
    "TopKScore",
    "draw_distractors",
    "evaluate_retrieval",
    "kway_exact",
    "kway_sampled",
    "ranks",
    "similarity",
]
