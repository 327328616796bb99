"""Toy models whose correct attributions are known exactly, and tiny registry encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from toolkit.encoders import create_encoder

N_CHANS, N_TIMES = 8, 50
SFREQ = 100.0
TIMES = np.arange(N_TIMES) / SFREQ  # 0 ... 0.49 s
CH_NAMES = ["Fz", "Cz", "Oz", "Pz", "C3", "C4", "O1", "O2"]
READ_CHANNEL, READ_START, READ_STOP = 2, 10, 20  # the toy reads Oz, samples 10-19 (100-190 ms)
TINY_ATM = dict(
    n_chans=N_CHANS, n_times=N_TIMES, sfreq=SFREQ, embed_dim=16, n_heads=2, d_ff=32, n_subjects=3,
    n_filters=4, temporal_kernel=5, pool_kernel=9, pool_stride=3,
)


class WindowReader(nn.Module):
    """A linear "encoder" that reads only channel 2 between samples 10 and 20: its attributions are known."""

    def __init__(self, embed_dim: int = 6, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(READ_STOP - READ_START, embed_dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(embed_dim, READ_STOP - READ_START, generator=gen))
            self.proj.bias.copy_(torch.randn(embed_dim, generator=gen))

    def forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.proj(eeg[:, READ_CHANNEL, READ_START:READ_STOP])


class DenseReader(nn.Module):
    """Flatten -> Linear -> ReLU (module) -> Linear; the first layer's weights only see channel 2, samples 10-19.

    Fully connected, so randomising the first layer spreads the attributions over the whole input (what the
    cascading-randomisation test needs), and DeepLift-compatible (nn.ReLU used once).
    """

    def __init__(self, hidden: int = 12, embed_dim: int = 6, seed: int = 0, masked: bool = True) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(N_CHANS * N_TIMES, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, embed_dim)
        mask = torch.zeros(N_CHANS, N_TIMES)
        mask[READ_CHANNEL, READ_START:READ_STOP] = 1.0
        if not masked:
            mask[:] = 1.0
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(hidden, N_CHANS * N_TIMES, generator=gen) * mask.flatten())
            self.hidden.bias.copy_(torch.rand(hidden, generator=gen))
            self.out.weight.copy_(torch.randn(embed_dim, hidden, generator=gen))

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(self.flatten(eeg))))


def read_mask() -> np.ndarray:
    mask = np.zeros((N_CHANS, N_TIMES), dtype=bool)
    mask[READ_CHANNEL, READ_START:READ_STOP] = True
    return mask


def make_eeg(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, N_CHANS, N_TIMES)).astype(np.float32)


@pytest.fixture
def toy() -> WindowReader:
    return WindowReader()


@pytest.fixture
def dense() -> DenseReader:
    return DenseReader()


@pytest.fixture
def eeg() -> np.ndarray:
    return make_eeg()


@pytest.fixture
def gallery() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((6, 6)).astype(np.float32)


@pytest.fixture(params=["atm-s", "nice"])
def tiny_encoder(request):
    torch.manual_seed(0)
    cfg = TINY_ATM if request.param == "atm-s" else {k: v for k, v in TINY_ATM.items()
                                                     if k not in ("n_heads", "d_ff", "n_subjects")}
    return create_encoder(request.param, **cfg).eval()


# -- a simulated store with embeddings, an encoder folder and a short training run (for the CLI tests) ------------
SIM_ATM = {"d_model": 32, "n_heads": 2, "d_ff": 32, "n_filters": 8, "temporal_kernel": 5, "pool_kernel": 5,
           "pool_stride": 3, "n_subjects": 3}
SIM_EMBED_DIM = 16


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    """The simulator's ``tiny`` dataset as a store, image-embedding files (a fixed projection of the ground-truth
    image features), an encoder folder and a 2-epoch training run."""
    from types import SimpleNamespace

    from toolkit.data import convert, open_store
    from toolkit.data.simulate import load_ground_truth, simulate
    from toolkit.embeddings import save_embeddings

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = tmp_path_factory.mktemp("explain-sim")
        root = base / "tiny"
        simulate(root, "tiny", seed=0, show_progress=False)
        store = base / "store"
        convert(root, store)
        truth = load_ground_truth(root)
        train_set, test_set = open_store(store).load("sub-01", "train"), open_store(store).load("sub-01", "test")
        proj = np.random.default_rng(123).standard_normal((truth["train_features"].shape[1], SIM_EMBED_DIM))
        identity = {"backend": "test", "model": "ground-truth-features", "weights": "projection-123"}
        train_file, test_file = base / "train.safetensors", base / "test.safetensors"
        save_embeddings(train_file, {"image_embeds": (truth["train_features"] @ proj).astype(np.float32)},
                        {"normalize": False, "identity": identity, "image_files": list(train_set.images.image_files)})
        save_embeddings(test_file, {"image_embeds": (truth["test_features"] @ proj).astype(np.float32)},
                        {"normalize": False, "identity": identity, "image_files": list(test_set.images.image_files)})
        torch.manual_seed(0)
        encoder = create_encoder("atm-s", n_chans=63, n_times=250, embed_dim=SIM_EMBED_DIM, **SIM_ATM)
        encoder_dir = encoder.save_pretrained(base / "encoder")
        from toolkit.training import TrainConfig, train

        run_dir = base / "run"
        train(TrainConfig(
            data=str(store), subject="sub-01", image_embeds=str(train_file), test_image_embeds=str(test_file),
            encoder="atm-s", encoder_config=dict(SIM_ATM), epochs=2, batch_size=16, lr=1e-3, val_fraction=0.2,
            loss_normalize=True, progress=False, out=str(run_dir),
        ))
    finally:
        torch.set_num_threads(previous)
    return SimpleNamespace(root=root, store=store, train_embeds=train_file, test_embeds=test_file,
                           encoder_dir=encoder_dir, run_dir=run_dir, truth=truth)
