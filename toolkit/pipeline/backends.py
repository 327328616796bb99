"""Generator backends: the image and text side of a bundle behind one small interface.

:class:`~toolkit.pipeline.DecodingPipeline` does the EEG side itself (store, encoders, galleries, diffusion prior) and
asks its backend for the rest:

- :meth:`GeneratorBackend.decode` — image embeddings → images (row ``i`` seeded with ``seed + i``);
- :meth:`GeneratorBackend.caption` — image embeddings → captions;
- :meth:`GeneratorBackend.encode_texts` — texts → embeddings (text galleries);
- :attr:`GeneratorBackend.models` — what ``pipeline.vision`` returns: an object with ``embedder``, ``decoder`` and
  ``captioner`` (the demo's :class:`~toolkit.bundles._demo_vision.DemoVision`, or the real backend itself).

Two backends exist. :class:`DemoBackend` wraps the demo bundle's small autoencoder (decoder, attribute captioner, text
embedder). :class:`DiffusersBackend` wraps the real ones: SDXL(-Turbo) fed image embeddings through an IP-Adapter
(:class:`toolkit.generation.EmbedsToImagePipeline`), GIT captions (:class:`toolkit.captions.GitCaptioner`, through
a :class:`toolkit.captions.PixelProjector` when the bundle has one, else of the image each embedding decodes to) and
OpenCLIP text embeddings (:class:`toolkit.embeddings.ClipEmbedder`). Every model loads on first use, from a local
folder or the Hugging Face cache (``HF_HUB_OFFLINE=1`` forbids any download), in float16 on CUDA and float32 on the
CPU.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ToolkitError


@runtime_checkable
class GeneratorBackend(Protocol):
    """What a :class:`~toolkit.pipeline.DecodingPipeline` needs from a bundle's image and text side."""

    #: ``"demo"`` or ``"diffusers"``.
    kind: str
    #: Whether only the direction of an embedding matters (the demo) or also its norm (IP-Adapter, projector).
    scale_free: bool
    #: Template of the text-gallery prompts (``{concept}`` is replaced).
    text_prompt: str
    #: Description of a text gallery made with :meth:`encode_texts` (``{n}``: concepts, ``{prompt}``: template).
    text_gallery: str

    @property
    def models(self) -> Any:
        """The object ``pipeline.vision`` returns (``embedder``, ``decoder``, ``captioner`` attributes)."""

    def decode(self, image_embeds: np.ndarray, *, seed: int, size: int | None) -> list:
        """Images from raw image embeddings ``(n, embed_dim)``; row ``i`` seeded with ``seed + i``; side ``size``."""

    def caption(self, image_embeds: np.ndarray) -> list[str]:
        """One caption per image embedding."""

    def encode_texts(self, texts: Sequence[str], *, normalize: bool) -> np.ndarray:
        """Text embeddings ``(n, embed_dim)`` in the image-embedding space."""

    def describe(self) -> dict:
        """JSON-serialisable description of the generator and captioner (for settings and protocols)."""

    def settings(self) -> dict:
        """Entries added to :attr:`ReconstructionOutput.settings <toolkit.pipeline.ReconstructionOutput>`."""


#: Pose and background of :meth:`DemoBackend.render_captions` (keys of
#: :func:`toolkit.data.simulate._stimuli.sample_image_params`): the middle of the simulator's size and background
#: ranges, centred, upright, no colour jitter, a flat background.
SEMANTIC_RENDER_PARAMS: dict[str, Any] = {
    "size": 0.58, "x": 0.0, "y": 0.0, "rotation": 0.0, "colour_jitter": np.zeros(3), "texture_period": 1.0,
    "texture_phase": 0.0, "background": 130.0, "background_blobs": 0.0, "background_grain": 0.0,
}  # fmt: skip
#: Seed of the renderer's random stream in :meth:`DemoBackend.render_captions` (the same for every caption).
SEMANTIC_RENDER_SEED = 0


