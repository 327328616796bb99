"""Image generators built from diffusers pipelines: CLIP embeddings, VAE latents or text embeddings → images.

- :class:`EmbedsToImagePipeline` — SDXL(-Turbo) + a plain IP-Adapter fed precomputed (unnormalised ViT-H-14) image
  embeddings: ATM's reconstruction stage II. :func:`load_ip_adapter` loads an adapter after checking its shapes.
- :class:`LowLevelEncoder` (EEG → SDXL-VAE latent, ATM's low-level path) with :func:`low_level_loss` and
  :func:`encode_image_latents` (training targets), and :class:`LowLevelRefiner` (decode the latent into a blurry
  image, then SDXL img2img with the IP-Adapter).
- :func:`caption_prompt` and :func:`generate_with_captions` — a caption (from any captioner) as the SDXL prompt.
- :class:`BrainVisGenerator` — SD 1.5 conditioned on predicted 77 × 768 CLIP text hidden states, then img2img
  prompted by the predicted class phrase (BrainVis' cascade).

Every generator wraps an injected diffusers pipeline; ``from_pretrained`` classmethods load the real models from
Hub ids or local folders (float16 on CUDA, float32 on the CPU). Names are imported on first use, so
``import toolkit.generation`` pulls in neither torch nor diffusers.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "EmbedsToImagePipeline": "ip_adapter",
    "EmbedsToImageOutput": "ip_adapter",
    "load_ip_adapter": "ip_adapter",
    "read_ip_adapter_file": "ip_adapter",
    "check_ip_adapter_state": "ip_adapter",
    "ip_adapter_shapes": "ip_adapter",
    "ip_adapter_embed_dim": "ip_adapter",
    "SDXL_TURBO": "ip_adapter",
    "IP_ADAPTER_SDXL_VIT_H": "ip_adapter",
    "LowLevelEncoder": "low_level",
    "LowLevelEncoderConfig": "low_level",
    "LowLevelRefiner": "low_level",
    "LowLevelOutput": "low_level",
    "low_level_loss": "low_level",
    "encode_image_latents": "low_level",
    "decode_latents": "low_level",
    "SDXL_BASE": "low_level",
    "reference_parameter_count": "low_level",
    "caption_prompt": "semantic",
    "generate_with_captions": "semantic",
    "CaptionedImagesOutput": "semantic",
    "BrainVisGenerator": "brainvis",
    "BrainVisOutput": "brainvis",
    "SD15": "brainvis",
    "DemoDecoder": "demo",
}

__all__ = list(_LAZY)


# PEP 562 lazy attributes: keeps `import toolkit.generation` free of torch, diffusers and transformers.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
