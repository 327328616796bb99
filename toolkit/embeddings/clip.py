"""open_clip image and text embeddings (ATM's ViT-H-14 / laion2b_s32b_b79k by default).

:meth:`ClipEmbedder.from_open_clip` builds the model with ``open_clip.create_model_and_transforms`` (so the
preprocessing always matches the weights) and the tokenizer with ``open_clip.get_tokenizer``; nothing is imported
or loaded before it is called. Weights come from an open_clip pretrained tag (downloaded once into the Hugging Face
cache) or from a local checkpoint file. Models outside open_clip's list are registered first with
``open_clip.add_model_config(path_to_json)``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import posixpath
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolkitError
from ..utils import atomic_write_json, progress, require
from ..utils import cache_dir as _cache_root
from .base import DEFAULT_PROMPT, ImageInput, canonical_json, format_prompts, load_image

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
_CHECKSUM_CHUNK = 16 * 1024 * 1024


class ClipEmbedder:
    """An :class:`~toolkit.embeddings.Embedder` around an open_clip model, its transform and its tokenizer.

    Build it with :meth:`from_open_clip`, or inject an already-built ``(model, preprocess, tokenizer)``.

    Parameters
    ----------
    model : torch.nn.Module
        An open_clip model (anything with ``encode_image`` and ``encode_text``); it is put in eval mode.
    preprocess : callable
        The model's inference transform (PIL image → tensor ``(3, H, W)``).
    tokenizer : callable
        The model's tokenizer (list of str → LongTensor ``(n, context_length)``).
    identity : dict | None
        Everything that changes the embeddings (see :class:`~toolkit.embeddings.Embedder`). ``None`` derives it
        on first use from a checksum of the model's weights and the transform, which is exact but reads every
        weight once; it is not recomputed, so build a new embedder after changing the weights.
    device : str | None
        Where to run; the model is moved there. ``None`` keeps the device of the model's parameters.
    num_workers : int
        Worker processes decoding and transforming images in parallel with the model (0: in this process).
    """

    def __init__(
        self,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        *,
        identity: dict[str, Any] | None = None,
        device: str | None = None,
        num_workers: int = 0,
    ) -> None:
        import torch

        if not (hasattr(model, "encode_image") and hasattr(model, "encode_text")):
            raise ToolkitError(
                f"The model passed to ClipEmbedder ({type(model).__name__}) has no encode_image/encode_text; "
                "pass an open_clip model."
            )
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ToolkitError(f"num_workers must be a non-negative integer, got {num_workers!r}.")
        if device is not None:
            model = model.to(_resolve_device(device))
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.num_workers = num_workers
        params = list(model.parameters())
        self.device = params[0].device if params else torch.device("cpu")
        self._input_dtype = _pixel_dtype(model)
        if identity is not None:
            canonical_json(identity)  # fail early on a non-serialisable identity
            self._identity = json.loads(canonical_json(identity))
        else:
            self._identity = None
        self._embed_dim: int | None = None

    # -- construction ------------------------------------------------------------------------------------------

    @classmethod
    def from_open_clip(
        cls,
        model_name: str = "ViT-H-14",
        pretrained: str | os.PathLike = "laion2b_s32b_b79k",
        *,
        device: str = "cpu",
        precision: str = "fp32",
        num_workers: int = 0,
        weights_cache_dir: str | os.PathLike | None = None,
    ) -> ClipEmbedder:
        """Build an embedder from an open_clip model name and pretrained weights.

        Parameters
        ----------
        model_name : str
            An open_clip model name (``open_clip.list_models()``), including names registered with
            ``open_clip.add_model_config``.
        pretrained : str | os.PathLike
            A pretrained tag of that model (``open_clip.list_pretrained_tags_by_model(model_name)``), downloaded
            once into the Hugging Face cache, or the path of a local checkpoint file (``.pt``/``.bin`` loaded with
            ``weights_only=True``, or ``.safetensors``). Set ``HF_HUB_OFFLINE=1`` on a machine without network so a
            missing download fails at once instead of after retries.
        device : str
            Where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        precision : str
            ``"fp32"`` (the reference), ``"fp16"`` or ``"bf16"``; embeddings are returned as float32 either way.
        num_workers : int
            Image-decoding worker processes.
        weights_cache_dir : str | os.PathLike | None
            Where downloaded weights live (default: the Hugging Face cache).

        Returns
        -------
        ClipEmbedder
            The embedder; its identity names the model, the tag or the checkpoint's SHA-256, the precision and the
            preprocessing.
        """
        open_clip = require("open_clip", extra="encoders", purpose="CLIP embeddings")
        if precision not in PRECISIONS:
            raise ToolkitError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
        torch_device = _resolve_device(device)
        _check_model_name(open_clip, model_name)
        source, weights = _resolve_weights(open_clip, model_name, pretrained, weights_cache_dir)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=source,
                precision=precision,
                device=torch_device,
                cache_dir=None if weights_cache_dir is None else str(weights_cache_dir),
            )
        except Exception as err:
            raise _load_error(open_clip, model_name, pretrained, source, err) from None
        tokenizer = open_clip.get_tokenizer(model_name)
        preprocess_cfg = getattr(getattr(model, "visual", None), "preprocess_cfg", None)
        identity = {
            "backend": "open_clip",
            "model": model_name,
            "weights": weights,
            "precision": precision,
            "preprocess": preprocess_cfg if preprocess_cfg is not None else _describe_transform(preprocess),
            "tokenizer": {
                "class": type(tokenizer).__name__,
                "context_length": getattr(tokenizer, "context_length", None),
            },
        }
        return cls(model, preprocess, tokenizer, identity=identity, num_workers=num_workers)

    # -- the Embedder protocol ---------------------------------------------------------------------------------

    @property
    def embed_dim(self) -> int:
        """Length of every embedding (the model's ``visual.output_dim``, else probed with one text)."""
        if self._embed_dim is None:
            dim = getattr(getattr(self.model, "visual", None), "output_dim", None)
            if dim is None:
                dim = self.encode_texts(["a"], normalize=False).shape[1]
            self._embed_dim = int(dim)
        return self._embed_dim

    @property
    def identity(self) -> dict[str, Any]:
        """Everything that changes the embeddings; the cache key (a copy)."""
        if self._identity is None:
            self._identity = {
                "backend": "open_clip",
                "model": type(self.model).__name__,
                "weights": _state_dict_checksum(self.model),
                "precision": str(self._input_dtype).replace("torch.", ""),
                "preprocess": _describe_transform(self.preprocess),
                "tokenizer": {
                    "class": type(self.tokenizer).__name__,
                    "context_length": getattr(self.tokenizer, "context_length", None),
                },
            }
        return json.loads(json.dumps(self._identity))

    def encode_images(self, images: Sequence[ImageInput], *, normalize: bool, batch_size: int = 32) -> np.ndarray:
        """Embed images with the model's own transform, in batches, under ``torch.inference_mode``.

        Parameters
        ----------
        images : sequence of PIL.Image.Image | str | os.PathLike
            Opened images or image file paths; an unreadable file raises an error naming it.
        normalize : bool
            L2-normalise every row (retrieval) or return raw embeddings (generation, IP-Adapter).
        batch_size : int
            Images per forward pass (ATM used 20); results agree across batch sizes to float rounding.

        Returns
        -------
        image_embeds : np.ndarray of float32, shape (n_images, embed_dim)
            One row per image.
        """
        import torch
        from torch.nn import functional as F
        from torch.utils.data import DataLoader

        _check_batch_size(batch_size)
        images = list(images)
        if not images:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        loader = DataLoader(
            _TransformedImages(images, self.preprocess),
            batch_size=batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
        )
        out = []
        with torch.inference_mode():
            for pixels, error in progress(loader, desc="image embeddings", total=len(loader), unit="batch"):
                if error is not None:
                    raise ToolkitError(error)
                pixels = pixels.to(self.device, dtype=self._input_dtype, non_blocking=True)
                feats = self.model.encode_image(pixels).float()
                if normalize:
                    feats = F.normalize(feats, dim=-1)
                out.append(feats.cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32, copy=False)

    def encode_texts(self, texts: Sequence[str], *, normalize: bool, batch_size: int = 256) -> np.ndarray:
        """Embed texts with the model's tokenizer, in batches, under ``torch.inference_mode``.

        Parameters
        ----------
        texts : sequence of str
            The texts (longer ones are truncated to the tokenizer's context length).
        normalize : bool
            L2-normalise every row (ATM normalises text embeddings) or return raw embeddings.
        batch_size : int
            Texts per forward pass.

        Returns
        -------
        text_embeds : np.ndarray of float32, shape (n_texts, embed_dim)
            One row per text.
        """
        import torch
        from torch.nn import functional as F

        _check_batch_size(batch_size)
        if isinstance(texts, str):
            raise ToolkitError("Texts must be a list of strings, not one string; wrap it in a list.")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        out = []
        starts = range(0, len(texts), batch_size)
        with torch.inference_mode():
            for start in progress(starts, desc="text embeddings", total=len(starts), unit="batch"):
                tokens = self.tokenizer(texts[start : start + batch_size]).to(self.device)
                feats = self.model.encode_text(tokens).float()
                if normalize:
                    feats = F.normalize(feats, dim=-1)
                out.append(feats.cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32, copy=False)

    def encode_concepts(
        self, concepts: Sequence[str], *, normalize: bool, prompt: str = DEFAULT_PROMPT, batch_size: int = 256
    ) -> np.ndarray:
        """Embed concept texts through a prompt template (ATM: ``"This picture is {concept}"``).

        Parameters
        ----------
        concepts : sequence of str
            Concept texts (underscores kept, as in the reference code).
        normalize : bool
            L2-normalise every row or return raw embeddings.
        prompt : str
            Template holding ``{concept}``.
        batch_size : int
            Texts per forward pass.

        Returns
        -------
        text_embeds : np.ndarray of float32, shape (n_concepts, embed_dim)
            One row per concept.
        """
        return self.encode_texts(format_prompts(concepts, prompt), normalize=normalize, batch_size=batch_size)

    def __repr__(self) -> str:
        ident = self._identity or {}
        return (
            f"ClipEmbedder(model={ident.get('model', type(self.model).__name__)!r}, "
            f"weights={ident.get('weights', '<not yet computed>')!r}, device='{self.device}')"
        )


# -- image loading for the DataLoader ----------------------------------------------------------------------------


class _TransformedImages:
    """Map-style dataset: item ``i`` is the transformed image ``i``, or the error message if it cannot be read.

    Errors travel back as values so that a worker process reports one clear sentence naming the file instead of
    a re-raised worker traceback.
    """

    def __init__(self, images: list[ImageInput], preprocess: Any) -> None:
        self.images = images
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, str | None]:
        try:
            return self.preprocess(load_image(self.images[index])), None
        except ToolkitError as err:
            return None, str(err)


