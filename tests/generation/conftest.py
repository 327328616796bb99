"""Shared tiny generation stacks (built once per test session and worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.generation import BrainVisGenerator, EmbedsToImagePipeline
from toolkit.generation import _tiny as tiny

from ._tiny import SavedSDXL, save_sdxl, sdxl_with_adapter


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """Run the tiny models on one thread: their tensors are too small to gain from more, and on a busy machine
    extra threads make them 10-30 times slower (measured: 0.55 s against 6-20 s for one BrainVis call)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def generation_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generation")


@pytest.fixture(scope="session")
def tokenizer_dir(generation_root: Path) -> Path:
    """CLIP tokenizer files written by the test session."""
    return tiny.write_tiny_clip_tokenizer(generation_root / "tokenizer")


@pytest.fixture(scope="session")
def sdxl_generator(tokenizer_dir: Path) -> EmbedsToImagePipeline:
    """Tiny SDXL(-Turbo-like) + IP-Adapter generator, built in memory."""
    return EmbedsToImagePipeline(sdxl_with_adapter(tokenizer_dir))


@pytest.fixture(scope="session")
def saved_sdxl(generation_root: Path, tokenizer_dir: Path) -> SavedSDXL:
    """The same tiny stack saved to folders laid out like the Hub repositories."""
    return save_sdxl(generation_root / "saved", tokenizer_dir)


@pytest.fixture(scope="session")
def brainvis(tokenizer_dir: Path) -> BrainVisGenerator:
    """Tiny SD-1.5-like cascade."""
    return BrainVisGenerator(tiny.tiny_sd_pipeline(tokenizer_dir))
