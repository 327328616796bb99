"""Attribution over electrodes and time: captum wrappers, aggregation, ablation analyses, sanity checks, validation.

Everything takes a model with the encoder signature ``forward(eeg, subject_ids=None)`` and float32 EEG
``(batch, n_chans, n_times)``, and returns detached numpy arrays::

    from toolkit.explain import attribute, channel_scores, region_scores

    attr = attribute(encoder, eeg, method="ig", target="similarity", index=conditions,
                     image_embeds=image_embeds, normalize=True, n_steps=32)        # (batch, n_chans, n_times)
    region_scores(attr, ch_names)                                                    # ATM's five regions

captum is imported inside the functions (extra ``explain``); importing this package imports torch only.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # targets
    "TARGETS": "targets",
    "MARGIN_REDUCTIONS": "targets",
    "AttributionTarget": "targets",
    "SimilarityTarget": "targets",
    "MarginTarget": "targets",
    "LogitTarget": "targets",
    "make_target": "targets",
    # attribution
    "METHODS": "attribution",
    "GRADIENT_METHODS": "attribution",
    "PERTURBATION_METHODS": "attribution",
    "attribute": "attribution",
    "attribution_mode": "attribution",
    "deeplift_problems": "attribution",
    # aggregation
    "ATM_GROWING_ENDS_S": "aggregate",
    "FeatureMask": "aggregate",
    "attribute_batched": "aggregate",
    "channel_order": "aggregate",
    "channel_scores": "aggregate",
    "epoch_span": "aggregate",
    "growing_windows": "aggregate",
    "make_feature_mask": "aggregate",
    "region_scores": "aggregate",
    "resolve_groups": "aggregate",
    "sliding_windows": "aggregate",
    "summarize": "aggregate",
    "time_course": "aggregate",
    "window_indices": "aggregate",
    "window_maps": "aggregate",
    "window_scores": "aggregate",
    # ablation
    "AblationResult": "ablation",
    "ablate": "ablation",
    "ablate_windows": "ablation",
    "ablate_regions": "ablation",
    "retrain_analysis": "ablation",
    "build_conditions": "ablation",
    "evaluate_conditions": "ablation",
    "Condition": "ablation",
    "scaled_tsconv_kernels": "ablation",
    # sanity checks
    "SanityResult": "sanity",
    "cascading_randomization": "sanity",
    "label_randomization": "sanity",
    "map_similarity": "sanity",
    "randomization_order": "sanity",
    "randomize_layer": "sanity",
    # validation
    "channel_auroc": "validate",
    "peak_latency": "validate",
    "compare_with_ground_truth": "validate",
    "compare_conditions_with_ground_truth": "validate",
    "information_shares": "validate",
}

__all__ = sorted(_LAZY)


# PEP 562: sub-modules load on first use (they import torch; captum only inside functions).
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
