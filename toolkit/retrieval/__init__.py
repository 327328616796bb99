"""Zero-shot k-way retrieval and classification metrics with protocol cards.

Arrays in, numbers out: :func:`evaluate_retrieval` takes EEG embeddings and gallery embeddings (images for
retrieval, text prompts or class centres for classification) and returns a :class:`RetrievalResult` with exact
and seeded-sampled k-way accuracies, full-gallery top-k, ranks and intervals, carrying the :class:`ProtocolCard`
that says how the numbers were made. :func:`summarize_subjects` builds the per-subject table with mean ± std.
"""

from __future__ import annotations

from .kway import (
    FULL_GALLERY_TOPS,
    STANDARD_KS,
    STANDARD_TOPS,
    KWayScore,
    RetrievalResult,
    TopKScore,
    draw_distractors,
    evaluate_retrieval,
    kway_exact,
    kway_sampled,
    ranks,
    similarity,
)
from .protocol import GALLERY_KINDS, TEST_SELECTION_WARNING, TRAINING_SETTINGS, ProtocolCard, config_hash
from .tables import render_result, render_summary, result_table, summarize_subjects, summary_to_dict

__all__ = [
    "FULL_GALLERY_TOPS",
    "GALLERY_KINDS",
    "STANDARD_KS",
    "STANDARD_TOPS",
    "TEST_SELECTION_WARNING",
    "TRAINING_SETTINGS",
    "KWayScore",
    "ProtocolCard",
    "RetrievalResult",
    "TopKScore",
    "config_hash",
    "draw_distractors",
    "evaluate_retrieval",
    "kway_exact",
    "kway_sampled",
    "ranks",
    "render_result",
    "render_summary",
    "result_table",
    "similarity",
    "summarize_subjects",
    "summary_to_dict",
]
