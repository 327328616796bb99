"""Shared tiny GIT fixtures (built once per session, offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._tiny import fake_hub_cache, random_images, save_tiny_git

HUB_ID = "microsoft/git-large-coco"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run these tiny models on one thread: on a busy machine, thread hand-offs dominate (20× slower on 2 cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def git_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GIT model + GitProcessor written with save_pretrained."""
    return save_tiny_git(tmp_path_factory.mktemp("tiny-git") / "git")


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory: pytest.TempPathFactory, git_dir: Path) -> Path:
    """A Hugging Face cache folder holding the tiny model as ``microsoft/git-large-coco`` at :data:`COMMIT`."""
    cache = tmp_path_factory.mktemp("hf-cache")
    fake_hub_cache(cache, HUB_ID, git_dir, COMMIT)
    return cache


@pytest.fixture(scope="session")
def captioner(git_dir: Path) -> Any:
    """The tiny GIT loaded through GitCaptioner.from_pretrained (CPU, float32)."""
    from toolkit.captions import GitCaptioner

    return GitCaptioner.from_pretrained(git_dir, device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def images() -> list[Any]:
    """Five random RGB images."""
    return random_images(5, seed=3)
