"""Fixtures for the training tests: the simulator's ``tiny`` dataset as a store, embedding files, tiny configs.

The "image embeddings" are a fixed random projection of the simulator's ground-truth image features (the latent
features that drive the simulated EEG), so a tiny encoder can learn the mapping in a few epochs; concept text
embeddings are the mean of their images' embeddings. Everything runs on one thread (tiny models are faster that way
on two cores shared with other work).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from .helpers import EMBED_DIM, TINY_ATM


@dataclass(frozen=True)
class Sim:
    root: Path
    store: Path
    train_embeds: Path  # raw image_embeds + text_embeds, with metadata
    test_embeds: Path
    train_normalized: Path  # the same, L2-normalised (metadata normalize=True)
    train_npy: Path  # a plain .npy of the raw training embeddings
    image_embeds: np.ndarray
    test_image_embeds: np.ndarray
    text_embeds: np.ndarray


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Module scope: set before the module's own fixtures train anything, restored before other test folders run.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Sim:
    """The ``tiny`` simulated dataset (2 subjects, 20 training concepts x 2 images x 2 repetitions, 8 test concepts
    x 4 repetitions, 63 channels x 250 samples), converted to a store, with embedding files."""
    from toolkit.data import convert
    from toolkit.data.simulate import load_ground_truth, simulate
    from toolkit.embeddings import l2_normalize, save_embeddings

    base = tmp_path_factory.mktemp("training-sim")
    root = base / "tiny"
    simulate(root, "tiny", seed=0, show_progress=False)
    store = base / "store"
    convert(root, store)
    truth = load_ground_truth(root)
    from toolkit.data import open_store

    train_set = open_store(store).load("sub-01", "train")
    test_set = open_store(store).load("sub-01", "test")
    proj = np.random.default_rng(123).standard_normal((truth["train_features"].shape[1], EMBED_DIM))
    image = (truth["train_features"] @ proj).astype(np.float32)
    test = (truth["test_features"] @ proj).astype(np.float32)
    concept = np.asarray(train_set.images.condition_concept)
    text = np.stack([image[concept == c].mean(axis=0) for c in range(concept.max() + 1)]).astype(np.float32)
    identity = {"backend": "test", "model": "ground-truth-features", "weights": "projection-123"}
    train_meta = {
        "normalize": False,
        "identity": identity,
        "image_files": list(train_set.images.image_files),
        "concepts": train_set.images.concepts,
    }
    save_embeddings(base / "train.safetensors", {"image_embeds": image, "text_embeds": text}, train_meta)
    save_embeddings(
        base / "test.safetensors",
        {"image_embeds": test},
        {"normalize": False, "identity": identity, "image_files": list(test_set.images.image_files)},
    )
    save_embeddings(
        base / "train-normalized.safetensors",
        {"image_embeds": l2_normalize(image), "text_embeds": l2_normalize(text)},
        {**train_meta, "normalize": True},
    )
    np.save(base / "train.npy", image)
    return Sim(
        root=root,
        store=store,
        train_embeds=base / "train.safetensors",
        test_embeds=base / "test.safetensors",
        train_normalized=base / "train-normalized.safetensors",
        train_npy=base / "train.npy",
        image_embeds=image,
        test_image_embeds=test,
        text_embeds=text,
    )


@pytest.fixture
def make_config(sim: Sim):
    """Build a small TrainConfig on the simulated store (2 epochs, batch 16, tiny ATM-S, normalised CLIP loss)."""
    from toolkit.training import TrainConfig

    def build(**changes):
        fields = {
            "data": str(sim.store),
            "subject": "sub-01",
            "image_embeds": str(sim.train_embeds),
            "test_image_embeds": str(sim.test_embeds),
            "encoder": "atm-s",
            "encoder_config": dict(TINY_ATM),
            "epochs": 2,
            "batch_size": 16,
            "lr": 1e-3,
            "val_fraction": 0.2,
            "loss_normalize": True,
            "progress": False,
        }
        fields.update(changes)
        return TrainConfig(**fields)

    return build