def parse_demo_caption(caption: Any) -> tuple[str, str, str]:
    """``"a red striped circle"`` → ``("red", "striped", "circle")``, checked against the simulator's vocabularies.

    Parameters
    ----------
    caption : str
        A caption in the demo captioner's template ``"a <colour> <texture> <shape>"``.

    Returns
    -------
    tuple of str
        ``(colour, texture, shape)``.
    """
    from ..data.simulate import COLOURS, SHAPES, TEXTURES

    if not isinstance(caption, str):
        raise ToolkitError(f"A caption must be a string; got {type(caption).__name__}.")
    words = caption.strip().lower().split()
    if len(words) == 4 and words[0] in ("a", "an"):
        words = words[1:]
    if len(words) != 3:
        raise ToolkitError(
            f"Caption {caption!r} is not of the form 'a <colour> <texture> <shape>' (e.g. 'a red striped circle')."
        )
    for word, (slot, vocabulary) in zip(
        words, (("colour", tuple(COLOURS)), ("texture", TEXTURES), ("shape", SHAPES)), strict=True
    ):
        if word not in vocabulary:
            raise ToolkitError(
                f"Caption {caption!r}: {word!r} is not a {slot} the renderer knows; use one of "
                f"{', '.join(vocabulary)}."
            )
    return words[0], words[1], words[2]


class DemoBackend:
    """The demo bundle's vision models (autoencoder decoder, attribute captioner, text embedder).

    Parameters
    ----------
    directory : str | os.PathLike
        Folder written by :func:`toolkit.bundles._demo_vision.train_demo_vision`.
    """

    kind = "demo"
    scale_free = True
    #: Text-gallery prompts (the demo text embedder reads the concept words themselves) and their description.
    text_prompt = "{concept}"
    text_gallery = "demo text embeddings of the test concept names, {n} concepts"

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self._vision = None

    @property
    def models(self) -> Any:
        """The :class:`~toolkit.bundles._demo_vision.DemoVision` (embedder, decoder, captioner), loaded once."""
        if self._vision is None:
            from ..bundles._demo_vision import load_demo_vision

            self._vision = load_demo_vision(self.directory)
        return self._vision

    def decode(self, image_embeds: np.ndarray, *, seed: int, size: int | None) -> list:
        """Decode embeddings (the demo decoder is deterministic; ``seed`` is only recorded by it)."""
        kwargs = {} if size is None else {"height": size, "width": size}
        return self.models.decoder(image_embeds, **kwargs).images

    def caption(self, image_embeds: np.ndarray) -> list[str]:
        """Attribute captions (``"a red striped circle"``)."""
        return self.models.captioner(image_embeds)

    def encode_texts(self, texts: Sequence[str], *, normalize: bool) -> np.ndarray:
        """The demo text embedder's embeddings of ``texts``."""
        return self.models.embedder.encode_texts(list(texts), normalize=normalize)

    def render_captions(self, captions: Sequence[str], *, size: int = 128) -> list:
        """The demo's *semantic path*: render captions with the simulator's stimulus renderer.

        ATM's semantic path captions the predicted image embedding and generates an image from the caption with a
        text-to-image model; in the demo bundle that model is the simulator's own renderer
        (:func:`toolkit.data.simulate._stimuli.render_image`). Each ``"a <colour> <texture> <shape>"`` caption is
        drawn once at the canonical pose (:data:`SEMANTIC_RENDER_PARAMS`: mid size, centred, upright, no colour
        jitter) on a flat neutral-grey background. The result depends on the caption alone (the renderer's random
        stream, used only by the ``speckled`` texture, is seeded with :data:`SEMANTIC_RENDER_SEED`).

        Parameters
        ----------
        captions : sequence of str
            Captions in the demo captioner's template (``"a red striped circle"``).
        size : int
            Image side in pixels.

        Returns
        -------
        list of PIL.Image.Image
            One RGB image per caption.
        """
        from ..data.simulate._stimuli import render_image

        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= size <= 4096:
            raise ToolkitError(f"size must be a whole number of pixels from 8 to 4096; got {size!r}.")
        if isinstance(captions, str) or not isinstance(captions, Sequence):
            raise ToolkitError(f"captions must be a list of strings; got {type(captions).__name__}.")
        attributes = [parse_demo_caption(c) for c in captions]
        return [
            render_image(shape, colour, texture, dict(SEMANTIC_RENDER_PARAMS), int(size),
                         np.random.default_rng(SEMANTIC_RENDER_SEED))
            for colour, texture, shape in attributes
        ]

    def describe(self) -> dict:
        """What decodes and captions in the demo bundle."""
        return {
            "generator": "demo autoencoder decoder (toolkit.generation.demo)",
            "captioner": "demo attribute heads (toolkit.captions.demo)",
            "semantic": "caption rendered by the simulator's stimulus renderer at a canonical pose "
                        "(toolkit.pipeline.DemoBackend.render_captions)",
        }

    def settings(self) -> dict:
        """Nothing: the demo's reconstruction settings are the prior's alone (the decoder has none)."""
        return {}

    def __repr__(self) -> str:
        return f"DemoBackend({self.directory})"