def _collate(items: list[tuple[Any, str | None]]) -> tuple[Any, str | None]:
    """Stack a batch, or pass its first error on (raised in the main process, not inside a worker)."""
    import torch

    for _, error in items:
        if error is not None:
            return None, error
    return torch.stack([pixels for pixels, _ in items]), None


# -- helpers -------------------------------------------------------------------------------------------------------


def _pixel_dtype(model: Any) -> Any:
    """The dtype images must have: that of the vision tower's first convolution or linear layer.

    open_clip's reduced precisions convert only some layers (``convert_weights_to_lp``), so the first parameter
    is not a reliable guide.
    """
    import torch

    visual = getattr(model, "visual", model)
    for module in visual.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            return module.weight.dtype
    floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
    return floating[0] if floating else torch.float32


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ToolkitError(f"batch_size must be a positive integer, got {batch_size!r}.")


def _resolve_device(device: Any) -> Any:
    """Parse a device string and check it exists, with an error saying what to pass instead."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ToolkitError(f"Unknown device {device!r}; pass 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ToolkitError(f"Device '{device}' was requested but no CUDA GPU is available; pass --device cpu.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ToolkitError(
                f"Device '{device}' does not exist (this machine has {torch.cuda.device_count()} CUDA GPU(s))."
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ToolkitError(f"Device '{device}' was requested but MPS is not available; pass --device cpu.")
    return dev


def _check_model_name(open_clip: Any, model_name: str) -> None:
    if not isinstance(model_name, str) or not model_name:
        raise ToolkitError(f"The open_clip model name must be a non-empty string, got {model_name!r}.")
    if model_name.startswith(("hf-hub:", "local-dir:")):
        raise ToolkitError(
            f"Model '{model_name}': hub and local-dir model names are not supported here; pass a built-in open_clip "
            "name (or one registered with open_clip.add_model_config) and the weights file as pretrained."
        )
    models = open_clip.list_models()
    if model_name not in models:
        close = difflib.get_close_matches(model_name, models, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ToolkitError(
            f"Unknown open_clip model '{model_name}'{hint}; list the available names with "
            '`python -c "import open_clip; print(open_clip.list_models())"`, or register a model config JSON '
            "with open_clip.add_model_config."
        )


def _resolve_weights(
    open_clip: Any, model_name: str, pretrained: str | os.PathLike | None, weights_cache_dir: Any
) -> tuple[str, str]:
    """Return ``(what to pass to open_clip, weights id for the identity)`` or fail with a one-sentence error."""
    if pretrained is None or str(pretrained) == "":
        raise ToolkitError(
            f"No pretrained weights given for '{model_name}'; pass a pretrained tag "
            f"(open_clip.list_pretrained_tags_by_model('{model_name}')) or a checkpoint path (randomly initialised "
            "models are not embedded, since their embeddings could not be reproduced or cached)."
        )
    text = str(pretrained)
    path = Path(text).expanduser()
    if path.is_file():
        return str(path), f"sha256:{file_checksum(path)}"
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if text not in tags:
        looks_like_path = os.sep in text or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))
        if looks_like_path:
            raise ToolkitError(f"Checkpoint file '{text}' does not exist; pass the path of an open_clip checkpoint.")
        known = ", ".join(tags) if tags else "none"
        raise ToolkitError(
            f"Pretrained '{text}' is neither a tag of open_clip model '{model_name}' (known tags: {known}) nor an "
            "existing checkpoint file."
        )
    _check_tag_available_offline(open_clip, model_name, text, weights_cache_dir)
    return text, f"open_clip:{text}"


def _hf_repo(open_clip: Any, model_name: str, tag: str) -> tuple[str, str | None]:
    """The Hugging Face repository of a pretrained tag and its weights file name (``None``: open_clip's default)."""
    cfg = open_clip.get_pretrained_cfg(model_name, tag) or {}
    hub = cfg.get("hf_hub", "")
    if not hub:
        return "", None
    # open_clip writes 'org/repo/' (default file name) or 'org/repo/file.bin'.
    repo, filename = posixpath.split(hub)
    return repo, filename or None


def _check_tag_available_offline(open_clip: Any, model_name: str, tag: str, weights_cache_dir: Any) -> None:
    """Fail at once, with what to download, when the weights of ``tag`` are not cached and downloads are off."""
    try:
        import huggingface_hub
        from huggingface_hub import constants as hf_constants
    except ImportError:  # open_clip then downloads from its URL, if the tag has one
        return
    repo, filename = _hf_repo(open_clip, model_name, tag)
    if not repo or not hf_constants.HF_HUB_OFFLINE:
        return
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename and filename.endswith(".bin"):
        names.insert(0, filename[: -len(".bin")] + ".safetensors")
    cache = None if weights_cache_dir is None else str(weights_cache_dir)
    for name in names:
        found = huggingface_hub.try_to_load_from_cache(repo, name, cache_dir=cache)
        if isinstance(found, str):
            return
    raise _offline_error(model_name, tag, repo)


def _offline_error(model_name: str, tag: str, repo: str) -> ToolkitError:
    where = f"the Hugging Face repository '{repo}'" if repo else "open_clip's download URL"
    return ToolkitError(
        f"The open_clip weights '{tag}' of {model_name} are not available offline; download them once on a "
        f"machine with network access (from {where}, e.g. by running this command there) or pass "
        "--pretrained PATH (pretrained=PATH) pointing to a local checkpoint file."
    )


def _load_error(open_clip: Any, model_name: str, pretrained: Any, source: str, err: Exception) -> ToolkitError:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    first_line = first_line[:300]
    if Path(source).is_file():
        # open_clip reports a foreign architecture through load_state_dict (missing/unexpected keys, size
        # mismatch) or through its own asserts while resizing position embeddings.
        text = str(err)
        if isinstance(err, AssertionError) or any(
            k in text for k in ("state_dict", "size mismatch", "Missing key", "Unexpected key")
        ):
            return ToolkitError(
                f"Checkpoint '{source}' does not fit open_clip model '{model_name}' (different layer names or "
                "shapes); pass the model name the checkpoint was saved from."
            )
        return ToolkitError(
            f"Checkpoint '{source}' could not be loaded as open_clip model '{model_name}' "
            f"({type(err).__name__}: {first_line}); check that it is an open_clip state dict."
        )
    if "download" in str(err).lower() or isinstance(err, (OSError, FileNotFoundError)):
        repo, _ = _hf_repo(open_clip, model_name, str(pretrained))
        return _offline_error(model_name, str(pretrained), repo)
    return ToolkitError(
        f"open_clip could not build model '{model_name}' with pretrained '{pretrained}' "
        f"({type(err).__name__}: {first_line})."
    )


def file_checksum(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest of a file, remembered per (path, size, mtime) so big checkpoints hash once.

    Parameters
    ----------
    path : str | os.PathLike
        The file (a multi-GB checkpoint takes seconds to hash the first time).

    Returns
    -------
    str
        The hex digest.
    """
    path = Path(path).resolve()
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    index_path = _cache_root("embeddings") / "checksums.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    entry = index.get(str(path))
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and "sha256" in entry:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        # hashlib.file_digest needs Python 3.11; this loop is the same thing for 3.10.
        for chunk in iter(lambda: fh.read(_CHECKSUM_CHUNK), b""):
            digest.update(chunk)
    hexdigest = digest.hexdigest()
    index[str(path)] = {**stamp, "sha256": hexdigest}
    try:
        atomic_write_json(index_path, index)
    except OSError as err:  # a read-only cache only costs re-hashing next time
        logger.debug("could not record the checksum of %s: %s", path, err)
    return hexdigest


def _state_dict_checksum(model: Any) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every tensor in ``model.state_dict()``."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if not isinstance(tensor, torch.Tensor):
            continue
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"state-dict-sha256:{digest.hexdigest()}"


def _describe_transform(transform: Any) -> str:
    """A stable text description of a transform: its repr without memory addresses."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))
