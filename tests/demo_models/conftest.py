"""Fixtures of the demo vision model tests: the ``tiny`` simulated dataset and models trained on it once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

# Small enough to train in a few seconds on two cores, large enough to fit the 40 tiny training images.
TINY_TRAINING = {"epochs": 30, "decoder_epochs": 4, "image_size": 64, "embed_dim": 32, "batch_size": 8}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Train with one torch thread: with batches of 8 images, a second thread on a busy two-core machine only waits."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``tiny`` simulated dataset (2 subjects, 20 training and 8 test concepts, 64 px images)."""
    from toolkit.data.simulate import simulate

    root = tmp_path_factory.mktemp("demo-models") / "sim"
    simulate(root, "tiny", seed=0, dtype="float32")
    return root


@pytest.fixture(scope="session")
def tiny_trained(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Demo vision models trained on the tiny dataset: (folder, summary returned by train_demo_vision)."""
    from toolkit.bundles._demo_vision import train_demo_vision

    out = tmp_path_factory.mktemp("demo-vision") / "vision"
    with one_thread():
        summary = train_demo_vision(tiny_root, out, seed=0, progress_bar=False, **TINY_TRAINING)
    return out, summary


@pytest.fixture(scope="session")
def tiny_models(tiny_trained: tuple[Path, dict]):
    """The trained models loaded back from their folder (a DemoVision)."""
    from toolkit.bundles._demo_vision import load_demo_vision

    return load_demo_vision(tiny_trained[0])


@pytest.fixture(scope="session")
def train_images(tiny_root: Path):
    from toolkit.data import ImageSet

    return ImageSet.from_folder(tiny_root / "training_images")


@pytest.fixture(scope="session")
def test_images(tiny_root: Path):
    from toolkit.data import ImageSet

    return ImageSet.from_folder(tiny_root / "test_images")
