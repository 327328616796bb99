"""Argument checks and per-image random generators shared by the generators (one clear error per bad input)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ToolkitError


def check_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum], or a :class:`~toolkit.ToolkitError` naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"≥ {minimum}"
        raise ToolkitError(f"{name} must be an integer {bound}, got {value!r}.")
    return int(value)


def check_scale(value: Any, name: str, *, hint: str = "") -> float:
    """``value`` as a finite float ≥ 0 (guidance and adapter scales), or a :class:`~toolkit.ToolkitError`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or value < 0
    ):
        raise ToolkitError(f"{name} must be a finite number ≥ 0{hint}, got {value!r}.")
    return float(value)


def check_strength(value: Any, name: str = "strength") -> float:
    """An img2img strength in (0, 1], or a :class:`~toolkit.ToolkitError`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or not 0 < value <= 1
    ):
        raise ToolkitError(
            f"{name} must be a number in (0, 1] (the fraction of the denoising steps applied to the starting image; "
            f"1 ignores it entirely), got {value!r}."
        )
    return float(value)


def check_img2img_steps(steps: int, strength: float, *, steps_name: str, strength_name: str) -> None:
    """img2img runs ``int(steps · strength)`` steps; at least one is needed."""
    if int(steps * strength) < 1:
        raise ToolkitError(
            f"{steps_name}={steps} with {strength_name}={strength} gives int({steps} × {strength}) = 0 denoising "
            f"steps; raise {steps_name} to at least {math.ceil(1 / strength)} or raise {strength_name}."
        )


def check_size(height: Any, width: Any, *, multiple: int) -> tuple[int | None, int | None]:
    """Image height and width: ``None`` (the pipeline's default) or positive multiples of ``multiple``."""
    out = []
    for name, value in (("height", height), ("width", width)):
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < multiple or value % multiple:
            raise ToolkitError(f"{name} must be None or a positive multiple of {multiple} pixels, got {value!r}.")
        out.append(int(value))
    return out[0], out[1]


def as_float_tensor(value: Any, name: str) -> Any:
    """A torch tensor from a tensor or a NumPy array (floating point, finite), or a :class:`~toolkit.ToolkitError`."""
    import torch

    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise ToolkitError(f"{name} must be a torch.Tensor or a NumPy array, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise ToolkitError(f"{name} must be floating point, got {value.dtype}; convert it with .float().")
    if value.numel() and not bool(torch.isfinite(value).all()):
        raise ToolkitError(f"{name} holds NaN or infinite values; check the model that produced it.")
    return value


def check_embeds(value: Any, dim: int, name: str, *, what: str) -> Any:
    """(batch, dim) embeddings as a float tensor; ``what`` says what fixes ``dim`` (for the message)."""
    value = as_float_tensor(value, name)
    if value.ndim != 2 or value.shape[1] != dim or value.shape[0] < 1:
        hint = f" (add a batch dimension with {name}[None])" if value.ndim == 1 and value.shape[0] == dim else ""
        raise ToolkitError(
            f"{name} has shape {tuple(value.shape)} but {what} expects (batch, {dim}) with batch ≥ 1{hint}."
        )
    return value


def check_prompts(prompt: Any, n: int, name: str = "prompt", *, allow_empty: bool = True) -> list[str]:
    """One prompt per item: a string (used for all) or a sequence of ``n`` strings."""
    prompts = [prompt] * n if isinstance(prompt, str) else prompt
    if (
        not isinstance(prompts, Sequence)
        or isinstance(prompts, (bytes, bytearray))
        or not all(isinstance(p, str) for p in prompts)
    ):
        raise ToolkitError(f"{name} must be a string or a sequence of {n} strings, got {type(prompt).__name__}.")
    if len(prompts) != n:
        raise ToolkitError(
            f"{name} has {len(prompts)} entries but there are {n} items; pass one per item or a string."
        )
    if not allow_empty:
        empty = [i for i, p in enumerate(prompts) if not p.strip()]
        if empty:
            raise ToolkitError(f"{name} has empty entries at positions {empty[:5]}; every item needs a text.")
    return list(prompts)


def make_generators(generator: Any, seed: Any, n_items: int, per_item: int) -> tuple[Any, list[int] | None]:
    """Random generators for ``n_items × per_item`` images, in item-major order.

    Parameters
    ----------
    generator : torch.Generator | list of torch.Generator | None
        As diffusers takes it: one generator for everything, one per image, or ``None``.
    seed : int | Sequence[int] | None
        Instead of ``generator``: an int gives image k (item-major) the seed ``seed + k``; a sequence of ``n_items``
        ints gives image j of item i the seed ``seed[i] + j``. Each image gets its own CPU generator, so an image
        depends only on its seed (not on the batch it is generated in) and CPU and GPU runs draw the same noise.
    n_items, per_item : int
        Number of items and images per item.

    Returns
    -------
    tuple
        ``(generator, seeds)``: a list of ``n_items × per_item`` generators (or the generator given, or ``None``)
        and the per-image seeds (``None`` without ``seed``).
    """
    import torch

    n_images = n_items * per_item
    if seed is not None and generator is not None:
        raise ToolkitError("Pass either generator or seed, not both.")
    if seed is not None:
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + k for k in range(n_images)]
        elif (
            isinstance(seed, Sequence)
            and not isinstance(seed, str)
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seed)
        ):
            if len(seed) != n_items:
                raise ToolkitError(f"seed has {len(seed)} entries but there are {n_items} items; pass one per item.")
            seeds = [int(s) + j for s in seed for j in range(per_item)]
        else:
            raise ToolkitError(f"seed must be an int, a sequence of ints (one per item) or None, got {seed!r}.")
        if any(not 0 <= s < 2**63 for s in seeds):
            raise ToolkitError("seed values must be non-negative integers below 2**63.")
        return [torch.Generator(device="cpu").manual_seed(s) for s in seeds], seeds
    if generator is None or isinstance(generator, torch.Generator):
        return generator, None
    if isinstance(generator, list) and all(isinstance(g, torch.Generator) for g in generator):
        if len(generator) != n_images:
            raise ToolkitError(
                f"generator is a list of {len(generator)} generators but {n_images} images are made ({n_items} × "
                f"{per_item}); pass one per image, a single generator, a seed or None."
            )
        return list(generator), None
    raise ToolkitError(f"generator must be a torch.Generator, a list of them or None, got {type(generator).__name__}.")


def chunk_generators(generators: Any, start: int, stop: int) -> Any:
    """The generators of images ``start:stop`` (a single generator or ``None`` is shared)."""
    return generators[start:stop] if isinstance(generators, list) else generators


__all__ = [
    "as_float_tensor",
    "check_embeds",
    "check_img2img_steps",
    "check_int",
    "check_prompts",
    "check_scale",
    "check_size",
    "check_strength",
    "chunk_generators",
    "make_generators",
]
