"""Captions from GIT: of images, and of precomputed vision tokens (ATM's semantic path, reference/ATM.md §10).

:class:`GitCaptioner` wraps a transformers ``GitForCausalLM`` and its ``GitProcessor`` (``microsoft/git-large-coco``
by default) and captions either

- images (:meth:`~GitCaptioner.caption_images`): the processor's pixels → GIT's vision encoder → text decoder, as GIT
  is normally used; or
- vision tokens (:meth:`~GitCaptioner.caption_vision_tokens`): a (batch, 257, 1024) tensor standing for the vision
  encoder's last hidden state — what a :class:`~toolkit.captions.PixelProjector` predicts from a decoded CLIP
  embedding. GIT's visual projection, its image/text attention mask, cache and decoding then run unchanged. This is
  what MindEye's ``GitForCausalLMClipEmb`` does in a 2,000-line modified copy of ``modeling_git.py``; here it is a
  one-submodule substitution (see :class:`_VisionTokensPassThrough`).

:meth:`~GitCaptioner.encode_images` returns the vision encoder's output of images: the projector's training targets.
:func:`caption_images` captions images with any transformers image-to-text model (a ``(model, processor)`` pair, a
pipeline, or a callable), for comparison with GIT or as the "caption the stimulus" baseline.

Decoding is deterministic: greedy by default, beam search with ``num_beams > 1``, never sampling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ToolkitError
from ..generation._checks import as_float_tensor, check_int
from ..generation._components import check_source, is_local, resolve_device, resolve_dtype
from ..utils import progress, require

logger = logging.getLogger(__name__)

GIT_LARGE_COCO = "microsoft/git-large-coco"
"""Hub id of the captioning model ATM uses (vision hidden size 1024, 257 vision tokens)."""

DEFAULT_MAX_NEW_TOKENS = 25
"""ATM's ``generate(max_new_tokens=25)``."""


def _transformers() -> Any:
    return require("transformers", extra="generate", purpose="GIT captioning")


class _VisionTokensPassThrough(nn.Module):
    """Stands in for ``GitModel.image_encoder`` while vision tokens are captioned.

    How precomputed vision-encoder outputs get into GIT (transformers ``modeling_git.py``): ``GitModel.forward`` turns
    ``pixel_values`` of rank 4 into ``self.image_encoder(pixel_values, ...).last_hidden_state``, then applies
    ``self.visual_projection``, prepends the result to the text embeddings, makes the image tokens attend to each
    other bidirectionally and keeps them in the key/value cache. The encoder call is the only step between the
    pixels and the projection, and GIT has no argument that takes encoder outputs instead (no
    ``get_image_features`` for generate's ``mm_encoder_outputs``; ``inputs_embeds`` would skip the projection and make
    the image tokens causal). So for the duration of one ``generate`` call this module replaces that submodule
    (plain ``nn.Module`` attribute assignment, restored afterwards) and the tokens travel in the ``pixel_values``
    slot as a rank-4 carrier ``(batch, 1, n_tokens, hidden)``. ``generate`` then treats them exactly like pixels:
    repeated per beam, used in the prefill step only, and every other line of GIT runs as released. Nothing is
    copied from or patched into transformers, and the vision encoder is not run on dummy pixels.
    """

    def __init__(self, n_tokens: int, hidden_size: int) -> None:
        super().__init__()
        self.shape = (n_tokens, hidden_size)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False, **kwargs: Any) -> Any:
        modeling_outputs = require("transformers.modeling_outputs", extra="generate", purpose="GIT captioning")
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 1 or tuple(pixel_values.shape[2:]) != self.shape:
            # Only reachable if transformers changes how GitModel calls its image encoder.
            raise RuntimeError(
                f"GIT called its image encoder with shape {tuple(pixel_values.shape)} while vision tokens "
                f"(batch, 1, {self.shape[0]}, {self.shape[1]}) were expected; this transformers version routes "
                "pixel_values differently, so the vision-token path cannot be used with it."
            )
        return modeling_outputs.BaseModelOutput(last_hidden_state=pixel_values[:, 0])


