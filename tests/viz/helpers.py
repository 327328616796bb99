"""Small in-memory trial sets and a counting fake store, shared by the viz, demo and bundle tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.data import ImageSet, TrialSet
from toolkit.data.channels import THINGS_EEG_17


def make_trialset(
    *,
    n_cond: int = 4,
    n_rep: int = 3,
    seed: int = 0,
    images_root: Path | None = None,
    split: str = "test",
    subject: str = "sub-01",
) -> TrialSet:
    """A TrialSet whose every trial differs, with an image set (two images per concept)."""
    rng = np.random.default_rng(seed)
    times = np.arange(50) / 50.0
    data = rng.standard_normal((n_cond, n_rep, len(THINGS_EEG_17), times.size)).astype(np.float32)
    folders = tuple(f"{i + 1:05d}_{split}concept{i}" for i in range((n_cond + 1) // 2))
    files = tuple(f"{folders[c // 2]}/img_{c % 2}.jpg" for c in range(n_cond))
    images = ImageSet(
        root=images_root,
        concept_folders=folders,
        image_files=files,
        condition_concept=np.arange(n_cond) // 2,
    )
    if images_root is not None:
        for idx, rel in enumerate(files):
            path = images_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (20 * idx, 100, 200)).save(path)
    return TrialSet(
        data=data,
        ch_names=list(THINGS_EEG_17),
        sfreq=50.0,
        times=times,
        subject=subject,
        split=split,
        images=images,
        dataset="simulated",
    )


class FakeStore:
    """The part of the store interface the browser uses, counting loads."""

    def __init__(self, sets: dict[tuple[str, str], TrialSet]) -> None:
        self.sets = sets
        self.loads: list[tuple[str, str]] = []

    @property
    def subjects(self) -> list[str]:
        return sorted({s for s, _ in self.sets})

    def splits(self, subject: str) -> list[str]:
        return [sp for s, sp in self.sets if s == subject]

    def load(self, subject: str, split: str, images_root=None) -> TrialSet:
        self.loads.append((subject, split))
        return self.sets[(subject, split)]
