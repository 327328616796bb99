"""Benchmarks of the zero-shot retrieval metrics (``python -m toolkit bench --only 'retrieval.*'``)."""

from __future__ import annotations

import statistics
import time

from . import benchmark

_TARGET_S = 2.0


@benchmark(
    "retrieval.kway_200",
    "evaluate_retrieval on 200 queries x 200-item gallery (1024-d), k in 2..200, top-1/5, 100 seeded draws, "
    "1000 bootstrap resamples; target < 2 s on CPU",
)
def kway_200() -> dict:
    """Time one full THINGS-EEG2-sized evaluation (exact + sampled + bootstrap), median of 5 after a warm-up."""
    import numpy as np

    from ..retrieval import STANDARD_KS, ProtocolCard, evaluate_retrieval

    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((200, 1024)).astype(np.float32)
    queries = (gallery + 3.0 * rng.standard_normal((200, 1024))).astype(np.float32)
    card = ProtocolCard(
        dataset="synthetic (benchmark)",
        data_variant="random embeddings",
        subjects=("bench",),
        split="test",
        gallery="random gallery of 200 items",
        gallery_kind="image",
        n_channels=63,
        channels="all 63",
        time_window=(0.0, 1.0),
        sfreq=250.0,
        repetitions_averaged=80,
        training_setting="intra-subject",
        backbone="none (random embeddings)",
        eeg_normalisation="none",
        selection_rule="none (no training)",
        encoder="none",
        config_hash="none",
    )

    def once() -> float:
        start = time.perf_counter()
        evaluate_retrieval(queries, gallery, normalize=True, protocol=card, ks=STANDARD_KS, top=(1, 5), n_draws=100,
                           seed=0)
        return time.perf_counter() - start

    once()  # warm-up: lazy imports (scipy.stats) and allocator
    times = [once() for _ in range(5)]
    median_s = statistics.median(times)
    return {
        "median_ms": round(1000 * median_s, 1),
        "min_ms": round(1000 * min(times), 1),
        "target_ms": 1000 * _TARGET_S,
        "met_target": median_s < _TARGET_S,
        "n_queries": 200,
        "ks": list(STANDARD_KS),
        "n_draws": 100,
    }
