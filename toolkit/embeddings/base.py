"""The :class:`Embedder` protocol shared by every image/text embedder, and small helpers for implementing it.

An embedder maps stimulus images and texts into one shared space. Two things make its output reusable and safe to
cache:

- every ``encode_*`` call says whether the result is L2-normalised through an explicit ``normalize`` argument
  (normalised embeddings are what retrieval compares; raw ones are what IP-Adapter generation consumes);
- :attr:`Embedder.identity` describes *everything* about the embedder that changes its output (model, weights,
  preprocessing, precision). Caches are keyed by it, so two embedders with equal identities must produce the same
  embeddings for the same input.

Implementing the protocol needs no base class: a class with ``embed_dim``, ``identity``, ``encode_images`` and
``encode_texts`` is an :class:`Embedder` (checked structurally). :func:`load_image`, :func:`l2_normalize` and
:func:`format_prompts` cover the parts every implementation needs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import numpy as np

from ..errors import ToolkitError

if TYPE_CHECKING:
    from PIL import Image

#: Text prompt of the ATM reference code; ``{concept}`` is replaced by the concept text (underscores kept).
DEFAULT_PROMPT = "This picture is {concept}"

#: What ``encode_images`` accepts per image: an opened PIL image or the path of an image file.
ImageInput = Union["Image.Image", str, os.PathLike]


@runtime_checkable
class Embedder(Protocol):
    """An image and text embedder (open_clip, or an offline embedder for simulated images).

    Attributes
    ----------
    embed_dim : int
        Length of every embedding.
    identity : dict
        JSON-serialisable description of everything that changes the embeddings: at least ``"model"`` (a name) and
        ``"weights"`` (a pretrained tag or a checksum of the weights); preprocessing and precision where they
        apply. Equal identities promise equal embeddings; caches are keyed by it.
    """

    @property
    def embed_dim(self) -> int:
        """Length of every embedding."""
        ...

    @property
    def identity(self) -> dict[str, Any]:
        """Everything that changes the embeddings, as a JSON-serialisable dict (the cache key)."""
        ...

    def encode_images(self, images: Sequence[ImageInput], *, normalize: bool, batch_size: int = 32) -> np.ndarray:
        """Embed images.

        Parameters
        ----------
        images : sequence of PIL.Image.Image | str | os.PathLike
            Opened images or image file paths, in the order of the output rows.
        normalize : bool
            L2-normalise every row (retrieval) or return raw embeddings (generation).
        batch_size : int
            Images per forward pass; the result does not depend on it beyond float rounding.

        Returns
        -------
        image_embeds : np.ndarray of float32, shape (n_images, embed_dim)
            One row per image.
        """
        ...

    def encode_texts(self, texts: Sequence[str], *, normalize: bool, batch_size: int = 256) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts : sequence of str
            The texts, in the order of the output rows.
        normalize : bool
            L2-normalise every row or return raw embeddings.
        batch_size : int
            Texts per forward pass.

        Returns
        -------
        text_embeds : np.ndarray of float32, shape (n_texts, embed_dim)
            One row per text.
        """
        ...


