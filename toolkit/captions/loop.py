"""The prompt-from-caption loop: embedding → (prior) → projector → GIT caption → prompt → (image generator).

ATM's ``GIT_caption_batch.ipynb`` (reference/ATM.md §10): a test EEG embedding goes through the diffusion prior
(4 steps, guidance 5), the PixelProjector and GIT-large-coco (``max_new_tokens=25``); the caption becomes the SDXL
text prompt next to the IP-Adapter image embedding.

- :class:`EmbeddingCaptioner` — image embeddings → captions (projector, then GIT on the projected vision tokens).
  It is a plain callable ``(batch, embed_dim) → list of str``, which is what
  :func:`toolkit.generation.generate_with_captions` takes as its ``captioner``.
- :class:`CaptionLoop` — the whole chain, with the prior and the image generator as callables, so any
  implementation composes with it; e.g. a :class:`toolkit.prior.PriorPipeline` and a
  :class:`toolkit.generation.EmbedsToImagePipeline`:

>>> import torch
>>> from toolkit.captions import CaptionLoop, EmbeddingCaptioner, GitCaptioner, PixelProjector
>>> projector = PixelProjector.from_pretrained("projector/")  # doctest: +SKIP
>>> captioner = EmbeddingCaptioner(projector, GitCaptioner.from_pretrained())  # doctest: +SKIP
>>> def prior(eeg_embeds):  # ATM's caption setting: 4 steps, guidance 5, seeded  # doctest: +SKIP
...     g = torch.Generator().manual_seed(0)
...     return prior_pipe(eeg_embeds, num_inference_steps=4, guidance_scale=5.0, generator=g)
>>> out = CaptionLoop(captioner, prior=prior)(eeg_embeds, generate=sdxl, seed=0)  # doctest: +SKIP
>>> out.captions[0], out.images.images[0]  # doctest: +SKIP

Prompts are made with :func:`toolkit.generation.caption_prompt` (tokenizer markers removed, spacing tidied, a
template with one ``{caption}`` field). The paper (C.4) calls the semantic path optional and its captions unstable;
the reconstructions it shows do not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ToolkitError
from ..generation._checks import as_float_tensor, check_int
from ..utils import progress
from .git import DEFAULT_MAX_NEW_TOKENS, GitCaptioner
from .projector import PixelProjector

DEFAULT_TEMPLATE = "{caption}"
"""The caption itself is the prompt (ATM)."""


@dataclass
class CaptionLoopOutput:
    """Output of :class:`CaptionLoop`.

    Attributes
    ----------
    captions : list of str
        One caption per input embedding.
    prompts : list of str
        The prompts made from the captions (what the generator received).
    image_embeds : torch.Tensor, shape (n, embed_dim)
        The embeddings that were captioned: the prior's output, or the inputs without a prior (CPU, float32).
    images : Any
        What ``generate`` returned (e.g. an ``EmbedsToImageOutput``), or ``None`` without ``generate``.
    """

    captions: list[str]
    prompts: list[str]
    image_embeds: torch.Tensor
    images: Any = None


def format_prompts(captions: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """Prompts from captions with :func:`toolkit.generation.caption_prompt` (template with one ``{caption}``).

    Parameters
    ----------
    captions : sequence of str
        The captions.
    template : str
        E.g. ``"{caption}"`` (ATM) or ``"a photo of {caption}, high quality"``.

    Returns
    -------
    list of str
        One prompt per caption (``""`` for an empty caption).
    """
    from ..generation import caption_prompt

    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise ToolkitError(f"captions must be a sequence of strings, got {type(captions).__name__}.")
    caption_prompt("", template=template)  # checks the template even when there are no captions
    return [caption_prompt(c, template=template) for c in captions]


def check_projector_fits(projector: PixelProjector, captioner: GitCaptioner) -> None:
    """Refuse a projector whose output is not the captioner's (n_vision_tokens, vision_hidden_size)."""
    made = projector.output_shape
    wanted = (captioner.n_vision_tokens, captioner.vision_hidden_size)
    if made != wanted:
        raise ToolkitError(
            f"The projector makes {made[0]} × {made[1]} vision tokens but the GIT model takes {wanted[0]} × "
            f"{wanted[1]} (its vision encoder's sequence length × hidden size); use the projector trained for this "
            "GIT model, or the GIT model it was trained for."
        )


