"""Resumable checkpoints: the encoder (``save_pretrained``) plus the trainer's state, written atomically.

A checkpoint directory holds::

    config.json + model.safetensors    the encoder (EEGEncoder.save_pretrained / from_pretrained)
    trainer_state.pt                   optimiser, scheduler, objective (logit scale, head), RNG states, epoch,
                                       best metric, history, data-loader generator
    checkpoint.json                    what it is: epoch, selection, split ids, the run's training configuration

The whole directory is written to a temporary sibling and renamed into place, so ``best/`` and ``last/`` are always
complete. ``trainer_state.pt`` is read with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler that
admits only tensors and plain containers, so no code from a checkpoint file can run.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ToolkitError

__all__ = [
    "CHECKPOINT_META",
    "TRAINER_STATE",
    "capture_rng_state",
    "load_checkpoint",
    "load_encoder_weights",
    "restore_rng_state",
    "save_checkpoint",
]

CHECKPOINT_META = "checkpoint.json"
TRAINER_STATE = "trainer_state.pt"
CHECKPOINT_FORMAT = "eeg-visual-toolkit/train-checkpoint"
CHECKPOINT_VERSION = 1


def capture_rng_state() -> dict[str, Any]:
    """The global random states (torch CPU and CUDA, numpy, Python) as tensors and plain containers."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(obj: Any) -> Any:
    return [_to_lists(v) for v in obj] if isinstance(obj, (tuple, list)) else obj


def _to_tuples(obj: Any) -> Any:
    return tuple(_to_tuples(v) for v in obj) if isinstance(obj, list) else obj


def save_checkpoint(
    directory: str | os.PathLike, *, encoder: Any, state: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write a checkpoint directory atomically (replacing an existing one only once the new one is complete).

    Parameters
    ----------
    directory : str | os.PathLike
        Target, e.g. ``RUN_DIR/last``.
    encoder : EEGEncoder
        The encoder (unwrapped); written with ``save_pretrained``.
    state : dict
        The trainer state (tensors, numbers, strings, lists, dicts).
    meta : dict
        JSON-serialisable description written to ``checkpoint.json``.

    Returns
    -------
    Path
        The directory.
    """
    from ..utils import atomic_path, atomic_write_json

    directory = Path(directory)
    with atomic_path(directory, is_dir=True) as tmp:
        encoder.save_pretrained(tmp)
        torch.save(state, tmp / TRAINER_STATE)
        atomic_write_json(
            tmp / CHECKPOINT_META, {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **meta}
        )
    return directory


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the trainer state and the description of a checkpoint directory.

    Parameters
    ----------
    directory : str | os.PathLike
        A directory written by :func:`save_checkpoint`.

    Returns
    -------
    state : dict
        The trainer state (loaded with ``weights_only=True``).
    meta : dict
        The content of ``checkpoint.json``.
    """
    directory = Path(directory)
    meta_path, state_path = directory / CHECKPOINT_META, directory / TRAINER_STATE
    if not meta_path.is_file() or not state_path.is_file():
        raise ToolkitError(
            f"'{directory}' is not a complete training checkpoint (needs {CHECKPOINT_META} and {TRAINER_STATE}); "
            "start a new run or point --out at the run directory."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ToolkitError(f"'{meta_path}' is not valid JSON ({err}); the checkpoint is damaged.") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ToolkitError(f"'{meta_path}' is not a training checkpoint description.")
    if not isinstance(meta.get("version"), int) or meta["version"] > CHECKPOINT_VERSION:
        raise ToolkitError(
            f"'{directory}' was written by a newer toolkit (checkpoint version {meta.get('version')}); upgrade "
            "eeg-visual-toolkit."
        )
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as err:  # the restricted unpickler raises several types for damaged or foreign files
        raise ToolkitError(
            f"'{state_path}' cannot be read as a trainer state ({type(err).__name__}: {err}); the checkpoint is "
            "damaged."
        ) from None
    if not isinstance(state, dict):
        raise ToolkitError(f"'{state_path}' does not hold a trainer state dict.")
    return state, meta


def load_encoder_weights(encoder: torch.nn.Module, directory: str | os.PathLike) -> None:
    """Load the weights of a checkpoint's ``model.safetensors`` into ``encoder`` (shapes and keys checked)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..encoders.base import WEIGHTS_NAME, check_state_dict

    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise ToolkitError(f"'{path}' is missing; the checkpoint is incomplete.")
    try:
        weights = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise ToolkitError(
            f"'{path}' is not a readable safetensors file ({err}); the checkpoint is damaged."
        ) from None
    describe = getattr(encoder, "_describe", lambda: type(encoder).__name__)
    check_state_dict(encoder, weights, source=str(path), what=describe())
    encoder.load_state_dict(weights)
