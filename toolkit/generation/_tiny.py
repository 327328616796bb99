"""Tiny, randomly initialised diffusers components of the real classes, for tests, benchmarks and offline demos.

They follow diffusers' own fast tests (UNets with block_out_channels (32, 64) and one layer per block, 32-wide
two-layer CLIP text encoders, a two-level AutoencoderKL) and need no download: the CLIP tokenizer's ``vocab.json``
and ``merges.txt`` are written by :func:`write_tiny_clip_tokenizer` (a byte-level vocabulary with no merges, so any
text tokenises). The images they make are noise-like; only shapes, plumbing and determinism are meaningful.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..utils import atomic_write_text
from ._components import diffusers_module
from .ip_adapter import ip_adapter_shapes

TEXT_HIDDEN = 32
"""Hidden width of the tiny CLIP text encoders."""

SDXL_CROSS_ATTENTION = 2 * TEXT_HIDDEN  # SDXL concatenates the two text encoders' hidden states
_TIME_IDS = 6  # SDXL's micro-conditioning: original size, crop top-left, target size


def write_tiny_clip_tokenizer(folder: str | os.PathLike, *, model_max_length: int = 77) -> Path:
    """Write a CLIP tokenizer (``vocab.json``, ``merges.txt``, ``tokenizer_config.json``) to ``folder``.

    The vocabulary holds the two special tokens and the 256 byte-level symbols, alone and with CLIP's end-of-word
    suffix ``</w>`` (514 entries); there are no merges.

    Parameters
    ----------
    folder : str | os.PathLike
        Destination (created).
    model_max_length : int
        Padded prompt length (77 as in CLIP).

    Returns
    -------
    Path
        ``folder``, loadable with ``transformers.CLIPTokenizer.from_pretrained(folder)``.
    """
    from tokenizers.pre_tokenizers import ByteLevel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for symbol in symbols:
            vocab[symbol + suffix] = len(vocab)
    atomic_write_text(folder / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    atomic_write_text(folder / "merges.txt", "#version: 0.2\n")
    atomic_write_text(
        folder / "tokenizer_config.json",
        json.dumps({"model_max_length": model_max_length, "tokenizer_class": "CLIPTokenizer"}),
    )
    return folder


def _text_config(projection: bool) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=600,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=TEXT_HIDDEN if projection else 512,
    )


def tiny_vae(*, seed: int = 0) -> Any:
    """A two-level AutoencoderKL (block_out_channels (32, 64), 4 latent channels, scale factor 2)."""
    import torch

    diffusers = diffusers_module()
    torch.manual_seed(seed)
    return diffusers.AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=32,
    )


def tiny_sdxl_pipeline(tokenizer_dir: str | os.PathLike, *, seed: int = 0, sample_size: int = 16) -> Any:
    """A tiny ``StableDiffusionXLPipeline`` configured like SDXL-Turbo (Euler ancestral, trailing timesteps).

    Parameters
    ----------
    tokenizer_dir : str | os.PathLike
        A folder written by :func:`write_tiny_clip_tokenizer`.
    seed : int
        Seed of the random weights.
    sample_size : int
        Latent side; the default image side is ``2 × sample_size`` (the tiny VAE's scale factor is 2).

    Returns
    -------
    diffusers.StableDiffusionXLPipeline
        On the CPU in float32, progress bar off, no IP-Adapter.
    """
    import torch
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    diffusers = diffusers_module()
    torch.manual_seed(seed)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=8 * _TIME_IDS + TEXT_HIDDEN,
        cross_attention_dim=SDXL_CROSS_ATTENTION,
    )
    scheduler = diffusers.EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    vae = tiny_vae(seed=seed)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(False))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(True))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    pipe = diffusers.StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sd_pipeline(tokenizer_dir: str | os.PathLike, *, seed: int = 0, sample_size: int = 16) -> Any:
    """A tiny ``StableDiffusionPipeline`` configured like SD 1.5 (PNDM/PLMS scheduler, no safety checker).

    Parameters
    ----------
    tokenizer_dir : str | os.PathLike
        A folder written by :func:`write_tiny_clip_tokenizer`.
    seed : int
        Seed of the random weights.
    sample_size : int
        Latent side; the default image side is ``2 × sample_size``.

    Returns
    -------
    diffusers.StableDiffusionPipeline
        On the CPU in float32, progress bar off. Text hidden size 32, prompt length 77.
    """
    import torch
    from transformers import CLIPTextModel, CLIPTokenizer

    diffusers = diffusers_module()
    torch.manual_seed(seed)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=(2, 4),
    )
    scheduler = diffusers.PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    vae = tiny_vae(seed=seed)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(False))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_ip_adapter_state_dict(unet: Any, image_embed_dim: int = 16, *, seed: int = 0, std: float = 0.5) -> dict:
    """Random plain IP-Adapter weights fitting ``unet``: ``{"image_proj": {...}, "ip_adapter": {...}}``.

    Parameters
    ----------
    unet : diffusers.UNet2DConditionModel
        The UNet (its cross-attention layers fix the shapes).
    image_embed_dim : int
        Width of the image embeddings the adapter projects.
    seed : int
        Seed of the weights.
    std : float
        Standard deviation of the random projections (large enough that the embedding visibly steers the image).

    Returns
    -------
    dict
        The nested state dict diffusers' ``load_ip_adapter`` takes.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    state: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, shape in ip_adapter_shapes(unet, image_embed_dim).items():
        group, _, name = key.partition(".")
        if name == "norm.weight":
            value = torch.ones(shape)
        elif name.endswith("bias"):
            value = torch.zeros(shape)
        else:
            value = torch.randn(shape, generator=gen) * std
        state[group][name] = value
    return state


def save_ip_adapter(state: dict, path: str | os.PathLike) -> Path:
    """Write a nested IP-Adapter state dict as ``.safetensors`` in the h94 layout (``image_proj.*``, ``ip_adapter.*``).

    Returns the path written (atomically).
    """
    from safetensors.torch import save_file

    from ..utils import atomic_path

    flat = {f"{group}.{name}": t.contiguous() for group, tensors in state.items() for name, t in tensors.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={"format": "pt"})
    return path


__all__ = [
    "SDXL_CROSS_ATTENTION",
    "TEXT_HIDDEN",
    "save_ip_adapter",
    "tiny_ip_adapter_state_dict",
    "tiny_sd_pipeline",
    "tiny_sdxl_pipeline",
    "tiny_vae",
    "write_tiny_clip_tokenizer",
]
