"""Self-describing on-disk caches of image and concept-text embeddings.

A cache file is named by a SHA-256 over *everything* that changes its content, and stores that description inside:

- the embedder's :attr:`~toolkit.embeddings.Embedder.identity` (model, pretrained tag or checkpoint checksum,
  precision, preprocessing);
- the normalisation flag (normalised embeddings for retrieval and raw ones for IP-Adapter generation are separate
  files, side by side, never the one file name of the ATM reference code);
- for images, a fingerprint of the image list: each file's path relative to the image root, its size and its
  modification time in nanoseconds (``fingerprint="stat"``, the default: one ``stat`` per file, well under a second
  for THINGS-EEG's 16,540 training images; renaming the root folder keeps the cache, touching or re-copying a file
  without preserving times costs a recomputation), or a SHA-256 of each file's bytes (``fingerprint="content"``:
  reads every image, for caches that must survive copies);
- for texts, the prompt template and the ordered concept list.

On a hit the stored description is compared with the request; a file whose content belongs to another request
(another model, the other normalisation, another image list — a name collision or a hand-copied file) is refused
with an error naming it and is never silently reused; ``refresh=True`` (CLI ``--refresh``) recomputes and replaces
it. Files are safetensors (no code runs on load), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import ImageSet
from ..errors import ToolkitError
from ..utils import atomic_path
from ..utils import cache_dir as _cache_root
from .base import DEFAULT_PROMPT, Embedder, canonical_json, check_embeddings, encode_images_sharded, format_prompts

#: Version of the cache layout; part of every key, so a layout change never reads old files.
SCHEMA_VERSION = 1
#: Image-list fingerprint modes.
FINGERPRINTS = ("stat", "content")
#: Suffixes :func:`save_embeddings` can write.
EXPORT_SUFFIXES = (".safetensors", ".npz")
_META_KEY = "eeg_visual_toolkit.embeddings"
_NORM_ATOL = 1e-3


@dataclass(frozen=True)
class CachedEmbeddings:
    """Embeddings with the cache file they came from or went to.

    Attributes
    ----------
    embeds : np.ndarray of float32, shape (n, embed_dim)
        The embeddings, one row per image (in :class:`~toolkit.data.ImageSet` order) or per concept.
    path : Path
        The cache file.
    hit : bool
        True if read from the cache, False if computed (and written).
    metadata : dict
        The description stored in the file (identity, normalisation, image list or prompt and concepts, ...).
    """

    embeds: np.ndarray
    path: Path
    hit: bool
    metadata: dict = field(repr=False)

    @property
    def normalize(self) -> bool:
        """Whether the rows are L2-normalised."""
        return bool(self.metadata["normalize"])


# -- public API ------------------------------------------------------------------------------------------------------


def image_set_fingerprint(image_set: ImageSet, *, mode: str = "stat") -> str:
    """Return a digest of an image set's files: relative paths with sizes and mtimes, or with content hashes.

    Parameters
    ----------
    image_set : ImageSet
        The set; it must have its image folder attached.
    mode : str
        ``"stat"`` (path, size, mtime; fast) or ``"content"`` (path and SHA-256 of the bytes; reads every file).

    Returns
    -------
    str
        SHA-256 hex digest.
    """
    if mode not in FINGERPRINTS:
        raise ToolkitError(f"Unknown image fingerprint {mode!r}; use one of {', '.join(FINGERPRINTS)}.")
    digest = hashlib.sha256(f"{mode}\n".encode())
    for index, rel in enumerate(image_set.image_files):
        path = image_set.image_path(index)
        try:
            if mode == "stat":
                st = os.stat(path)
                token = f"{st.st_size}:{st.st_mtime_ns}"
            else:
                token = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            raise ToolkitError(
                f"Image file '{path}' of the image set does not exist; check the image folder or rebuild the set."
            ) from None
        except OSError as err:
            raise ToolkitError(f"Image file '{path}' cannot be read ({err.strerror or err}).") from None
        digest.update(f"{rel}\0{token}\n".encode())
    return digest.hexdigest()


def image_cache_path(
    embedder: Embedder,
    image_set: ImageSet,
    *,
    normalize: bool,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str = "stat",
) -> Path:
    """Return the cache file that :func:`embed_image_set` reads or writes for this request.

    Parameters are those of :func:`embed_image_set`.

    Returns
    -------
    Path
        ``<cache_dir>/images-<model>-<norm|raw>-<key>.safetensors``.
    """
    request = _image_request(embedder, image_set, normalize, fingerprint)
    return _path_for(cache_dir, request)


def concept_cache_path(
    embedder: Embedder,
    concepts: Sequence[str] | ImageSet,
    *,
    normalize: bool,
    prompt: str = DEFAULT_PROMPT,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Return the cache file that :func:`embed_concepts` reads or writes for this request.

    Parameters are those of :func:`embed_concepts`.

    Returns
    -------
    Path
        ``<cache_dir>/texts-<model>-<norm|raw>-<key>.safetensors``.
    """
    request, _ = _text_request(embedder, concepts, normalize, prompt)
    return _path_for(cache_dir, request)


