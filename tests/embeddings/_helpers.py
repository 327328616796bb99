"""Helpers for the embedding tests: tiny THINGS-style image folders and a torch-free toy embedder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from toolkit.embeddings import l2_normalize, load_image

CONCEPTS = ("aardvark", "ball", "cat_toy")


def write_image_folder(root: Path, *, concepts=CONCEPTS, per_concept: int = 2, size: int = 16, seed: int = 0) -> Path:
    """Write ``NNNNN_concept/concept_XX.jpg`` images of random colours (seeded) and return ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, concept in enumerate(concepts, start=1):
        folder = root / f"{c:05d}_{concept}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_concept):
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{concept}_{i:02d}.jpg", quality=95)
    return root


class ToyEmbedder:
    """A deterministic, torch-free :class:`~toolkit.embeddings.Embedder` (the shape an offline embedder takes).

    Image features are per-channel means, standard deviations and quantiles of the pixels; text features come from
    a hash of the text. ``calls`` counts encode calls so tests can prove a cache hit computed nothing.
    """

    embed_dim = 8

    def __init__(self, name: str = "toy", *, fail_after: int | None = None, ignore_normalize: bool = False):
        self.name = name
        self.calls = {"images": 0, "texts": 0}
        self.fail_after = fail_after
        self.ignore_normalize = ignore_normalize

    @property
    def identity(self) -> dict:
        return {"backend": "toy", "model": self.name, "weights": "none", "preprocess": "rgb-stats"}

    def encode_images(self, images, *, normalize, batch_size=32):
        self.calls["images"] += 1
        rows = []
        for i, image in enumerate(images):
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("simulated crash in the middle of the extraction")
            px = np.asarray(load_image(image), dtype=np.float32) / 255.0
            flat = px.reshape(-1, 3)
            rows.append(np.concatenate([flat.mean(0), flat.std(0), np.quantile(flat, [0.25, 0.75])]) + 0.5)
        out = np.asarray(rows, dtype=np.float32).reshape(len(rows), self.embed_dim)
        return l2_normalize(out) if normalize and not self.ignore_normalize else out

    def encode_texts(self, texts, *, normalize, batch_size=256):
        self.calls["texts"] += 1
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.embed_dim], np.uint8) for t in texts]
        out = np.asarray(rows, dtype=np.float32) / 32.0 + 1.0
        return l2_normalize(out) if normalize else out
