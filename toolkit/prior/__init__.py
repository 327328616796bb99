"""Diffusion prior: EEG embedding → CLIP image embedding (ATM's MLP U-Net denoiser, DDPM, classifier-free guidance).

- :class:`DiffusionPriorUNet` / :class:`PriorUNetConfig` — the denoiser (reference parameter names, 9,675,648
  parameters at the defaults), ``save_pretrained`` / ``from_pretrained``.
- :class:`PriorPipeline` — sampling, ``pipe(eeg_embeds, num_inference_steps=50, guidance_scale=5.0, generator=g)``
  returns :class:`PriorPipelineOutput` with ``image_embeds``.
- :func:`prior_loss` — one training step's loss (ε-MSE with whole-batch condition dropout).
- :func:`load_reference_prior` — a reference ATM checkpoint, its configuration read from the tensor shapes.

Names are imported on first use, so ``import toolkit.prior`` pulls in neither torch nor diffusers.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "DiffusionPriorUNet": "unet",
    "PriorUNetConfig": "unet",
    "read_state_dict": "unet",
    "PriorPipeline": "pipeline",
    "PriorPipelineOutput": "pipeline",
    "default_scheduler": "pipeline",
    "prior_loss": "loss",
    "config_from_state_dict": "_parity",
    "load_reference_prior": "_parity",
}

__all__ = list(_LAZY)


# PEP 562 lazy attributes: keeps `import toolkit.prior` free of torch and diffusers.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
