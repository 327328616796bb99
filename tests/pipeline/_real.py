"""A fake ``atm-things-eeg`` bundle made of tiny parts of the real classes, written to a temporary toolkit home.

- the data: the simulator's ``tiny`` preset in the official layout under ``$EEG_TOOLKIT_DATA/things-eeg``, converted
  to the bundle's store (what ``python -m toolkit data convert`` does);
- CLIP embeddings: random 16-dimensional "image embeddings" of the training and test images (raw, with concept text
  embeddings), written by ``save_embeddings`` with the metadata of ``python -m toolkit embed --out``;
- encoders: ATM-S trained for one epoch by the toolkit trainer (a run directory) and a randomly initialised NICE
  (a bare ``save_pretrained`` folder);
- a randomly initialised diffusion prior (``PriorPipeline.save_pretrained``);
- a tiny SDXL pipeline (``save_pretrained``) and IP-Adapter file, a tiny GIT model and a tiny PixelProjector.

Nothing is downloaded; building takes a few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

EMBED_DIM = 16
IP_WEIGHT = "tiny-ip-adapter.safetensors"
_BUILT: dict[str, RealParts] = {}


@dataclass(frozen=True)
class RealParts:
    """Where the tiny parts are (``home``: EEG_TOOLKIT_HOME; ``data``: EEG_TOOLKIT_DATA)."""

    home: Path
    data: Path
    run: Path
    nice: Path
    prior: Path
    test_embeds: Path
    train_embeds: Path
    sdxl: Path
    ip_adapter: Path
    git: Path
    projector: Path
    seconds: float

    def init_args(self, *extra: str) -> list[str]:
        """``python -m toolkit bundle init atm-things-eeg …`` arguments naming every part (the store by default)."""
        return [
            "bundle", "init", "atm-things-eeg",
            "--encoder", f"atm-s={self.run}", "--encoder", f"nice={self.nice}",
            "--prior", str(self.prior), "--embeddings", str(self.test_embeds),
            "--train-embeddings", str(self.train_embeds),
            "--generator", str(self.sdxl), "--ip-adapter", str(self.ip_adapter), "--ip-adapter-weight", IP_WEIGHT,
            "--captioner", str(self.git), *extra,
        ]


def _embeddings(path: Path, image_set, rng: np.random.Generator, split: str) -> None:
    from toolkit.embeddings import save_embeddings

    n = image_set.n_conditions
    concepts = list(image_set.concepts)
    arrays = {
        # Raw embeddings with the norms of real ones (tens), not unit vectors.
        "image_embeds": (rng.standard_normal((n, EMBED_DIM)) * 4).astype(np.float32),
        "text_embeds": (rng.standard_normal((len(concepts), EMBED_DIM)) * 4).astype(np.float32),
    }
    meta = {
        "kind": "export",
        "normalize": False,
        "identity": {"backend": "test", "model": "random-16", "weights": "none"},
        "image_files": list(image_set.image_files),
        "concepts": concepts,
        "prompt": "This picture is {concept}",
        "split": split,
    }
    save_embeddings(path, arrays, meta)


def build_real_parts(root: Path) -> RealParts:
    """Write every part under ``root`` (the store into the bundle directory of ``root/home``)."""
    import torch

    from toolkit.bundles import bundle_dir
    from toolkit.captions import PixelProjector, PixelProjectorConfig
    from toolkit.data.simulate import simulate
    from toolkit.data.store import convert, open_store
    from toolkit.encoders import create_encoder
    from toolkit.generation import _tiny as tiny
    from toolkit.prior import DiffusionPriorUNet, PriorPipeline, PriorUNetConfig
    from toolkit.training import TrainConfig, train

    from ..captions._tiny import N_VISION_TOKENS, VISION_HIDDEN, save_tiny_git

    start = time.perf_counter()
    home, data, parts = root / "home", root / "data", root / "parts"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EEG_TOOLKIT_HOME", str(home))
        mp.setenv("EEG_TOOLKIT_NO_PROGRESS", "1")
        simulate(data / "things-eeg", "tiny", seed=0, show_progress=False, dtype="float32")
        store_path = bundle_dir("atm-things-eeg") / "store"
        convert(data / "things-eeg", store_path)
        store = open_store(store_path)
        rng = np.random.default_rng(0)
        test_embeds, train_embeds = parts / "test_images.safetensors", parts / "training_images.safetensors"
        _embeddings(test_embeds, store.load("sub-01", "test").images, rng, "test")
        _embeddings(train_embeds, store.load("sub-01", "train").images, rng, "train")

        small = {"n_filters": 8, "temporal_kernel": 13, "pool_kernel": 25, "pool_stride": 5, "embed_dim": EMBED_DIM}
        run = parts / "runs" / "atm-s"
        train(TrainConfig(
            encoder="atm-s", encoder_config={"d_model": 48, "d_ff": 48, "positional_encoding": "none", **small},
            data=str(store_path), subject="sub-01", setting="intra", image_embeds=str(train_embeds),
            test_image_embeds=str(test_embeds), objective="clip", epochs=1, batch_size=16, val_fraction=0.2,
            selection="val_top1", seed=0, out=str(run), progress=False,
        ))
        torch.manual_seed(0)
        nice = create_encoder("nice", **small).eval().save_pretrained(parts / "nice")

        torch.manual_seed(0)
        prior_config = PriorUNetConfig(
            embed_dim=EMBED_DIM, cond_dim=EMBED_DIM, hidden_dims=(32, 16), time_embed_dim=16, dropout=0.0
        )
        prior = PriorPipeline(DiffusionPriorUNet(prior_config).eval()).save_pretrained(parts / "prior")

        tokenizer = tiny.write_tiny_clip_tokenizer(parts / "clip-tokenizer")
        pipe = tiny.tiny_sdxl_pipeline(tokenizer, seed=0)
        pipe.save_pretrained(parts / "sdxl")
        tiny.save_ip_adapter(
            tiny.tiny_ip_adapter_state_dict(pipe.unet, EMBED_DIM, seed=1),
            parts / "ip-adapter" / "sdxl_models" / IP_WEIGHT,
        )
        git = save_tiny_git(parts / "git")
        torch.manual_seed(0)
        projector = PixelProjector(
            PixelProjectorConfig(embed_dim=EMBED_DIM, n_tokens=N_VISION_TOKENS, hidden_size=VISION_HIDDEN)
        ).save_pretrained(parts / "projector")
    return RealParts(
        home=home, data=data, run=run, nice=Path(nice), prior=Path(prior), test_embeds=test_embeds,
        train_embeds=train_embeds, sdxl=parts / "sdxl", ip_adapter=parts / "ip-adapter", git=Path(git),
        projector=Path(projector), seconds=time.perf_counter() - start,
    )


def real_parts(tmp_path_factory: pytest.TempPathFactory) -> RealParts:
    """The parts, built once per session."""
    root = tmp_path_factory.getbasetemp() / "tiny-real-bundle"
    if str(root) not in _BUILT:
        _BUILT[str(root)] = build_real_parts(root)
    return _BUILT[str(root)]


def use_real(monkeypatch: pytest.MonkeyPatch, parts: RealParts) -> None:
    """Point the toolkit at the fake bundle's home and data folder, offline."""
    monkeypatch.setenv("EEG_TOOLKIT_HOME", str(parts.home))
    monkeypatch.setenv("EEG_TOOLKIT_DATA", str(parts.data))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