def embed_image_set(
    embedder: Embedder,
    image_set: ImageSet,
    *,
    normalize: bool,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    accelerator: Any = None,
    refresh: bool = False,
    fingerprint: str = "stat",
) -> CachedEmbeddings:
    """Embed every image of an image set, reading the cache when the same request was computed before.

    Parameters
    ----------
    embedder : Embedder
        The embedder (for example :meth:`ClipEmbedder.from_open_clip <toolkit.embeddings.ClipEmbedder>`).
    image_set : ImageSet
        The images, with their folder attached; rows follow its condition order.
    normalize : bool
        ``True``: L2-normalised rows (retrieval). ``False``: raw embeddings (generation, IP-Adapter). The two are
        cached in separate files.
    cache_dir : str | os.PathLike | None
        Cache folder (default: ``toolkit.utils.cache_dir("embeddings")``, below ``$EEG_TOOLKIT_HOME``).
    batch_size : int
        Images per forward pass (per process); not part of the key since it does not change the result beyond
        float rounding.
    accelerator : accelerate.Accelerator | None
        Shard the images over the processes of an ``accelerate launch`` run and gather them in order; the main
        process writes the file. ``None``: one process.
    refresh : bool
        Recompute and replace the cache file even if it exists (also the way out of a refused file).
    fingerprint : str
        How the image list is keyed: ``"stat"`` (relative path, size, mtime) or ``"content"`` (file hashes).

    Returns
    -------
    CachedEmbeddings
        ``embeds`` of shape (n_conditions, embed_dim), the cache path and whether it was a hit.
    """
    request = _image_request(embedder, image_set, normalize, fingerprint)
    path = _path_for(cache_dir, request)
    n = image_set.n_conditions
    if path.exists() and not refresh:
        return _read_hit(path, request, "image_embeds", n, embedder.embed_dim)
    images = [image_set.image_path(i) for i in range(n)]
    embeds = encode_images_sharded(
        embedder, images, normalize=normalize, batch_size=batch_size, accelerator=accelerator
    )
    _check_normalized(embeds, normalize, f"{type(embedder).__name__}.encode_images")
    metadata = {
        **request,
        "key": _key(request),
        "n": n,
        "embed_dim": int(embeds.shape[1]),
        "image_files": list(image_set.image_files),
        **_provenance(),
    }
    _write_from_main(path, {"image_embeds": embeds}, metadata, accelerator)
    return CachedEmbeddings(embeds=embeds, path=path, hit=False, metadata=metadata)


def embed_concepts(
    embedder: Embedder,
    concepts: Sequence[str] | ImageSet,
    *,
    normalize: bool,
    prompt: str = DEFAULT_PROMPT,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    accelerator: Any = None,
    refresh: bool = False,
) -> CachedEmbeddings:
    """Embed concept texts through a prompt template, reading the cache when possible.

    Parameters
    ----------
    embedder : Embedder
        The embedder.
    concepts : sequence of str | ImageSet
        Concept texts, or an image set whose :attr:`~toolkit.data.ImageSet.concepts` are used (one row per
        concept, in concept-index order).
    normalize : bool
        L2-normalise every row (ATM's text features are normalised) or return raw embeddings.
    prompt : str
        Template with ``{concept}`` (default ATM's ``"This picture is {concept}"``); part of the cache key.
    cache_dir : str | os.PathLike | None
        Cache folder (default: ``toolkit.utils.cache_dir("embeddings")``).
    batch_size : int
        Texts per forward pass.
    accelerator : accelerate.Accelerator | None
        In an ``accelerate launch`` run only the main process writes the file (texts are cheap and are embedded
        on every process).
    refresh : bool
        Recompute and replace the cache file even if it exists.

    Returns
    -------
    CachedEmbeddings
        ``embeds`` of shape (n_concepts, embed_dim), the cache path and whether it was a hit.
    """
    request, names = _text_request(embedder, concepts, normalize, prompt)
    path = _path_for(cache_dir, request)
    if path.exists() and not refresh:
        return _read_hit(path, request, "text_embeds", len(names), embedder.embed_dim)
    texts = format_prompts(names, prompt)
    what = f"{type(embedder).__name__}.encode_texts"
    embeds = check_embeddings(
        embedder.encode_texts(texts, normalize=normalize, batch_size=batch_size),
        n=len(texts),
        embed_dim=embedder.embed_dim,
        what=what,
    )
    _check_normalized(embeds, normalize, what)
    metadata = {
        **request,
        "key": _key(request),
        "n": len(names),
        "embed_dim": int(embeds.shape[1]),
        "concepts": names,
        **_provenance(),
    }
    _write_from_main(path, {"text_embeds": embeds}, metadata, accelerator)
    return CachedEmbeddings(embeds=embeds, path=path, hit=False, metadata=metadata)