def load_image(image: ImageInput) -> Image.Image:
    """Open an image file (or take an opened image) and return it fully decoded in RGB.

    Parameters
    ----------
    image : PIL.Image.Image | str | os.PathLike
        The image or its path.

    Returns
    -------
    PIL.Image.Image
        An RGB image whose pixels are loaded (so a truncated file fails here, not later).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    path = Path(image)
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise ToolkitError(f"Image file '{path}' does not exist; check the image folder.") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ToolkitError(
            f"Image file '{path}' cannot be read as an image ({err}); replace or remove the file."
        ) from None


def l2_normalize(x: np.ndarray, *, eps: float = 1e-12) -> np.ndarray:
    """Scale every row of ``x`` to unit Euclidean norm (rows of zeros stay zero).

    Parameters
    ----------
    x : np.ndarray, shape (n, embed_dim)
        Embeddings.
    eps : float
        Lower bound on the norm, as in :func:`torch.nn.functional.normalize`.

    Returns
    -------
    np.ndarray of float32, shape (n, embed_dim)
        The normalised rows.
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def format_prompts(concepts: Sequence[str], prompt: str = DEFAULT_PROMPT) -> list[str]:
    """Turn concept texts into prompts by replacing ``{concept}`` in ``prompt``.

    Parameters
    ----------
    concepts : sequence of str
        Concept texts (``"aircraft_carrier"``; underscores are kept, as in the ATM reference code).
    prompt : str
        Template holding ``{concept}`` exactly once or more; no other field is interpreted.

    Returns
    -------
    list of str
        One prompt per concept.
    """
    if not isinstance(prompt, str) or "{concept}" not in prompt:
        raise ToolkitError(
            f"The prompt {prompt!r} holds no '{{concept}}' placeholder; pass a template such as {DEFAULT_PROMPT!r}."
        )
    if isinstance(concepts, str):
        raise ToolkitError("Concepts must be a list of strings, not one string; wrap it in a list.")
    # str.replace rather than str.format: a concept or prompt holding other braces must not be interpreted.
    return [prompt.replace("{concept}", str(concept)) for concept in concepts]


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` as canonical JSON (sorted keys, no spaces), the form that is hashed for cache keys."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ToolkitError(
            f"An embedder identity must be JSON-serialisable (strings, numbers, lists, dicts): {err}."
        ) from None


def identity_digest(identity: dict[str, Any]) -> str:
    """Return the SHA-256 hex digest of an embedder identity in canonical JSON form."""
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()


def check_embeddings(embeds: Any, *, n: int, embed_dim: int, what: str) -> np.ndarray:
    """Check an embedder's output and return it as a float32 ``(n, embed_dim)`` array.

    Parameters
    ----------
    embeds : array-like
        What the embedder returned.
    n : int
        Expected number of rows.
    embed_dim : int
        Expected row length.
    what : str
        Which call produced it, for the error message (``"MyEmbedder.encode_images"``).

    Returns
    -------
    np.ndarray of float32, shape (n, embed_dim)
        The embeddings.
    """
    arr = np.asarray(embeds)
    if arr.ndim != 2 or arr.shape != (n, embed_dim):
        raise ToolkitError(
            f"{what} returned an array of shape {arr.shape} but ({n}, {embed_dim}) was expected; "
            "fix the embedder so it returns one embed_dim-long row per input."
        )
    if not np.isfinite(arr).all():
        raise ToolkitError(f"{what} returned NaN or infinite values; check the model weights and precision.")
    return arr.astype(np.float32, copy=False)


def encode_images_sharded(
    embedder: Embedder,
    images: Sequence[ImageInput],
    *,
    normalize: bool,
    batch_size: int = 32,
    accelerator: Any = None,
) -> np.ndarray:
    """Embed images, splitting the list over the processes of an ``accelerate.Accelerator`` if one is given.

    Every process embeds one contiguous shard (the shards are padded with the last image to equal length, because
    collective gathers need equal shapes), the shards are gathered, the padding rows are dropped, and every process
    returns the full array in input order. With one process (or ``accelerator=None``) this is simply
    ``embedder.encode_images``.

    Parameters
    ----------
    embedder : Embedder
        The embedder; on several GPUs each process must hold its own copy on ``accelerator.device``.
    images : sequence of PIL.Image.Image | str | os.PathLike
        The images, in output order.
    normalize : bool
        L2-normalise every row or return raw embeddings.
    batch_size : int
        Images per forward pass on each process.
    accelerator : accelerate.Accelerator | None
        The accelerator of an ``accelerate launch`` run, or ``None`` for a single process.

    Returns
    -------
    image_embeds : np.ndarray of float32, shape (n_images, embed_dim)
        Identical on every process.
    """
    images = list(images)
    n = len(images)
    what = f"{type(embedder).__name__}.encode_images"
    if accelerator is None or n == 0:
        out = embedder.encode_images(images, normalize=normalize, batch_size=batch_size)
        return check_embeddings(out, n=n, embed_dim=embedder.embed_dim, what=what)

    import torch

    world = int(accelerator.num_processes)
    # Same split as accelerate's split_between_processes: the first n % world processes get one extra item.
    base, extra = divmod(n, world)
    counts = [base + (1 if rank < extra else 0) for rank in range(world)]
    width = max(counts) if world > 1 else n
    with accelerator.split_between_processes(images, apply_padding=True) as shard:
        local = embedder.encode_images(list(shard), normalize=normalize, batch_size=batch_size)
    local = check_embeddings(local, n=width, embed_dim=embedder.embed_dim, what=what)
    # `gather` rather than `gather_for_metrics`: the latter trims by a prepared dataloader's remainder, which does
    # not exist for a split list; the padding is dropped below from the known per-process counts instead.
    gathered = accelerator.gather(torch.from_numpy(np.ascontiguousarray(local)).to(accelerator.device))
    gathered = gathered.detach().cpu().numpy()
    rows = [gathered[rank * width : rank * width + counts[rank]] for rank in range(world)]
    return np.concatenate(rows, axis=0).astype(np.float32, copy=False)