class EmbeddingCaptioner:
    """Image embeddings → captions: :class:`PixelProjector`, then :class:`GitCaptioner` on the vision tokens.

    Parameters
    ----------
    projector : PixelProjector
        Its output must be the captioner's (n_vision_tokens, vision_hidden_size).
    captioner : GitCaptioner
        The GIT model.
    max_new_tokens : int
        Longest caption in tokens (ATM: 25).
    num_beams : int
        1: greedy decoding (ATM); more: beam search. Both are deterministic.
    batch_size : int
        Embeddings projected and captioned at a time (each holds n_tokens × hidden_size floats of tokens).
    """

    def __init__(
        self,
        projector: PixelProjector,
        captioner: GitCaptioner,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
        batch_size: int = 16,
    ) -> None:
        if not isinstance(projector, PixelProjector):
            raise ToolkitError(f"projector must be a PixelProjector, got {type(projector).__name__}.")
        if not isinstance(captioner, GitCaptioner):
            raise ToolkitError(f"captioner must be a GitCaptioner, got {type(captioner).__name__}.")
        check_projector_fits(projector, captioner)
        self.projector = projector
        self.captioner = captioner
        self.max_new_tokens = check_int(max_new_tokens, "max_new_tokens", minimum=1, maximum=512)
        self.num_beams = check_int(num_beams, "num_beams", minimum=1, maximum=64)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)

    @property
    def embed_dim(self) -> int:
        """Width of the embeddings it captions (the projector's input)."""
        return self.projector.config.embed_dim

    def check_embeds(self, image_embeds: Any, name: str = "image_embeds") -> torch.Tensor:
        """``image_embeds`` as a finite float tensor (n ≥ 1, embed_dim), or a :class:`~toolkit.ToolkitError`."""
        x = as_float_tensor(image_embeds, name)
        width = self.embed_dim
        if x.ndim != 2 or x.shape[1] != width or x.shape[0] < 1:
            raise ToolkitError(
                f"{name} has shape {tuple(x.shape)} but the projector takes (batch, {width}) embeddings (its "
                f"embed_dim); pass embeddings of the model it was trained on."
            )
        return x

    def vision_tokens(self, image_embeds: Any) -> torch.Tensor:
        """Projector output (n, n_tokens, hidden_size) for image embeddings, without gradients."""
        x = self.check_embeds(image_embeds)
        was_training = self.projector.training
        self.projector.eval()
        try:
            with torch.inference_mode():
                return self.projector(x)
        finally:
            self.projector.train(was_training)

    def __call__(self, image_embeds: Any, *, progress_bar: bool = False) -> list[str]:
        """Caption image embeddings.

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n, embed_dim)
            Image embeddings (or the prior's predictions of them), as the projector was trained on.
        progress_bar : bool
            Show a progress bar over the batches.

        Returns
        -------
        list of str
            One caption per row.
        """
        x = self.check_embeds(image_embeds)
        captions: list[str] = []
        starts = range(0, x.shape[0], self.batch_size)
        for start in progress(starts, desc="captioning embeddings", disable=None if progress_bar else True):
            captions.extend(
                self.captioner.caption_vision_tokens(
                    self.vision_tokens(x[start : start + self.batch_size]),
                    max_new_tokens=self.max_new_tokens,
                    num_beams=self.num_beams,
                    batch_size=self.batch_size,
                    progress_bar=False,
                )
            )
        return captions

    @property
    def settings(self) -> dict[str, Any]:
        """Decoding settings, for protocol cards."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "decoding": "greedy" if self.num_beams == 1 else "beam search",
            "batch_size": self.batch_size,
        }


class CaptionLoop:
    """Embeddings → (prior) → captions → prompts (→ images): ATM's semantic path as one object.

    Parameters
    ----------
    captioner : EmbeddingCaptioner | callable
        Image embeddings (batch, dim) → one caption per row; usually an :class:`EmbeddingCaptioner`.
    prior : callable | None
        ``prior(embeds) → image_embeds`` applied first (e.g. a seeded :class:`toolkit.prior.PriorPipeline` call);
        it may return a tensor, an array, an object with ``image_embeds`` or a tuple whose first item is one of
        those. ``None``: the inputs are already image embeddings.
    template : str
        Prompt template with one ``{caption}`` field.
    """

    def __init__(
        self,
        captioner: Callable[[torch.Tensor], Sequence[str]],
        *,
        prior: Callable[[torch.Tensor], Any] | None = None,
        template: str = DEFAULT_TEMPLATE,
    ) -> None:
        if not callable(captioner):
            raise ToolkitError(
                f"captioner must be an EmbeddingCaptioner or a callable embeds → captions, got "
                f"{type(captioner).__name__}."
            )
        if prior is not None and not callable(prior):
            raise ToolkitError(f"prior must be a callable embeds → image_embeds or None, got {type(prior).__name__}.")
        format_prompts([], template)  # refuse a bad template now, not after the captioning
        self.captioner = captioner
        self.prior = prior
        self.template = template

    def image_embeds(self, embeds: Any) -> torch.Tensor:
        """The embeddings to caption: ``prior(embeds)`` with a prior, else ``embeds`` (float32 on the CPU)."""
        x = as_float_tensor(embeds, "embeds")
        if x.ndim != 2 or x.shape[0] < 1:
            raise ToolkitError(f"embeds has shape {tuple(x.shape)}; pass (batch, dim) embeddings with batch ≥ 1.")
        if self.prior is not None:
            x = _prior_output(self.prior(x))
            if x.ndim != 2 or x.shape[0] != len(embeds):
                raise ToolkitError(
                    f"The prior returned shape {tuple(x.shape)} for {len(embeds)} embeddings; it must return one "
                    "(batch, embed_dim) row per input."
                )
        return x.detach().float().cpu()

    def captions(self, embeds: Any) -> list[str]:
        """Captions of embeddings (through the prior when there is one)."""
        return self._caption(self.image_embeds(embeds))

    def __call__(self, embeds: Any, *, generate: Callable[..., Any] | None = None, **generate_kwargs: Any) -> Any:
        """Run the loop.

        Parameters
        ----------
        embeds : torch.Tensor | numpy.ndarray, shape (n, dim)
            EEG embeddings (with a prior) or image embeddings (without).
        generate : callable | None
            Image generator called as ``generate(image_embeds, prompt=prompts, **generate_kwargs)`` — the signature of
            :class:`toolkit.generation.EmbedsToImagePipeline` — with the (prior's) embeddings and the prompts.
        **generate_kwargs
            Passed to ``generate`` (e.g. ``seed=0``); refused without it.

        Returns
        -------
        CaptionLoopOutput
            Captions, prompts, the captioned embeddings and the generator's output.
        """
        if generate is not None and not callable(generate):
            raise ToolkitError(f"generate must be a callable or None, got {type(generate).__name__}.")
        if generate is None and generate_kwargs:
            raise ToolkitError(
                f"Arguments {sorted(generate_kwargs)} are for the image generator, but no generate callable was given."
            )
        if "prompt" in generate_kwargs:
            raise ToolkitError("CaptionLoop makes the prompts from the captions; do not pass prompt.")
        image_embeds = self.image_embeds(embeds)
        captions = self._caption(image_embeds)
        prompts = format_prompts(captions, self.template)
        images = None if generate is None else generate(image_embeds, prompt=prompts, **generate_kwargs)
        return CaptionLoopOutput(captions=captions, prompts=prompts, image_embeds=image_embeds, images=images)

    def _caption(self, image_embeds: torch.Tensor) -> list[str]:
        got = self.captioner(image_embeds)
        if isinstance(got, str) or not isinstance(got, Sequence) or not all(isinstance(c, str) for c in got):
            raise ToolkitError(f"The captioner must return a list of strings, got {type(got).__name__}.")
        if len(got) != image_embeds.shape[0]:
            raise ToolkitError(
                f"The captioner returned {len(got)} captions for {image_embeds.shape[0]} embeddings; it must return "
                "one per row."
            )
        return list(got)


def _prior_output(value: Any) -> torch.Tensor:
    if isinstance(value, tuple) and value:
        value = value[0]
    if hasattr(value, "image_embeds"):
        value = value.image_embeds
    return as_float_tensor(value, "the prior's output")


__all__ = [
    "DEFAULT_TEMPLATE",
    "CaptionLoop",
    "CaptionLoopOutput",
    "EmbeddingCaptioner",
    "check_projector_fits",
    "format_prompts",
]
