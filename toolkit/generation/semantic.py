"""ATM's semantic path: a caption of the reconstructed embedding becomes the SDXL text prompt.

(reference/ATM.md §10.) ATM captions the prior's image embedding (PixelProjector → GIT-large-COCO, up to 25 new
tokens) and passes the caption as the SDXL prompt next to the IP-Adapter embedding. The paper calls the path
optional: captions are unstable and the shown reconstructions do not rely on it.

The captioner is any callable mapping a batch of image embeddings to one caption each, so these helpers work with
the toolkit's captioner or any other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ToolkitError
from . import _checks
from .ip_adapter import EmbedsToImagePipeline

_SPECIAL_TOKENS = re.compile(
    r"\[(?:CLS|SEP|PAD|UNK|MASK)\]|<\|?(?:startoftext|endoftext|pad|unk|s|/s)\|?>", re.IGNORECASE
)


def caption_prompt(caption: str, *, template: str = "{caption}") -> str:
    """Turn a generated caption into a prompt: drop tokenizer markers and control characters, tidy the spacing.

    Parameters
    ----------
    caption : str
        A caption (e.g. GIT's ``"a dog running on the grass [SEP]"``).
    template : str
        Format with one ``{caption}`` field, e.g. ``"a photo of {caption}"``; ``"{caption}"`` uses it as is.

    Returns
    -------
    str
        The prompt; an empty caption gives ``""`` whatever the template (the image-only setting).
    """
    if not isinstance(caption, str):
        raise ToolkitError(f"caption must be a string, got {type(caption).__name__}.")
    if not isinstance(template, str) or template.count("{caption}") != 1:
        raise ToolkitError(f"template must be a string with exactly one '{{caption}}' field, got {template!r}.")
    text = _SPECIAL_TOKENS.sub(" ", unicodedata.normalize("NFC", caption))
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    # str.replace rather than str.format: a template may hold other braces, and captions are not format strings.
    return template.replace("{caption}", text) if text else ""


@dataclass
class CaptionedImagesOutput:
    """Output of :func:`generate_with_captions`.

    Attributes
    ----------
    images : list of PIL.Image.Image
        Images, embedding-major (as :class:`~toolkit.generation.EmbedsToImageOutput`).
    captions : list of str
        The captioner's raw output, one per embedding.
    prompts : list of str
        The prompts made from them.
    num_images_per_embed : int
        Images per embedding.
    seeds : list of int | None
        The seed of every image when the call was given ``seed``.
    """

    images: list[Any]
    captions: list[str]
    prompts: list[str] = field(default_factory=list)
    num_images_per_embed: int = 1
    seeds: list[int] | None = None


def generate_with_captions(
    generator: EmbedsToImagePipeline,
    image_embeds: Any,
    captioner: Callable[[Any], Sequence[str]] | Sequence[str],
    *,
    template: str = "{caption}",
    caption_batch_size: int = 32,
    **generate_kwargs: Any,
) -> CaptionedImagesOutput:
    """Caption each embedding, use the caption as its prompt, and generate with the IP-Adapter embedding.

    Parameters
    ----------
    generator : EmbedsToImagePipeline
        The SDXL(-Turbo) + IP-Adapter generator.
    image_embeds : torch.Tensor | numpy.ndarray, shape (n, image_embed_dim)
        CLIP image embeddings (the prior's output).
    captioner : Callable | Sequence[str]
        A callable taking a (batch, image_embed_dim) tensor and returning one caption per row, or the captions
        themselves (one per embedding, e.g. read from a file).
    template : str
        Prompt template with one ``{caption}`` field (see :func:`caption_prompt`).
    caption_batch_size : int
        Embeddings per captioner call.
    **generate_kwargs
        Passed to :meth:`EmbedsToImagePipeline.__call__` (``num_inference_steps``, ``seed``, ...), except
        ``prompt``.

    Returns
    -------
    CaptionedImagesOutput
        Images, captions and prompts.
    """
    if not isinstance(generator, EmbedsToImagePipeline):
        raise ToolkitError(f"generator must be an EmbedsToImagePipeline, got {type(generator).__name__}.")
    if "prompt" in generate_kwargs:
        raise ToolkitError("generate_with_captions makes the prompts from the captions; do not pass prompt.")
    embeds = _checks.check_embeds(
        image_embeds, generator.image_embed_dim, "image_embeds", what="the IP-Adapter loaded in this pipeline"
    )
    n = embeds.shape[0]
    batch = _checks.check_int(caption_batch_size, "caption_batch_size", minimum=1)
    if callable(captioner):
        captions: list[str] = []
        for start in range(0, n, batch):
            chunk = embeds[start : start + batch]
            got = captioner(chunk)
            if isinstance(got, str) or not isinstance(got, Sequence) or not all(isinstance(c, str) for c in got):
                raise ToolkitError(
                    f"captioner must return a sequence of strings (one per embedding), got {type(got).__name__}."
                )
            if len(got) != chunk.shape[0]:
                raise ToolkitError(
                    f"captioner returned {len(got)} captions for {chunk.shape[0]} embeddings; it must return one per "
                    "row."
                )
            captions.extend(got)
    else:
        captions = _checks.check_prompts(captioner, n, "captioner (captions)")
    prompts = [caption_prompt(c, template=template) for c in captions]
    out = generator(embeds, prompt=prompts, **generate_kwargs)
    return CaptionedImagesOutput(
        images=out.images,
        captions=list(captions),
        prompts=prompts,
        num_images_per_embed=out.num_images_per_embed,
        seeds=out.seeds,
    )


__all__ = ["CaptionedImagesOutput", "caption_prompt", "generate_with_captions"]
