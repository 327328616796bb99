"""Fixtures for the embedding tests: a tiny open_clip model registered offline, tiny image folders, a toy embedder.

The tiny CLIP (``tests/fixtures/toolkit-tiny-clip.json``: ViT width 32, 1 layer, patch 8, 32 × 32 images; text
width 32, 1 layer, the default BPE vocabulary that ships inside open_clip) gets seeded random weights saved to a
local safetensors checkpoint, which is then loaded through the same ``pretrained=PATH`` route users take.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.embeddings._helpers import write_image_folder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY_MODEL = "toolkit-tiny-clip"


@pytest.fixture(scope="session")
def tiny_model_name() -> str:
    """Register the tiny open_clip config (once per session) and return its name."""
    open_clip = pytest.importorskip("open_clip")
    if TINY_MODEL not in open_clip.list_models():
        open_clip.add_model_config(FIXTURES / f"{TINY_MODEL}.json")
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model_name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random weights of the tiny model in a local safetensors checkpoint."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name)
    path = tmp_path_factory.mktemp("tiny-clip") / "tiny-clip.safetensors"
    save_file(model.state_dict(), str(path))
    return path


@pytest.fixture(scope="session")
def tiny_embedder(tiny_model_name: str, tiny_checkpoint: Path):
    """A ClipEmbedder on CPU built with ``from_open_clip`` from the local checkpoint."""
    from toolkit.embeddings import ClipEmbedder

    return ClipEmbedder.from_open_clip(tiny_model_name, tiny_checkpoint, device="cpu")


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """Three concept folders with two 16 × 16 JPEGs each."""
    return write_image_folder(tmp_path / "images")


@pytest.fixture
def image_paths(image_root: Path) -> list[Path]:
    return sorted(image_root.glob("*/*.jpg"))


@pytest.fixture
def cpu_accelerator():
    """A real single-process ``accelerate.Accelerator(cpu=True)``; its global state is reset afterwards."""
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState, GradientState

    accelerator = accelerate.Accelerator(cpu=True)
    yield accelerator
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
