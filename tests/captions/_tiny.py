"""Tiny, randomly initialised GIT captioners of the real transformers classes, built offline from local files.

``microsoft/git-large-coco`` pairs ``GitForCausalLM`` with a ``GitProcessor`` made of a ``CLIPImageProcessor`` and a
BERT WordPiece ``BertTokenizer`` (transformers' auto classes map model type ``git`` to exactly these). The tiny
version here uses the same classes, read from files by ``from_pretrained``: a 43-entry ``vocab.txt`` written by the
test, 32 × 32 images cut into 8 × 8 patches (17 vision tokens of width 24) and a 2-layer, 32-wide text decoder. The
weights are drawn with a large initialiser range so different images give different captions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

WORDS = (
    "a an the two cat cats dog bird man woman child car bus street table plate food pizza on in of with at near "
    "sitting standing red blue green white black large small and is are . ,"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
IMAGE_SIZE = 32
PATCH_SIZE = 8
VISION_HIDDEN = 24
N_VISION_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2 + 1  # 17


def write_vocab(folder: str | os.PathLike) -> Path:
    """Write ``vocab.txt`` and a ``tokenizer_config.json`` naming ``BertTokenizer``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def tiny_processor(folder: str | os.PathLike) -> Any:
    """A ``GitProcessor`` (CLIP image processor at 32 px + BERT tokenizer read from ``folder``'s vocab.txt)."""
    from transformers import BertTokenizer, CLIPImageProcessor, GitProcessor

    tokenizer = BertTokenizer.from_pretrained(str(write_vocab(folder)), local_files_only=True)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return GitProcessor(image_processor=image_processor, tokenizer=tokenizer)


def tiny_model(tokenizer: Any, *, seed: int = 0) -> Any:
    """A ``GitForCausalLM`` with tiny vision and text configurations, random weights, evaluation mode."""
    import torch
    from transformers import GitConfig, GitForCausalLM

    config = GitConfig(
        vision_config={
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "initializer_range": 0.5,
        },
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        initializer_range=0.5,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return GitForCausalLM(config).eval()


def save_tiny_git(folder: str | os.PathLike, *, seed: int = 0) -> Path:
    """Write a tiny GIT model and its processor with ``save_pretrained`` (the layout of a Hub snapshot)."""
    import tempfile

    folder = Path(folder)
    with tempfile.TemporaryDirectory() as vocab_dir:
        processor = tiny_processor(vocab_dir)
    model = tiny_model(processor.tokenizer, seed=seed)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


def fake_hub_cache(cache_dir: str | os.PathLike, repo_id: str, snapshot: str | os.PathLike, commit: str) -> Path:
    """Lay out ``snapshot``'s files as huggingface_hub's cache does for ``repo_id`` at ``commit`` (branch ``main``).

    With ``local_files_only=True`` and ``cache_dir`` the real Hub code path then resolves ``repo_id`` (and
    ``revision=commit`` or ``"main"``) without any network access.
    """
    import shutil

    repo = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    target = repo / "snapshots" / commit
    target.mkdir(parents=True, exist_ok=True)
    for path in Path(snapshot).iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    return repo


def random_images(n: int, *, seed: int = 0, size: tuple[int, int] = (40, 48)) -> list[Any]:
    """``n`` random RGB PIL images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8), mode="RGB") for _ in range(n)]


def tiny_blip(*, seed: int = 0) -> tuple[Any, Any]:
    """A tiny ``BlipForConditionalGeneration`` and its ``BlipProcessor`` (another image-to-text model, offline)."""
    import tempfile

    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    with tempfile.TemporaryDirectory() as vocab_dir:
        tokenizer = BertTokenizer.from_pretrained(str(write_vocab(vocab_dir)), local_files_only=True)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}), tokenizer=tokenizer
    )
    config = BlipConfig(
        vision_config={
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": 48,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "encoder_hidden_size": VISION_HIDDEN,
            "bos_token_id": tokenizer.cls_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return BlipForConditionalGeneration(config).eval(), processor