class GitCaptioner:
    """Caption images or precomputed vision tokens with a GIT model (``GitForCausalLM``).

    Parameters
    ----------
    model : transformers.GitForCausalLM
        The captioning model (single-image GIT; the video variants with ``num_image_with_embedding`` are refused).
    processor : transformers.GitProcessor | None
        Its processor (image processor + tokenizer). Needed to caption images; vision tokens need only a tokenizer.
    tokenizer : transformers.PreTrainedTokenizerBase | None
        The tokenizer, when no processor is given (default: ``processor.tokenizer``).

    Examples
    --------
    >>> captioner = GitCaptioner.from_pretrained("microsoft/git-large-coco", revision=REV)  # doctest: +SKIP
    >>> captioner.caption_images(["cat.jpg"])  # doctest: +SKIP
    ['a cat sitting on a wooden table.']
    >>> captioner.caption_vision_tokens(projector(image_embeds))  # (n, 257, 1024) tokens  # doctest: +SKIP
    """

    def __init__(self, model: Any, processor: Any = None, *, tokenizer: Any = None) -> None:
        transformers = _transformers()
        if not isinstance(model, transformers.GitForCausalLM):
            raise ToolkitError(f"model must be a transformers GitForCausalLM, got {type(model).__name__}.")
        if getattr(model.config, "num_image_with_embedding", None) is not None:
            raise ToolkitError(
                "model is a video GIT (num_image_with_embedding="
                f"{model.config.num_image_with_embedding}); use an image-captioning GIT such as {GIT_LARGE_COCO}."
            )
        if tokenizer is None and processor is not None:
            tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None or not hasattr(tokenizer, "batch_decode"):
            raise ToolkitError(
                "GitCaptioner needs a tokenizer to decode captions: pass processor (a GitProcessor) or tokenizer."
            )
        if processor is not None and getattr(processor, "image_processor", None) is None:
            raise ToolkitError(
                f"processor must have an image_processor (a GitProcessor), got {type(processor).__name__}."
            )
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer
        #: Where the model came from (set by from_pretrained): Hub id or folder, revision asked for, commit resolved.
        self.source: str | None = None
        self.revision: str | None = None
        self.commit: str | None = None
        # The vision-token path swaps a submodule for the length of one generate call; serialise those calls.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike = GIT_LARGE_COCO,
        *,
        revision: str | None = None,
        device: Any = None,
        dtype: Any = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ) -> GitCaptioner:
        """Load a GIT model and its processor from a Hub id or a local folder.

        The weights are checked strictly: a missing tensor, or one of the wrong shape, raises one
        :class:`~toolkit.ToolkitError` naming the weights file and the expected shape (transformers would otherwise
        initialise it at random with only a log message).

        Parameters
        ----------
        source : str | os.PathLike
            Hub id (default ``"microsoft/git-large-coco"``, ATM's) or a folder written by ``save_pretrained`` of the
            model and the processor.
        revision : str | None
            Hub branch, tag or commit; pin a commit for reproducible captions. Hub ids only.
        device : str | torch.device | None
            ``None``: CUDA if available, else the CPU.
        dtype : torch.dtype | str | None
            ``None``: float16 on CUDA, float32 on the CPU. float16 on the CPU falls back to float32 with a warning.
        cache_dir : str | os.PathLike | None
            Hugging Face cache folder.
        local_files_only : bool
            Never use the network (a Hub id must then be in the cache).

        Returns
        -------
        GitCaptioner
            The captioner, the model in evaluation mode on ``device``.
        """
        transformers = _transformers()
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        source = check_source(source, what="the GIT captioning model", revision=revision)
        common = {
            "revision": revision,
            "cache_dir": None if cache_dir is None else str(cache_dir),
            "local_files_only": local_files_only,
        }
        where = _describe_source(source, revision)
        try:
            config = transformers.AutoConfig.from_pretrained(source, **common)
        except Exception as err:  # transformers/huggingface_hub raise OSError, ValueError, HTTP errors, ...
            raise ToolkitError(
                f"Could not read the GIT configuration of {where}: {_one_line(err)}"
                + _hint(local_files_only)
            ) from err
        if getattr(config, "model_type", None) != "git":
            raise ToolkitError(
                f"{where} holds a {getattr(config, 'model_type', '?')!r} model, not GIT; point at a GIT captioning "
                f"model such as {GIT_LARGE_COCO}."
            )
        model = _load_checked_model(transformers.GitForCausalLM, source, config, dt, where, common)
        try:
            processor = transformers.AutoProcessor.from_pretrained(source, **common)
        except Exception as err:  # many error types for missing or unreadable tokenizer/processor files
            raise ToolkitError(
                f"Could not load the GIT processor (image processor + tokenizer) of {where}: "
                f"{_one_line(err)}" + _hint(local_files_only)
            ) from err
        captioner = cls(model.to(dev).eval(), processor)
        captioner.source = source
        captioner.revision = revision
        captioner.commit = None if is_local(source) else _resolved_commit(source, common)
        return captioner

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device of the model."""
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        """Weight type of the model."""
        return self.model.dtype

    @property
    def vision_hidden_size(self) -> int:
        """Width of one vision token (the vision encoder's hidden size; 1024 for GIT-large)."""
        return int(self.model.config.vision_config.hidden_size)

    @property
    def n_vision_tokens(self) -> int:
        """Number of vision tokens per image, (image_size / patch_size)² + 1 (257 for GIT-large)."""
        vision = self.model.config.vision_config
        return int((vision.image_size // vision.patch_size) ** 2 + 1)

    @property
    def identity(self) -> dict[str, Any]:
        """What produced the captions, for protocol cards: source, revision, resolved commit, sizes, dtype."""
        config = self.model.config
        return {
            "model": type(self.model).__name__,
            "source": self.source,
            "revision": self.revision,
            "commit": self.commit,
            "vision_tokens": [self.n_vision_tokens, self.vision_hidden_size],
            "hidden_size": int(config.hidden_size),
            "vocab_size": int(config.vocab_size),
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    def to(self, *args: Any, **kwargs: Any) -> GitCaptioner:
        """Move the model (``torch.nn.Module.to`` arguments) and return ``self``."""
        self.model.to(*args, **kwargs)
        return self

    # ------------------------------------------------------------------ the two captioning paths
    def caption_vision_tokens(
        self,
        vision_tokens: Any,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
        batch_size: int = 16,
        progress_bar: bool = True,
    ) -> list[str]:
        """Caption precomputed vision tokens (the latent path: what GIT's vision encoder would have output).

        Parameters
        ----------
        vision_tokens : torch.Tensor | numpy.ndarray, shape (n, n_vision_tokens, vision_hidden_size)
            E.g. :class:`~toolkit.captions.PixelProjector` outputs, or :meth:`encode_images` of real images.
        max_new_tokens : int
            Longest caption in tokens, ≥ 1 (ATM: 25).
        num_beams : int
            1: greedy decoding (ATM's); more: beam search. Both are deterministic.
        batch_size : int
            Rows per ``generate`` call; the captions do not depend on it beyond float rounding.
        progress_bar : bool
            Show a progress bar over the batches (also silenced by ``EEG_TOOLKIT_NO_PROGRESS=1``).

        Returns
        -------
        list of str
            One caption per row.
        """
        tokens = self.check_vision_tokens(vision_tokens)
        settings = _check_decoding(max_new_tokens, num_beams)
        batch = check_int(batch_size, "batch_size", minimum=1)
        captions: list[str] = []
        starts = range(0, tokens.shape[0], batch)
        for start in progress(starts, desc="captioning", disable=None if progress_bar else True):
            out = self.generate(vision_tokens=tokens[start : start + batch], **settings)
            captions.extend(self.decode(out.sequences))
        return captions

    def caption_images(
        self,
        images: Any,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
        batch_size: int = 16,
        progress_bar: bool = True,
    ) -> list[str]:
        """Caption images the usual GIT way (processor → vision encoder → decoder).

        Parameters
        ----------
        images : sequence of PIL.Image.Image | str | os.PathLike | numpy.ndarray, or an ImageSet
            Images, image files, or (height, width, 3) uint8 arrays; an :class:`~toolkit.data.ImageSet` gives its
            images in condition order.
        max_new_tokens, num_beams, batch_size, progress_bar
            As in :meth:`caption_vision_tokens`.

        Returns
        -------
        list of str
            One caption per image.
        """
        pictures = load_images(images)
        settings = _check_decoding(max_new_tokens, num_beams)
        batch = check_int(batch_size, "batch_size", minimum=1)
        captions: list[str] = []
        starts = range(0, len(pictures), batch)
        for start in progress(starts, desc="captioning images", disable=None if progress_bar else True):
            pixel_values = self.pixel_values(pictures[start : start + batch])
            out = self.generate(pixel_values=pixel_values, **settings)
            captions.extend(self.decode(out.sequences))
        return captions

    def encode_images(self, images: Any, *, batch_size: int = 16, progress_bar: bool = True) -> torch.Tensor:
        """The vision encoder's last hidden state of images: what :class:`~toolkit.captions.PixelProjector` learns.

        Parameters
        ----------
        images : sequence of PIL.Image.Image | str | os.PathLike | numpy.ndarray, or an ImageSet
            As in :meth:`caption_images`.
        batch_size : int
            Images per forward pass.
        progress_bar : bool
            Show a progress bar over the batches.

        Returns
        -------
        torch.Tensor, shape (n_images, n_vision_tokens, vision_hidden_size)
            float32 on the CPU (ATM's ``ViT-L-14_features_GIT_*`` targets; 1 MB per image for GIT-large).
        """
        pictures = load_images(images)
        batch = check_int(batch_size, "batch_size", minimum=1)
        self._check_runnable()
        out = []
        with self._eval_mode(), torch.inference_mode():
            for start in progress(
                range(0, len(pictures), batch), desc="encoding images", disable=None if progress_bar else True
            ):
                pixel_values = self.pixel_values(pictures[start : start + batch])
                hidden = self.model.git.image_encoder(pixel_values).last_hidden_state
                out.append(hidden.float().cpu())
        return torch.cat(out).clone()

    # ------------------------------------------------------------------ building blocks
    def pixel_values(self, images: Sequence[Any]) -> torch.Tensor:
        """The processor's ``pixel_values`` of PIL images, on the model's device and dtype."""
        if self.processor is None:
            raise ToolkitError(
                "This GitCaptioner has no processor, so it cannot caption or encode images; build it with "
                "GitCaptioner.from_pretrained or pass processor=GitProcessor(...)."
            )
        pixel_values = self.processor(images=list(images), return_tensors="pt").pixel_values
        return pixel_values.to(device=self.device, dtype=self.dtype)

    def check_vision_tokens(self, vision_tokens: Any, name: str = "vision_tokens") -> torch.Tensor:
        """``vision_tokens`` as a finite float tensor of shape (n, n_vision_tokens, vision_hidden_size)."""
        tokens = as_float_tensor(vision_tokens, name)
        expected = (self.n_vision_tokens, self.vision_hidden_size)
        if tokens.ndim != 3 or tuple(tokens.shape[1:]) != expected or tokens.shape[0] < 1:
            raise ToolkitError(
                f"{name} has shape {tuple(tokens.shape)} but this GIT model takes (batch, {expected[0]}, "
                f"{expected[1]}) vision tokens (its vision encoder's sequence length and hidden size); build the "
                f"projector with n_tokens={expected[0]} and hidden_size={expected[1]}, or use the GIT model the "
                "projector was trained for."
            )
        return tokens

    def generate(
        self,
        *,
        pixel_values: torch.Tensor | None = None,
        vision_tokens: torch.Tensor | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
        output_scores: bool = False,
    ) -> Any:
        """One ``GitForCausalLM.generate`` call on pixels or on vision tokens (deterministic decoding).

        Parameters
        ----------
        pixel_values : torch.Tensor | None, shape (batch, 3, height, width)
            Processor output (see :meth:`pixel_values`).
        vision_tokens : torch.Tensor | None, shape (batch, n_vision_tokens, vision_hidden_size)
            Instead of ``pixel_values``: the vision encoder's output, fed past the encoder.
        max_new_tokens : int
            Longest caption in tokens, ≥ 1.
        num_beams : int
            1: greedy; more: beam search.
        output_scores : bool
            Also return the processed next-token scores of every step.

        Returns
        -------
        transformers.generation.GenerateOutput
            With ``sequences`` (batch, length): the ``[CLS]`` start token followed by the caption's tokens.
        """
        if (pixel_values is None) == (vision_tokens is None):
            raise ToolkitError("Pass exactly one of pixel_values and vision_tokens.")
        settings = _check_decoding(max_new_tokens, num_beams)
        self._check_runnable()
        if vision_tokens is not None:
            tokens = self.check_vision_tokens(vision_tokens).to(device=self.device, dtype=self.dtype)
            carrier = tokens[:, None]  # rank 4: GitModel sends rank-4 pixel_values to its image encoder
            swap = self._vision_tokens_as_encoder_output()
        else:
            if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
                shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
                raise ToolkitError(f"pixel_values must be a (batch, 3, height, width) tensor, got {shape}.")
            carrier = pixel_values.to(device=self.device, dtype=self.dtype)
            swap = contextlib.nullcontext()
        with self._lock, swap, self._eval_mode(), torch.inference_mode():
            return self.model.generate(
                pixel_values=carrier,
                do_sample=False,
                num_return_sequences=1,
                return_dict_in_generate=True,
                output_scores=bool(output_scores),
                **settings,
            )

    def decode(self, sequences: torch.Tensor) -> list[str]:
        """Token ids from :meth:`generate` → caption strings (special tokens removed, whitespace stripped)."""
        return [text.strip() for text in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]

    @contextlib.contextmanager
    def _vision_tokens_as_encoder_output(self) -> Iterator[None]:
        """Swap ``model.git.image_encoder`` for :class:`_VisionTokensPassThrough` in the block (see its docstring)."""
        git = self.model.git
        with self._lock:
            original = git.image_encoder
            git.image_encoder = _VisionTokensPassThrough(self.n_vision_tokens, self.vision_hidden_size)
            try:
                yield
            finally:
                git.image_encoder = original

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def _check_runnable(self) -> None:
        if self.device.type == "cpu" and self.dtype == torch.float16:
            raise ToolkitError(
                "The GIT model is in float16 on the CPU, where PyTorch's float16 kernels are slow or missing; use "
                "captioner.to(torch.float32) (or bfloat16) on the CPU, or move it to a GPU for float16."
            )

    def __repr__(self) -> str:
        return (
            f"GitCaptioner(source={self.source!r}, vision_tokens=({self.n_vision_tokens}, {self.vision_hidden_size}), "
            f"device={self.device}, dtype={self.dtype})"
        )


# ---------------------------------------------------------------------------------------------------------- images
def load_images(images: Any) -> list[Any]:
    """Images as a list of RGB PIL images.

    Parameters
    ----------
    images : sequence of PIL.Image.Image | str | os.PathLike | numpy.ndarray, or an ImageSet
        Opened images, image files, (height, width, 3) uint8 arrays, or an :class:`~toolkit.data.ImageSet` (its
        images in condition order). A single image is not accepted: wrap it in a list.

    Returns
    -------
    list of PIL.Image.Image
        Fully decoded RGB images.
    """
    from PIL import Image

    from ..data import ImageSet
    from ..embeddings.base import load_image

    if isinstance(images, ImageSet):
        images = [images.image_path(i) for i in range(images.n_conditions)]
    if isinstance(images, (str, os.PathLike, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim == 3):
        raise ToolkitError("images must be a sequence of images (wrap a single image in a list).")
    if not isinstance(images, (Sequence, np.ndarray)) or len(images) == 0:
        raise ToolkitError(
            f"images must be a non-empty sequence of PIL images, image paths or uint8 arrays, got "
            f"{type(images).__name__}{' (empty)' if isinstance(images, Sequence) else ''}."
        )
    out = []
    for i, image in enumerate(images):
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ToolkitError(
                    f"images[{i}] is an array of shape {image.shape} and dtype {image.dtype}; pass (height, width, 3) "
                    "uint8 RGB arrays."
                )
            out.append(Image.fromarray(image, mode="RGB"))
        elif isinstance(image, (Image.Image, str, os.PathLike)):
            out.append(load_image(image))
        else:
            raise ToolkitError(
                f"images[{i}] is a {type(image).__name__}; pass PIL images, image file paths or uint8 arrays."
            )
    return out


def caption_images(
    images: Any,
    captioner: Any,
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    num_beams: int = 1,
    batch_size: int = 8,
    prompt: str | None = None,
    progress_bar: bool = True,
) -> list[str]:
    """Caption images with a GIT captioner or any transformers image-to-text model.

    Parameters
    ----------
    images : sequence of PIL.Image.Image | str | os.PathLike | numpy.ndarray, or an ImageSet
        The images (see :func:`load_images`).
    captioner : GitCaptioner | tuple | transformers.Pipeline | callable
        - a :class:`GitCaptioner`;
        - ``(model, processor)``: any model with ``generate`` whose processor turns ``images=`` into model inputs
          (``AutoModelForImageTextToText`` / ``AutoModelForVision2Seq`` models: GIT, BLIP, BLIP-2, ...);
        - a transformers pipeline (``"image-to-text"``, or ``"image-text-to-text"`` with ``prompt``), called with the
          decoding settings as ``generate_kwargs``;
        - any callable taking a list of PIL images and returning one string (or ``{"generated_text": ...}``) per
          image.
    max_new_tokens : int
        Longest caption in tokens, ≥ 1.
    num_beams : int
        1: greedy; more: beam search (not applied to plain callables).
    batch_size : int
        Images per call.
    prompt : str | None
        Text prompt for conditional captioners (``(model, processor)`` pairs and pipelines), e.g. BLIP's
        ``"a picture of"``; ``None`` for none.
    progress_bar : bool
        Show a progress bar over the batches.

    Returns
    -------
    list of str
        One caption per image.
    """
    settings = _check_decoding(max_new_tokens, num_beams)
    batch = check_int(batch_size, "batch_size", minimum=1)
    if prompt is not None and not isinstance(prompt, str):
        raise ToolkitError(f"prompt must be a string or None, got {type(prompt).__name__}.")
    if isinstance(captioner, GitCaptioner):
        if prompt is not None:
            raise ToolkitError("prompt is not used by GitCaptioner (GIT captions from its start token); drop it.")
        return captioner.caption_images(images, batch_size=batch, progress_bar=progress_bar, **settings)
    pictures = load_images(images)
    run = _captioning_function(captioner, settings, prompt)
    captions: list[str] = []
    starts = range(0, len(pictures), batch)
    for start in progress(starts, desc="captioning images", disable=None if progress_bar else True):
        chunk = pictures[start : start + batch]
        captions.extend(_as_captions(run(chunk), len(chunk), type(captioner).__name__))
    return captions


def _captioning_function(captioner: Any, settings: dict[str, int], prompt: str | None) -> Callable[[list], Any]:
    """A function list of PIL images → raw captioner output, for each supported kind of captioner."""
    if isinstance(captioner, tuple):
        if len(captioner) != 2 or not hasattr(captioner[0], "generate") or not callable(captioner[1]):
            raise ToolkitError(
                "captioner as a tuple must be (model, processor): a transformers model with generate() and its "
                "processor."
            )
        model, processor = captioner

        def run_pair(chunk: list) -> list[str]:
            text = {"text": [prompt] * len(chunk)} if prompt else {}
            inputs = processor(images=chunk, return_tensors="pt", **text)
            dtype = getattr(model, "dtype", None)
            inputs = {
                k: v.to(device=model.device, dtype=dtype if v.is_floating_point() and dtype is not None else v.dtype)
                for k, v in inputs.items()
                if isinstance(v, torch.Tensor)
            }
            was_training = getattr(model, "training", False)
            model.eval()
            try:
                with torch.inference_mode():
                    ids = model.generate(**inputs, do_sample=False, **settings)
            finally:
                model.train(was_training)
            decoder = getattr(processor, "batch_decode", None) or processor.tokenizer.batch_decode
            return decoder(ids, skip_special_tokens=True)

        return run_pair
    transformers = _transformers()
    if isinstance(captioner, transformers.Pipeline):

        def run_pipeline(chunk: list) -> Any:
            # One prompt per image: an "image-text-to-text" pipeline given one string for several images would
            # treat them as one multi-image input.
            text = {} if prompt is None else {"text": [prompt] * len(chunk)}
            return captioner(chunk, generate_kwargs={"do_sample": False, **settings}, **text)

        return run_pipeline
    if callable(captioner):
        return captioner
    raise ToolkitError(
        f"captioner must be a GitCaptioner, a (model, processor) pair, a transformers pipeline or a callable, got "
        f"{type(captioner).__name__}."
    )


def _as_captions(raw: Any, n: int, what: str) -> list[str]:
    """Strings from captioner output: strings, ``{"generated_text": ...}`` or one-element lists of those."""
    if isinstance(raw, (str, dict)) or not isinstance(raw, Sequence) or len(raw) != n:
        count = len(raw) if isinstance(raw, Sequence) and not isinstance(raw, (str, dict)) else "no list"
        raise ToolkitError(f"The captioner ({what}) returned {count} outputs for {n} images; it must return one each.")
    out = []
    for item in raw:
        if isinstance(item, list) and len(item) == 1:
            item = item[0]
        if isinstance(item, dict):
            item = item.get("generated_text")
        if not isinstance(item, str):
            raise ToolkitError(
                f"The captioner ({what}) returned a {type(item).__name__} for an image; expected a string or "
                "{'generated_text': str}."
            )
        out.append(item.strip())
    return out


# ---------------------------------------------------------------------------------------------------------- helpers
def _check_decoding(max_new_tokens: Any, num_beams: Any) -> dict[str, int]:
    return {
        "max_new_tokens": check_int(max_new_tokens, "max_new_tokens", minimum=1, maximum=512),
        "num_beams": check_int(num_beams, "num_beams", minimum=1, maximum=64),
    }


def _load_checked_model(cls: Any, source: str, config: Any, dtype: Any, where: str, common: dict[str, Any]) -> Any:
    """``cls.from_pretrained`` that refuses missing tensors and tensors of the wrong shape (one clear error)."""
    files = _weight_files(source)
    try:
        model, info = cls.from_pretrained(
            source, config=config, dtype=dtype, output_loading_info=True, ignore_mismatched_sizes=True, **common
        )
    except Exception as err:  # transformers/safetensors/huggingface_hub raise OSError, ValueError, RuntimeError, ...
        raise ToolkitError(
            f"Could not load the GIT weights of {files or where}: {_one_line(err)}"
            + _hint(common["local_files_only"])
        ) from err
    expected = {name: list(t.shape) for name, t in model.state_dict().items()}
    mismatched = info.get("mismatched_keys") or []
    if mismatched:
        shapes = [f"{item[0]} expected {expected.get(item[0], '?')} found {_found_shape(item, expected)}"
                  for item in mismatched]
        raise ToolkitError(
            f"The GIT weights in {files or where} do not fit the model described by its config.json: wrong shapes: "
            f"{_listing(shapes)}; re-save the model or fix config.json."
        )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = [f"{key} {expected[key]}" if key in expected else key for key in missing]
        raise ToolkitError(
            f"The GIT weights in {files or where} lack {len(missing)} tensor(s) that GitForCausalLM needs: "
            f"{_listing(shown)}; the file is incomplete or belongs to another model."
        )
    unexpected = info.get("unexpected_keys") or []
    if unexpected:
        logger.info("Ignored %d unexpected tensor(s) in %s: %s", len(unexpected), where, _listing(sorted(unexpected)))
    return model


def _found_shape(item: Any, expected: dict[str, list[int]]) -> Any:
    """The file's shape in a transformers ``mismatched_keys`` entry (key, shape, shape), whichever order it uses."""
    shapes = [list(s) for s in item[1:3]] if len(item) >= 3 else []
    others = [s for s in shapes if s != expected.get(item[0])]
    return others[0] if others else "?"


def _resolved_commit(source: str, common: dict[str, Any]) -> str | None:
    """The commit a Hub id resolved to (the snapshot folder of its cached ``config.json``), or ``None``."""
    hub = require("huggingface_hub", extra="generate", purpose="loading GIT from the Hugging Face Hub")
    try:
        path = hub.hf_hub_download(source, "config.json", **common)
    except Exception:
        return None
    parent = Path(path).parent
    return parent.name if parent.parent.name == "snapshots" else None


def _weight_files(source: str) -> str:
    """The weight file(s) of a local folder, for messages ('' for Hub ids)."""
    if not is_local(source):
        return ""
    folder = Path(source)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if len(files) == 1:
        return str(files[0])
    return f"{folder} ({', '.join(p.name for p in files)})" if files else str(folder)


def _describe_source(source: str, revision: str | None) -> str:
    if is_local(source):
        return f"the folder {source}"
    return f"{source}" + (f" (revision {revision})" if revision else "")


def _one_line(err: BaseException) -> str:
    """``type: message`` of an exception on one line, without a trailing full stop (messages add their own)."""
    return f"{type(err).__name__}: {' '.join(str(err).split()).rstrip('.')}"


def _hint(local_files_only: bool) -> str:
    if local_files_only:
        return "; with local_files_only=True it must be in the local Hugging Face cache (or pass a folder)."
    return "; check the id, the revision and the network, or pass a folder written by save_pretrained."


def _listing(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "GIT_LARGE_COCO",
    "GitCaptioner",
    "caption_images",
    "load_images",
]
