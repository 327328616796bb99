"""The demo bundle's offline embedding → image path: the decoder of the demo autoencoder, on a CPU, in milliseconds.

The real bundle turns (predicted) CLIP image embeddings into images with SDXL-Turbo and an IP-Adapter; the ``demo``
bundle cannot download them, so it decodes embeddings of its own space (:mod:`toolkit.embeddings.demo`) with the
decoder trained next to the demo image encoder. :class:`DemoDecoder` is called like
:class:`~toolkit.generation.EmbedsToImagePipeline` (``decoder(image_embeds, prompt=..., seed=...)``, returning an
:class:`~toolkit.generation.EmbedsToImageOutput`), so :class:`toolkit.captions.CaptionLoop` and the app use either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embeddings.demo import (
    DemoVisionConfig,
    check_batch_size,
    conv_channels,
    load_module_state,
    part_tensors,
    read_demo_vision,
    tensor_digest,
)
from ..errors import ToolkitError
from . import _checks

if TYPE_CHECKING:
    import torch

    from .ip_adapter import EmbedsToImageOutput

#: Default side in pixels of the images :class:`DemoDecoder` returns (the decoder's output is upsampled to it).
DISPLAY_SIZE = 256


def build_decoder(config: DemoVisionConfig) -> torch.nn.Module:
    """The image decoder: a linear layer to a 4 × 4 map, then transposed convolutions doubling the resolution.

    Its input is a unit-length embedding times ``sqrt(embed_dim)`` (coordinates of about unit variance). Transposed
    4 × 4 convolutions with stride 2 cost about half of nearest upsampling + 3 × 3 convolutions on a CPU; their
    kernel size is a multiple of the stride, which keeps checkerboard artefacts faint.

    Parameters
    ----------
    config : DemoVisionConfig
        Sizes.

    Returns
    -------
    torch.nn.Sequential
        Maps (batch, embed_dim) to (batch, 3, decoder_size, decoder_size) pixels in [0, 1].
    """
    from torch import nn

    channels = list(reversed(conv_channels(config.decoder_width, config.decoder_size)))
    c_in = channels[0]
    layers: list[nn.Module] = [nn.Linear(config.embed_dim, c_in * 16), nn.SiLU(), nn.Unflatten(1, (c_in, 4, 4))]
    for c_out in channels:
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
            nn.GroupNorm(min(8, c_out), c_out),
            nn.SiLU(),
        ]
        c_in = c_out
    layers += [nn.Conv2d(c_in, 3, 3, padding=1), nn.Sigmoid()]
    return nn.Sequential(*layers)


def decoder_input(embeds: torch.Tensor, embed_dim: int) -> torch.Tensor:
    """What the decoder network takes: each row scaled to unit length, times ``sqrt(embed_dim)``."""
    import torch

    return torch.nn.functional.normalize(embeds, dim=-1) * float(np.sqrt(embed_dim))


class DemoDecoder:
    """Demo embeddings → images: the demo autoencoder's decoder, upsampled to a display size.

    Only the direction of an embedding matters (every row is L2-normalised first), so raw image embeddings (the
    encoder's or the diffusion prior's output, the usual input), L2-normalised ones and EEG-encoder predictions
    all decode. Decoding is deterministic: the same embedding always gives the same image.

    Build it with :meth:`from_pretrained` or :func:`toolkit.bundles._demo_vision.load_demo_vision`.

    Parameters
    ----------
    config : DemoVisionConfig
        Sizes.
    decoder_state : mapping of str to np.ndarray
        Weights of :func:`build_decoder` ``(config)``.
    """

    def __init__(self, config: DemoVisionConfig, decoder_state: Mapping[str, np.ndarray]) -> None:
        if not isinstance(config, DemoVisionConfig):
            raise ToolkitError(f"config must be a DemoVisionConfig, got {type(config).__name__}.")
        self.config = config
        self.decoder = build_decoder(config).eval()
        load_module_state(self.decoder, decoder_state, "decoder")
        for param in self.decoder.parameters():
            param.requires_grad_(False)
        self.weights = tensor_digest(self.decoder.state_dict())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> DemoDecoder:
        """Load the decoder from a demo-vision folder (see :func:`toolkit.embeddings.demo.read_demo_vision`).

        Parameters
        ----------
        directory : str | os.PathLike
            Folder holding ``config.json`` and ``model.safetensors``.

        Returns
        -------
        DemoDecoder
            The decoder, on the CPU.
        """
        _, config, tensors = read_demo_vision(directory)
        return cls(config, part_tensors(tensors, "decoder", f"'{directory}'"))

    @property
    def embed_dim(self) -> int:
        """Width of the embeddings it decodes."""
        return self.config.embed_dim

    @property
    def image_embed_dim(self) -> int:
        """Same as :attr:`embed_dim` (the name :class:`~toolkit.generation.EmbedsToImagePipeline` uses)."""
        return self.config.embed_dim

    def check_embeds(self, image_embeds: Any, name: str = "image_embeds") -> torch.Tensor:
        """``image_embeds`` as a float32 (n ≥ 1, embed_dim) tensor without zero rows, or a ToolkitError."""
        x = _checks.check_embeds(
            image_embeds, self.embed_dim, name, what=f"the demo decoder (embed_dim {self.embed_dim})"
        ).float()
        norms = x.norm(dim=1)
        if bool((norms == 0).any()):
            rows = [int(i) for i in (norms == 0).nonzero().flatten()[:5]]
            raise ToolkitError(f"{name} has all-zero rows {rows}, which have no direction to decode; drop them.")
        return x

    def decode(self, image_embeds: Any, *, batch_size: int = 64) -> np.ndarray:
        """The decoder's own output, before upsampling.

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n, embed_dim)
            Embeddings of the demo space (raw or normalised).
        batch_size : int
            Embeddings per forward pass.

        Returns
        -------
        np.ndarray of float32, shape (n, decoder_size, decoder_size, 3)
            RGB pixels in [0, 1].
        """
        import torch

        x = self.check_embeds(image_embeds)
        batch_size = check_batch_size(batch_size)
        out = []
        with torch.inference_mode():
            for start in range(0, x.shape[0], batch_size):
                chunk = decoder_input(x[start : start + batch_size].cpu(), self.embed_dim)
                out.append(self.decoder(chunk).permute(0, 2, 3, 1).numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def __call__(
        self,
        image_embeds: Any,
        *,
        prompt: str | Sequence[str] = "",
        height: int | None = None,
        width: int | None = None,
        seed: int | Sequence[int] | None = None,
        batch_size: int = 64,
        progress_bar: bool = False,
    ) -> EmbedsToImageOutput:
        """Decode embeddings into PIL images (called like :class:`~toolkit.generation.EmbedsToImagePipeline`).

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n, embed_dim)
            Embeddings of the demo space: raw (the encoder's or the diffusion prior's output), normalised, or
            predicted from EEG — only each row's direction is used.
        prompt : str | Sequence[str]
            Recorded in the output for the caption loop; the demo decoder draws from the embedding alone.
        height, width : int | None
            Output size in pixels (the decoder's ``decoder_size`` output is upsampled bicubically);
            ``None``: :data:`DISPLAY_SIZE`.
        seed : int | Sequence[int] | None
            Recorded per image as in :class:`~toolkit.generation.EmbedsToImagePipeline`; the decoder has no
            randomness, so the images do not depend on it.
        batch_size : int
            Embeddings per forward pass.
        progress_bar : bool
            Unused (decoding a batch takes milliseconds); accepted so callers can pass the same arguments to every
            generator.

        Returns
        -------
        EmbedsToImageOutput
            One RGB image per embedding.
        """
        from PIL import Image

        from .ip_adapter import EmbedsToImageOutput

        embeds = self.check_embeds(image_embeds)
        n = embeds.shape[0]
        prompts = _checks.check_prompts(prompt, n)
        size = tuple(
            DISPLAY_SIZE if value is None else _checks.check_int(value, name, minimum=1, maximum=4096)
            for name, value in (("width", width), ("height", height))
        )
        _, seeds = _checks.make_generators(None, seed, n, 1)
        pixels = self.decode(embeds, batch_size=batch_size)
        images = []
        for array in pixels:
            img = Image.fromarray(np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8), "RGB")
            images.append(img if img.size == size else img.resize(size, Image.Resampling.BICUBIC))
        return EmbedsToImageOutput(images=images, num_images_per_embed=1, seeds=seeds, prompts=prompts)

    def __repr__(self) -> str:
        c = self.config
        return f"DemoDecoder(embed_dim={c.embed_dim}, decoder_size={c.decoder_size}, weights={self.weights[:19]}…)"


__all__ = ["DISPLAY_SIZE", "DemoDecoder", "build_decoder", "decoder_input"]
