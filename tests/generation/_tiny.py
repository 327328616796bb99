"""Tiny generation stacks for the tests: real diffusers/transformers classes, random weights, files in tmp folders.

The tokenizer files (``vocab.json``, ``merges.txt``) and the IP-Adapter ``.safetensors`` are written by the tests
themselves (:mod:`toolkit.generation._tiny`); nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.generation import _tiny as tiny
from toolkit.generation import load_ip_adapter

EMBED_DIM = 16
"""Width of the test's image embeddings (the tiny IP-Adapter's projection input)."""
SIDE = 32
"""Image side used by most tests (16 × 16 latents through the tiny VAE)."""
STEPS = 2
"""Denoising steps of the fast tests."""
IP_SUBFOLDER = "sdxl_models"
IP_WEIGHT = "tiny-ip-adapter.safetensors"


@dataclass(frozen=True)
class SavedSDXL:
    """A tiny SDXL pipeline and IP-Adapter saved like their Hub repositories."""

    pipeline_dir: Path
    ip_adapter_root: Path

    @property
    def ip_adapter(self) -> tuple[str, str, str]:
        """The ``(repository folder, subfolder, weight file)`` triple from_pretrained takes."""
        return (str(self.ip_adapter_root), IP_SUBFOLDER, IP_WEIGHT)

    @property
    def ip_adapter_file(self) -> Path:
        return self.ip_adapter_root / IP_SUBFOLDER / IP_WEIGHT


def sdxl_with_adapter(tokenizer_dir: Path, *, seed: int = 0, adapter_seed: int = 1) -> Any:
    """A tiny SDXL pipeline with a tiny IP-Adapter (EMBED_DIM) loaded through the toolkit's loader."""
    pipe = tiny.tiny_sdxl_pipeline(tokenizer_dir, seed=seed)
    load_ip_adapter(pipe, tiny.tiny_ip_adapter_state_dict(pipe.unet, EMBED_DIM, seed=adapter_seed))
    return pipe


def save_sdxl(root: Path, tokenizer_dir: Path, *, seed: int = 0, adapter_seed: int = 1) -> SavedSDXL:
    """Save a tiny SDXL pipeline (no adapter) and its IP-Adapter file under ``root``."""
    pipe = tiny.tiny_sdxl_pipeline(tokenizer_dir, seed=seed)
    pipe.save_pretrained(root / "sdxl")
    ip_root = root / "ip-adapter"
    tiny.save_ip_adapter(
        tiny.tiny_ip_adapter_state_dict(pipe.unet, EMBED_DIM, seed=adapter_seed), ip_root / IP_SUBFOLDER / IP_WEIGHT
    )
    return SavedSDXL(root / "sdxl", ip_root)


def embeds(n: int, seed: int = 0, dim: int = EMBED_DIM) -> torch.Tensor:
    """Random image embeddings."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def pixels(image: Any) -> np.ndarray:
    """A PIL image as a float array."""
    return np.asarray(image, dtype=np.float64)


def max_diff(a: Any, b: Any) -> float:
    """Largest absolute pixel difference between two PIL images (0–255)."""
    return float(np.abs(pixels(a) - pixels(b)).max())


def mean_diff(a: Any, b: Any) -> float:
    """Mean absolute pixel difference between two PIL images (0–255)."""
    return float(np.abs(pixels(a) - pixels(b)).mean())