class DiffusersBackend:
    """SDXL(-Turbo) + IP-Adapter images, GIT captions and OpenCLIP text embeddings of the ``atm-things-eeg`` bundle.

    Parameters
    ----------
    components : Mapping
        The manifest's ``generator``, ``ip_adapter``, ``captioner``, ``projector`` and ``clip`` entries (a local
        ``clip["pretrained"]`` checkpoint given as an absolute path).
    resolve : callable
        Turns a manifest entry into ``(local path or Hub id, revision)`` (see :func:`toolkit.bundles._real.source_of`).
    image_embed_dim : int
        Width of the image embeddings (the IP-Adapter and the projector are checked against it).
    device : str | torch.device | None
        ``None``: CUDA when available, else the CPU.
    dtype : torch.dtype | str | None
        Weight type of SDXL and GIT; ``None``: float16 on CUDA, float32 on the CPU.
    """

    kind = "diffusers"
    scale_free = False
    #: ATM's text prompts of the concepts (``toolkit.embeddings.DEFAULT_PROMPT``) and the text gallery's description.
    text_prompt = "This picture is {concept}"
    text_gallery = "OpenCLIP text embeddings of the prompts '{prompt}' of the test concepts, {n} concepts"
    #: Decoded images kept (about 0.75 MB each at 512 px) so that captioning the same embeddings again (the app,
    #: the reconstruct command) captions the images that were shown instead of generating them again.
    _KEEP = 256

    def __init__(
        self,
        components: Mapping[str, Any],
        resolve: Callable[[Mapping[str, Any]], tuple[str, str | None]],
        *,
        image_embed_dim: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        from ..generation._components import resolve_device, resolve_dtype

        self.components = {k: components.get(k) for k in ("generator", "ip_adapter", "captioner", "projector", "clip")}
        self._resolve = resolve
        self.image_embed_dim = int(image_embed_dim)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        generator = self.components["generator"] or {}
        self.num_inference_steps = int(generator.get("num_inference_steps", 4))
        self.guidance_scale = float(generator.get("guidance_scale", 0.0))
        self._lock = threading.RLock()
        self._generator = None
        self._git = None
        self._projector: Any = False  # False: not loaded yet; None: the bundle has none
        self._embedder = None
        self._recent: OrderedDict[bytes, Any] = OrderedDict()

    # -- models (loaded on first use) ----------------------------------------------------------------------------
    @property
    def models(self) -> DiffusersBackend:
        """The backend itself: ``embedder``, ``decoder`` and ``captioner`` like the demo's vision models."""
        return self

    @staticmethod
    def _offline() -> bool:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")

    @property
    def generator(self) -> Any:
        """The :class:`~toolkit.generation.EmbedsToImagePipeline` (SDXL + IP-Adapter), loaded once."""
        with self._lock:
            if self._generator is None:
                from ..generation import EmbedsToImagePipeline

                source, revision = self._resolve(self.components["generator"])
                adapter = self.components["ip_adapter"]
                adapter_source, adapter_revision = self._resolve(adapter)
                if adapter.get("weight_name"):
                    ip_adapter: Any = (adapter_source, adapter.get("subfolder"), adapter["weight_name"])
                else:
                    ip_adapter = adapter_source  # a weights file
                self._generator = EmbedsToImagePipeline.from_pretrained(
                    source,
                    ip_adapter=ip_adapter,
                    revision=revision,
                    ip_adapter_revision=adapter_revision,
                    image_embed_dim=self.image_embed_dim,
                    device=self.device,
                    dtype=self.dtype,
                    local_files_only=self._offline(),
                )
            return self._generator

    @property
    def decoder(self) -> Any:
        """Same as :attr:`generator` (called like the demo decoder: ``decoder(embeds, height=, width=).images``)."""
        return self.generator

    @property
    def git(self) -> Any:
        """The :class:`~toolkit.captions.GitCaptioner`, loaded once."""
        with self._lock:
            if self._git is None:
                from ..captions import GitCaptioner

                source, revision = self._resolve(self.components["captioner"])
                self._git = GitCaptioner.from_pretrained(
                    source, revision=revision, device=self.device, dtype=self.dtype,
                    local_files_only=self._offline(),
                )
            return self._git

    @property
    def projector(self) -> Any:
        """The :class:`~toolkit.captions.PixelProjector` (image embedding → GIT vision tokens), or ``None``."""
        with self._lock:
            if self._projector is False:
                entry = self.components["projector"]
                if not entry:
                    self._projector = None
                else:
                    from ..captions import PixelProjector

                    source, revision = self._resolve(entry)
                    projector = PixelProjector.from_pretrained(
                        source, revision=revision, local_files_only=self._offline()
                    )
                    if projector.config.embed_dim != self.image_embed_dim:
                        raise ToolkitError(
                            f"The GIT token projector {source} takes {projector.config.embed_dim}-dimensional "
                            f"embeddings but the bundle's image embeddings are {self.image_embed_dim}-dimensional; "
                            "use the projector trained on this embedding model."
                        )
                    # On the CPU in float32 (about a million parameters): EmbeddingCaptioner feeds it CPU tensors.
                    self._projector = projector.eval()
            return self._projector

    @property
    def embedder(self) -> Any:
        """The OpenCLIP :class:`~toolkit.embeddings.ClipEmbedder` of the bundle's ``clip`` entry, loaded once."""
        with self._lock:
            if self._embedder is None:
                import torch

                from ..embeddings import ClipEmbedder

                clip = self.components["clip"] or {}
                self._embedder = ClipEmbedder.from_open_clip(
                    str(clip.get("open_clip", "ViT-H-14")),
                    str(clip.get("pretrained", "laion2b_s32b_b79k")),
                    device=str(self.device),
                    precision="fp16" if self.dtype == torch.float16 else "fp32",
                )
            return self._embedder

    @property
    def captioner(self) -> Callable[[Any], list[str]]:
        """``captioner(image_embeds) -> list of str`` (see :meth:`caption`)."""
        return self.caption

    # -- the backend interface -----------------------------------------------------------------------------------
    def decode(self, image_embeds: np.ndarray, *, seed: int, size: int | None) -> list:
        """SDXL images at the model's resolution (resized to ``size`` × ``size`` when given)."""
        from PIL import Image

        embeds = np.ascontiguousarray(image_embeds, dtype=np.float32)
        out = self.generator(
            embeds, seed=int(seed), num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale, progress_bar=False,
        )
        images = list(out.images)
        with self._lock:
            for row, image in zip(embeds, images):
                key = _digest(row)
                self._recent[key] = image
                self._recent.move_to_end(key)
            while len(self._recent) > self._KEEP:
                self._recent.popitem(last=False)
        if size is not None:
            images = [im if im.size == (size, size) else im.resize((size, size), Image.Resampling.BICUBIC)
                      for im in images]
        return images

    def caption(self, image_embeds: Any) -> list[str]:
        """GIT captions: of the projector's vision tokens when the bundle has a projector (ATM's semantic path),
        else of the image each embedding decodes to (the image made by :meth:`decode`, or one made with seed 0)."""
        embeds = _as_matrix(image_embeds, self.image_embed_dim)
        projector = self.projector
        if projector is not None:
            from ..captions import EmbeddingCaptioner
            from ..embeddings import l2_normalize

            if projector.config.normalized_inputs:
                embeds = l2_normalize(embeds)
            return EmbeddingCaptioner(projector, self.git)(embeds)
        with self._lock:
            images = [self._recent.get(_digest(row)) for row in embeds]
        todo = [i for i, image in enumerate(images) if image is None]
        if todo:
            for i, image in zip(todo, self.decode(embeds[todo], seed=0, size=None)):
                images[i] = image
        return self.git.caption_images(images, progress_bar=False)

    def encode_texts(self, texts: Sequence[str], *, normalize: bool) -> np.ndarray:
        """OpenCLIP text embeddings (the model is loaded on first use)."""
        return self.embedder.encode_texts(list(texts), normalize=normalize)

    def describe(self) -> dict:
        """Sources and settings of the generator, the IP-Adapter and the captioner."""

        def where(entry: Any) -> Any:
            if not entry:
                return None
            source, revision = self._resolve(entry)
            return source if revision is None else f"{source}@{revision}"

        adapter = self.components["ip_adapter"] or {}
        return {
            "generator": (
                f"SDXL + IP-Adapter (toolkit.generation.EmbedsToImagePipeline) from "
                f"{where(self.components['generator'])}"
            ),
            "generator_steps": self.num_inference_steps,
            "generator_guidance_scale": self.guidance_scale,
            "ip_adapter": "/".join(
                str(p) for p in (where(adapter), adapter.get("subfolder"), adapter.get("weight_name")) if p
            ),
            "captioner": (
                f"GIT (toolkit.captions.GitCaptioner) from {where(self.components['captioner'])}, "
                + ("on projected vision tokens" if self.components["projector"] else "of the decoded images")
            ),
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    def settings(self) -> dict:
        """The generator's and captioner's sources and settings, under ``"decoding"``."""
        return {"decoding": self.describe()}

    def __repr__(self) -> str:
        return f"DiffusersBackend(device={self.device}, dtype={self.dtype}, image_embed_dim={self.image_embed_dim})"


def _digest(row: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(row, dtype=np.float32).tobytes()).digest()


def _as_matrix(embeds: Any, width: int) -> np.ndarray:
    """Image embeddings as a finite float32 ``(n, width)`` array, or one clear error."""
    try:
        x = np.array(embeds.detach().float().cpu() if hasattr(embeds, "detach") else embeds, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"image_embeds could not be read as a float array ({err}).") from None
    if x.ndim != 2 or x.shape[1] != width or x.shape[0] == 0:
        raise ToolkitError(f"image_embeds has shape {tuple(x.shape)}; pass (n, {width}) image embeddings.")
    if not np.isfinite(x).all():
        raise ToolkitError("image_embeds contains NaN or infinite values.")
    return x


__all__ = ["SEMANTIC_RENDER_PARAMS", "SEMANTIC_RENDER_SEED", "DemoBackend", "DiffusersBackend", "GeneratorBackend",
           "parse_demo_caption"]