def save_embeddings(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> Path:
    """Write named float32 arrays and a JSON description atomically (``.safetensors`` or ``.npz``).

    Parameters
    ----------
    path : str | os.PathLike
        Target file; its suffix chooses the format.
    arrays : dict of str to np.ndarray
        For example ``{"image_embeds": ..., "text_embeds": ...}``.
    metadata : dict
        JSON-serialisable description, stored inside the file.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ToolkitError(f"Cannot write embeddings to '{path}': use a {' or '.join(EXPORT_SUFFIXES)} file name.")
    meta_text = canonical_json(metadata)
    tensors = {name: np.ascontiguousarray(arr, dtype=np.float32) for name, arr in arrays.items()}
    with atomic_path(path) as tmp:
        if suffix == ".safetensors":
            from safetensors.numpy import save_file

            save_file(tensors, str(tmp), metadata={_META_KEY: meta_text})
        else:
            with open(tmp, "wb") as fh:  # a file object, so numpy does not append ".npz" to the temporary name
                np.savez(fh, **tensors, **{_META_KEY: np.array(meta_text)})
    return path


def load_embeddings(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_embeddings` (a cache file or an ``embed --out`` export).

    Parameters
    ----------
    path : str | os.PathLike
        A ``.safetensors`` or ``.npz`` file.

    Returns
    -------
    arrays : dict of str to np.ndarray
        The stored arrays (``image_embeds`` and/or ``text_embeds``).
    metadata : dict
        The stored description (``normalize``, ``identity``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"Embedding file '{path}' does not exist.")
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ToolkitError(f"Embedding file '{path}' is not a {' or '.join(EXPORT_SUFFIXES)} file.")
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as fh:
                meta_text = (fh.metadata() or {}).get(_META_KEY)
                arrays = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118 (not a dict)
        else:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta_arr = arrays.pop(_META_KEY, None)
            meta_text = None if meta_arr is None else str(meta_arr)
        metadata = json.loads(meta_text) if meta_text is not None else None
    except Exception as err:  # safetensors, zipfile, numpy and json raise many types for a damaged file
        raise ToolkitError(
            f"Embedding file '{path}' is damaged or not an embedding file ({type(err).__name__}); delete it "
            "(for a cache file: pass refresh=True / --refresh to recompute it)."
        ) from None
    if not isinstance(metadata, dict):
        raise ToolkitError(
            f"Embedding file '{path}' carries no toolkit metadata, so what it holds (model, normalisation) is "
            "unknown; it is not used — delete it or recompute it with refresh=True / --refresh."
        )
    return arrays, metadata


# -- internals -------------------------------------------------------------------------------------------------------


def _check_request_args(embedder: Any, normalize: Any) -> None:
    if not isinstance(normalize, (bool, np.bool_)):
        raise ToolkitError(
            f"normalize must be True (L2-normalised, for retrieval) or False (raw, for generation), got {normalize!r}."
        )
    if not isinstance(embedder, Embedder):
        raise ToolkitError(
            f"{type(embedder).__name__} is not an Embedder: it needs embed_dim, identity, encode_images and "
            "encode_texts (see toolkit.embeddings.Embedder)."
        )


def _identity_of(embedder: Embedder) -> dict[str, Any]:
    identity = embedder.identity
    if not isinstance(identity, dict) or "model" not in identity or "weights" not in identity:
        raise ToolkitError(
            f"{type(embedder).__name__}.identity must be a dict with at least 'model' and 'weights' keys, since it "
            "keys the cache."
        )
    return json.loads(canonical_json(identity))


def _image_request(embedder: Embedder, image_set: ImageSet, normalize: bool, fingerprint: str) -> dict[str, Any]:
    _check_request_args(embedder, normalize)
    if not isinstance(image_set, ImageSet):
        raise ToolkitError(
            f"Expected a toolkit.data.ImageSet, got {type(image_set).__name__}; build one with "
            "ImageSet.from_folder(IMAGES_ROOT)."
        )
    if image_set.n_conditions == 0:
        raise ToolkitError("The image set is empty; nothing to embed.")
    return {
        "schema": SCHEMA_VERSION,
        "kind": "images",
        "identity": _identity_of(embedder),
        "normalize": bool(normalize),
        "images": {
            "n": image_set.n_conditions,
            "fingerprint": fingerprint,
            "digest": image_set_fingerprint(image_set, mode=fingerprint),
        },
    }


def _text_request(
    embedder: Embedder, concepts: Sequence[str] | ImageSet, normalize: bool, prompt: str
) -> tuple[dict[str, Any], list[str]]:
    _check_request_args(embedder, normalize)
    names = list(concepts.concepts) if isinstance(concepts, ImageSet) else concepts
    format_prompts(names, prompt)  # validates the prompt and rejects a bare string
    names = [str(c) for c in names]
    if not names:
        raise ToolkitError("The concept list is empty; nothing to embed.")
    request = {
        "schema": SCHEMA_VERSION,
        "kind": "texts",
        "identity": _identity_of(embedder),
        "normalize": bool(normalize),
        "texts": {
            "n": len(names),
            "prompt": prompt,
            "digest": hashlib.sha256(canonical_json(names).encode("utf-8")).hexdigest(),
        },
    }
    return request, names


def _key(request: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


def _path_for(cache_dir: str | os.PathLike | None, request: dict[str, Any]) -> Path:
    root = Path(cache_dir) if cache_dir is not None else _cache_root("embeddings")
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", str(request["identity"].get("model", "embedder"))).strip("-.")[:48]
    norm = "norm" if request["normalize"] else "raw"
    return root / f"{request['kind']}-{model or 'embedder'}-{norm}-{_key(request)[:24]}.safetensors"


def _describe(meta: dict[str, Any]) -> str:
    identity = meta.get("identity") if isinstance(meta.get("identity"), dict) else {}
    norm = meta.get("normalize")
    norm_text = "normalised" if norm is True else "raw" if norm is False else "unknown normalisation"
    model, weights = identity.get("model", "?"), identity.get("weights", "?")
    return f"{meta.get('kind', '?')} of model '{model}' ({weights}), {norm_text}"


def _read_hit(path: Path, request: dict[str, Any], name: str, n: int, embed_dim: int) -> CachedEmbeddings:
    arrays, meta = load_embeddings(path)
    mismatched = [k for k in request if meta.get(k) != request[k]]
    if meta.get("key") != _key(request):
        mismatched.append("key")
    if mismatched:
        raise ToolkitError(
            f"Embedding cache '{path}' holds {_describe(meta)} but {_describe(request)} was requested (differs in "
            f"{', '.join(dict.fromkeys(mismatched))}); it was not reused — delete it or pass refresh=True "
            "(--refresh) to recompute it."
        )
    embeds = arrays.get(name)
    if embeds is None or embeds.shape != (n, embed_dim) or embeds.dtype != np.float32:
        shape = None if embeds is None else embeds.shape
        raise ToolkitError(
            f"Embedding cache '{path}' should hold '{name}' of shape ({n}, {embed_dim}) but holds {shape}; it was "
            "not reused — delete it or pass refresh=True (--refresh) to recompute it."
        )
    if request["normalize"] and not _rows_unit(embeds):
        raise ToolkitError(
            f"Embedding cache '{path}' claims normalised rows but they are not unit length; it was not reused — "
            "delete it or pass refresh=True (--refresh) to recompute it."
        )
    return CachedEmbeddings(embeds=embeds, path=path, hit=True, metadata=meta)


def _rows_unit(embeds: np.ndarray) -> bool:
    norms = np.linalg.norm(embeds, axis=1)
    # Zero rows are allowed: they stay zero under normalisation.
    return bool(np.all((np.abs(norms - 1.0) <= _NORM_ATOL) | (norms == 0)))


def _check_normalized(embeds: np.ndarray, normalize: bool, what: str) -> None:
    if normalize and not _rows_unit(embeds):
        raise ToolkitError(
            f"{what} was asked for normalised embeddings but returned rows that are not unit length; fix the "
            "embedder (nothing was cached)."
        )


def _write_from_main(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any], accelerator: Any) -> None:
    if accelerator is None or accelerator.is_main_process:
        save_embeddings(path, arrays, metadata)
    if accelerator is not None:
        accelerator.wait_for_everyone()


def _provenance() -> dict[str, Any]:
    """Informational fields (not part of the key): when and with which library versions the file was made."""
    from .._version import __version__

    versions = {"eeg-visual-toolkit": __version__, "numpy": np.__version__}
    for module in ("torch", "open_clip"):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, "__version__"):
            versions[module] = str(mod.__version__)
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions}
