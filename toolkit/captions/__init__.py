"""Captions of decoded embeddings and of images: ATM's semantic path (reference/ATM.md §10).

- :class:`PixelProjector` / :class:`PixelProjectorConfig` — one CLIP image embedding (batch, 1024) → GIT vision tokens
  (batch, 257, 1024); :func:`projector_loss` (MSE to the GIT vision-encoder outputs); ``save_pretrained`` /
  ``from_pretrained`` (safetensors + ``config.json``).
- :class:`GitCaptioner` — ``microsoft/git-large-coco`` (or any GIT) captioning vision tokens (the latent path) or
  images; :meth:`GitCaptioner.encode_images` gives the projector's training targets. :func:`caption_images` captions
  images with any transformers image-to-text model.
- :class:`EmbeddingCaptioner` — image embeddings → captions (projector + GIT), a callable that
  :func:`toolkit.generation.generate_with_captions` accepts as its captioner.
- :class:`CaptionLoop` — embedding → (prior) → captions → prompts → (generator): the prompt-from-caption loop,
  composing with :mod:`toolkit.prior` and :mod:`toolkit.generation` through callables.

Decoding is deterministic (greedy by default, beam search on request). Names are imported on first use, so
``import toolkit.captions`` pulls in neither torch nor transformers.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "PixelProjector": "projector",
    "PixelProjectorConfig": "projector",
    "projector_loss": "projector",
    "GitCaptioner": "git",
    "GIT_LARGE_COCO": "git",
    "DEFAULT_MAX_NEW_TOKENS": "git",
    "caption_images": "git",
    "load_images": "git",
    "EmbeddingCaptioner": "loop",
    "CaptionLoop": "loop",
    "CaptionLoopOutput": "loop",
    "format_prompts": "loop",
    "check_projector_fits": "loop",
    "DemoCaptioner": "demo",
}

__all__ = list(_LAZY)


# PEP 562 lazy attributes: keeps `import toolkit.captions` free of torch and transformers.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
