"""Reconstruction and caption metrics with the MindEye / ATM definitions.

- :func:`evaluate_reconstructions` — PixCorr, SSIM, two-way identification with AlexNet(2), AlexNet(5), Inception
  and CLIP features, EffNet-B1 and SwAV correlation distance over (reconstruction, ground truth) pairs;
  :func:`to_frame` / :func:`per_pair_frame` make tables of results.
- :func:`evaluate_captions` — BLEU-1/4, METEOR, ROUGE-L, sentence-embedding and CLIP similarity.
- The parts: :func:`pixcorr`, :func:`ssim`, :func:`load_images` (:mod:`.image`); :func:`load_network`,
  :class:`FeatureNetwork`, :func:`tiny_stand_in` (:mod:`.features`); :func:`two_way_identification`,
  :func:`correlation_distance` (:mod:`.identification`); :func:`bleu`, :func:`meteor`, :func:`rouge_l`,
  :func:`sentence_similarity`, :func:`clip_similarity` (:mod:`.captions`).

Nothing is downloaded: pretrained networks load from the local torch hub / Hugging Face caches or from files, and
tests use small random networks of the same classes (results then say ``random_weights: True``). Names are
imported on first use, so ``import toolkit.metrics`` pulls in neither torch nor torchvision.

Examples
--------
>>> from toolkit.metrics import evaluate_reconstructions, to_frame
>>> res = evaluate_reconstructions(recon_paths, gt_paths, device="cuda")  # doctest: +SKIP
>>> to_frame({"ATM": res}, labels=True)  # doctest: +SKIP
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # image
    "load_images": "image",
    "load_pairs": "image",
    "to_pil_images": "image",
    "pixcorr": "image",
    "ssim": "image",
    "DEFAULT_IMAGE_SIZE": "image",
    # features
    "FEATURE_METRICS": "features",
    "NETWORKS": "features",
    "FeatureNetwork": "features",
    "FeatureSpec": "features",
    "NetworkSpec": "features",
    "load_network": "features",
    "check_weights": "features",
    "tiny_stand_in": "features",
    # identification
    "two_way_identification": "identification",
    "identification_from_correlation": "identification",
    "correlation_distance": "identification",
    "pearson_matrix": "identification",
    # captions
    "bleu": "captions",
    "meteor": "captions",
    "rouge_l": "captions",
    "sentence_similarity": "captions",
    "clip_similarity": "captions",
    "evaluate_captions": "captions",
    "tokenize": "captions",
    "tiny_clip_embedder": "captions",
    # suite
    "IMAGE_METRICS": "suite",
    "CAPTION_METRICS": "suite",
    "METRIC_INFO": "suite",
    "evaluate_reconstructions": "suite",
    "to_frame": "suite",
    "per_pair_frame": "suite",
}

__all__ = list(_LAZY)


# PEP 562 lazy attributes: keeps `import toolkit.metrics` free of torch, torchvision and NLTK.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
