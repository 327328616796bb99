"""Fixtures for the metric tests: small images, the tiny random stand-in networks, the tiny open_clip config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY_CLIP = "toolkit-tiny-clip"


def smooth_images(n: int, side: int = 32, *, seed: int = 0) -> list[np.ndarray]:
    """``n`` distinct smooth random RGB images, uint8 ``(side, side, 3)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = []
    for _ in range(n):
        fx, fy, phase = rng.uniform(0.5, 3.0, 3), rng.uniform(0.5, 3.0, 3), rng.uniform(0, 2 * np.pi, 3)
        img = 0.5 + 0.5 * np.sin(2 * np.pi * (fx * xx[..., None] + fy * yy[..., None]) + phase)
        img = np.clip(img + 0.1 * rng.standard_normal(img.shape), 0, 1)
        out.append((img * 255).round().astype(np.uint8))
    return out


@pytest.fixture(scope="session")
def images() -> list[np.ndarray]:
    """Six 32 × 32 uint8 RGB images."""
    return smooth_images(6)


#: Input sides of the test stand-ins: smaller than the reference ones (256, 342, 224, 255, 224), to keep tests fast.
SMALL_RESIZE = {"alexnet": 64, "inception": 80, "clip": 32, "effnet": 64, "swav": 64}


@pytest.fixture(scope="session")
def tiny_networks() -> dict:
    """The tiny random stand-ins of every feature network at small input sides, built once per session."""
    pytest.importorskip("torchvision")
    pytest.importorskip("open_clip")
    from toolkit.metrics import tiny_stand_in

    return {name: tiny_stand_in(name, resize=side) for name, side in SMALL_RESIZE.items()}


@pytest.fixture(scope="session")
def tiny_clip_name() -> str:
    """Register the tiny open_clip config of tests/fixtures (once) and return its name."""
    open_clip = pytest.importorskip("open_clip")
    if TINY_CLIP not in open_clip.list_models():
        open_clip.add_model_config(FIXTURES / f"{TINY_CLIP}.json")
    return TINY_CLIP
