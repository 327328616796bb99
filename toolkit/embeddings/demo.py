"""The demo bundle's offline image and text embedder for simulated stimuli (no downloaded weights).

The ``demo`` bundle cannot fetch OpenCLIP, so it trains its own small vision models on the simulated training images
on first use (:func:`toolkit.bundles._demo_vision.train_demo_vision`, about a minute on one CPU core). They share
one embedding space:

- :class:`DemoEmbedder` — the encoder of a small convolutional autoencoder (images → ``image_embeds``) and a
  compositional text embedder (``"This picture is red_striped_circle"`` → ``text_embeds``); it implements the
  :class:`~toolkit.embeddings.Embedder` protocol, so :func:`~toolkit.embeddings.embed_image_set` and
  :func:`~toolkit.embeddings.embed_concepts` cache its output like OpenCLIP's;
- :class:`toolkit.generation.demo.DemoDecoder` — the autoencoder's decoder (embedding → image);
- :class:`toolkit.captions.demo.DemoCaptioner` — linear attribute heads (embedding → ``"a red striped circle"``).

The space is CLIP-like: the encoder was trained with attribute classification next to reconstruction, so colour,
texture and shape are linearly readable and unseen (colour, texture, shape) combinations land where their words
predict. Raw embeddings have a constant norm ``embed_scale · sqrt(embed_dim)`` (coordinates with a root mean square
of ``embed_scale``, within the diffusion prior's ±1 clipping range); the decoder and the captioner use only the
direction of a row, so raw, L2-normalised and predicted (prior or EEG encoder) embeddings all work.

The files (``config.json`` + ``model.safetensors``) are read by :func:`read_demo_vision`; nothing in them is executed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ToolkitError
from .base import ImageInput, l2_normalize, load_image

if TYPE_CHECKING:
    import torch

#: ``format`` of a demo-vision ``config.json``.
DEMO_VISION_FORMAT = "eeg-visual-toolkit/demo-vision"
#: Version of the file layout this toolkit reads and writes.
DEMO_VISION_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: The attributes, in the order their words appear in a simulated concept name (``red_striped_circle``).
ATTRIBUTES = ("colour", "texture", "shape")
#: Words of prompt templates that name no attribute; the text embedder skips them (any other unknown word is an
#: error, since the demo space knows nothing but the simulator's vocabulary).
FUNCTION_WORDS = frozenset(
    {"a", "an", "and", "drawing", "image", "is", "of", "photo", "picture", "shape", "the", "this", "with"}
)
#: Mean and spread that map [0, 1] pixels to roughly zero-mean, unit-variance encoder input.
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25
_WORD = re.compile(r"^[a-z]+$")
_SPLIT = re.compile(r"[^a-z]+")


# -- configuration ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoVisionConfig:
    """Sizes and vocabulary of the demo vision models (encoder, decoder, attribute heads, text embedder).

    Parameters
    ----------
    vocabulary : dict of str to tuple of str
        The values of each attribute in :data:`ATTRIBUTES` order (``{"colour": ("red", ...), "texture": (...),
        "shape": (...)}``): lower-case words, unique across attributes.
    image_size : int
        Side in pixels of the encoder's input (stimuli are resized to it); a power of two from 16 to 512.
    decoder_size : int
        Side in pixels of the decoder's output, a power of two from 8 to ``image_size``.
    embed_dim : int
        Embedding length.
    width : int
        Channels of the encoder's first convolution (doubling with each halving of the resolution, at most
        4 × width).
    decoder_width : int
        Channels of the decoder's last block (doubling towards the 4 × 4 map, at most 4 × decoder_width).
    embed_scale : float
        Root mean square of a raw embedding's coordinates (raw rows have norm ``embed_scale * sqrt(embed_dim)``).
    """

    vocabulary: dict[str, tuple[str, ...]]
    image_size: int = 128
    decoder_size: int = 32
    embed_dim: int = 96
    width: int = 16
    decoder_width: int = 16
    embed_scale: float = 0.35
    _words: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.vocabulary, Mapping) or set(self.vocabulary) != set(ATTRIBUTES):
            got = sorted(self.vocabulary) if isinstance(self.vocabulary, Mapping) else type(self.vocabulary).__name__
            raise ToolkitError(
                f"The demo vision vocabulary must map exactly {', '.join(ATTRIBUTES)} to their values; got {got}."
            )
        vocab: dict[str, tuple[str, ...]] = {}
        seen: dict[str, str] = {}
        for attribute in ATTRIBUTES:
            values = self.vocabulary[attribute]
            if isinstance(values, str) or not isinstance(values, Sequence) or len(values) < 2:
                raise ToolkitError(
                    f"The demo vision vocabulary needs at least two {attribute} values; got {values!r}."
                )
            for value in values:
                if not isinstance(value, str) or not _WORD.match(value) or value in FUNCTION_WORDS:
                    raise ToolkitError(
                        f"The {attribute} value {value!r} is not usable as a word: use lower-case letters only, and "
                        "not a function word such as 'the'."
                    )
                if value in seen:
                    raise ToolkitError(
                        f"The word {value!r} is both a {seen[value]} and a {attribute} value; every attribute "
                        "value must be a distinct word."
                    )
                seen[value] = attribute
            vocab[attribute] = tuple(values)
        object.__setattr__(self, "vocabulary", vocab)
        object.__setattr__(self, "_words", tuple(w for a in ATTRIBUTES for w in vocab[a]))
        _check_power_of_two("image_size", self.image_size, 16, 512)
        _check_power_of_two("decoder_size", self.decoder_size, 8, self.image_size)
        _check_int("embed_dim", self.embed_dim, 8, 4096)
        _check_int("width", self.width, 4, 512)
        _check_int("decoder_width", self.decoder_width, 4, 512)
        if (
            isinstance(self.embed_scale, bool)
            or not isinstance(self.embed_scale, (int, float))
            or not math.isfinite(self.embed_scale)
            or not 0 < self.embed_scale <= 10
        ):
            raise ToolkitError(f"embed_scale must be a number in (0, 10], got {self.embed_scale!r}.")

    @property
    def words(self) -> tuple[str, ...]:
        """Every attribute value, colours first, then textures, then shapes (the text embedder's rows)."""
        return self._words

    @property
    def n_values(self) -> dict[str, int]:
        """Number of values of each attribute."""
        return {a: len(self.vocabulary[a]) for a in ATTRIBUTES}

    @property
    def raw_norm(self) -> float:
        """Euclidean norm of every raw image embedding."""
        return float(self.embed_scale) * math.sqrt(self.embed_dim)

    def attribute_of(self, word: str) -> str | None:
        """The attribute whose value ``word`` is, or ``None``."""
        for attribute in ATTRIBUTES:
            if word in self.vocabulary[attribute]:
                return attribute
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (what ``config.json`` stores under ``"config"``)."""
        return {
            "vocabulary": {a: list(self.vocabulary[a]) for a in ATTRIBUTES},
            "image_size": self.image_size,
            "decoder_size": self.decoder_size,
            "embed_dim": self.embed_dim,
            "width": self.width,
            "decoder_width": self.decoder_width,
            "embed_scale": float(self.embed_scale),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the configuration") -> DemoVisionConfig:
        """Rebuild from :meth:`to_dict` output, refusing unknown or missing fields with an error naming ``source``."""
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must hold a JSON object, got {type(data).__name__}.")
        known = {"vocabulary", "image_size", "decoder_size", "embed_dim", "width", "decoder_width", "embed_scale"}
        unknown = sorted(set(data) - known)
        if unknown or "vocabulary" not in data:
            what = f"unknown fields {unknown}" if unknown else "no 'vocabulary'"
            raise ToolkitError(f"{source} has {what}; it was not written by this toolkit's demo vision training.")
        vocabulary = data["vocabulary"]
        if isinstance(vocabulary, Mapping):
            vocabulary = {k: tuple(v) if isinstance(v, list) else v for k, v in vocabulary.items()}
        try:
            return cls(vocabulary=vocabulary, **{k: v for k, v in data.items() if k != "vocabulary"})
        except ToolkitError as err:
            raise ToolkitError(f"{source}: {err}") from None


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ToolkitError(f"{name} must be an integer from {low} to {high}, got {value!r}.")


def _check_power_of_two(name: str, value: Any, low: int, high: int) -> None:
    _check_int(name, value, low, high)
    if value & (value - 1):
        raise ToolkitError(f"{name} must be a power of two (16, 32, 64, ...), got {value}.")


def check_normalize(normalize: Any) -> bool:
    """``normalize`` as a bool, or a :class:`~toolkit.ToolkitError` (it must be given explicitly)."""
    if not isinstance(normalize, (bool, np.bool_)):
        raise ToolkitError(
            f"normalize must be True (L2-normalised, for retrieval) or False (raw, for generation), got {normalize!r}."
        )
    return bool(normalize)


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as a positive int, or a :class:`~toolkit.ToolkitError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ToolkitError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


# -- networks --------------------------------------------------------------------------------------------------------
def conv_channels(width: int, size: int) -> list[int]:
    """Channels of the convolution blocks between ``size`` pixels and the 4 × 4 map, from the large end.

    ``width`` at full resolution, doubling at each halving, at most ``4 * width``.
    """
    n_levels = int(math.log2(size // 4))
    return [min(width * 2**i, 4 * width) for i in range(n_levels)]


def build_encoder(config: DemoVisionConfig) -> torch.nn.Module:
    """The image encoder: a 4 × 4 patch stem, strided convolutions down to 4 × 4, a linear layer to ``embed_dim``.

    The stem reads non-overlapping 4 × 4 patches at full resolution, so the fine textures of 128 px stimuli reach
    the network at the cost of a 32 × 32 layer (an overlapping 8 × 8 stem learnt the textures more slowly).
    GroupNorm rather than BatchNorm, so an embedding never depends on the other images of its batch. The output is
    unnormalised; :func:`scale_embeddings` turns it into raw embeddings.

    Parameters
    ----------
    config : DemoVisionConfig
        Sizes.

    Returns
    -------
    torch.nn.Sequential
        Maps (batch, 3, image_size, image_size) standardised pixels to (batch, embed_dim).
    """
    from torch import nn

    channels = conv_channels(config.width, config.image_size // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(3, channels[0], 4, stride=4),
        nn.GroupNorm(min(8, channels[0]), channels[0]),
        nn.SiLU(),
    ]
    c_in = channels[0]
    for c_out in channels[1:]:
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.SiLU()]
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in * 16, config.embed_dim)]
    return nn.Sequential(*layers)


def scale_embeddings(hidden: torch.Tensor, config: DemoVisionConfig) -> torch.Tensor:
    """Raw embeddings from encoder outputs: each row rescaled to the norm ``config.raw_norm``."""
    import torch

    return torch.nn.functional.normalize(hidden, dim=-1) * config.raw_norm


def images_to_tensor(images: Sequence[ImageInput], size: int) -> torch.Tensor:
    """Open, resize (bilinear, antialiased) and stack images as (n, 3, size, size) float32 pixels in [0, 1].

    Parameters
    ----------
    images : sequence of PIL.Image.Image | str | os.PathLike
        Images or image files; an unreadable file raises an error naming it.
    size : int
        Output side in pixels.

    Returns
    -------
    torch.Tensor
        The pixels.
    """
    import torch
    from PIL import Image

    arrays = []
    for image in images:
        img = load_image(image)
        if img.size != (size, size):
            # PIL widens the bilinear kernel when shrinking, so this also low-passes (no aliasing of textures).
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(img, dtype=np.float32))
    if not arrays:
        return torch.zeros((0, 3, size, size))
    pixels = np.stack(arrays).transpose(0, 3, 1, 2) / np.float32(255.0)
    return torch.from_numpy(np.ascontiguousarray(pixels))


# -- text ------------------------------------------------------------------------------------------------------------
def text_words(text: str, config: DemoVisionConfig) -> list[str]:
    """The attribute words of a text (``"This picture is red_striped_circle"`` → ``["red", "striped", "circle"]``).

    The text is lower-cased and split at anything that is not a letter (spaces, underscores, punctuation); words in
    :data:`FUNCTION_WORDS` are skipped.

    Parameters
    ----------
    text : str
        A concept name, a prompt or a short description.
    config : DemoVisionConfig
        The vocabulary.

    Returns
    -------
    list of str
        The attribute words, in text order.
    """
    if not isinstance(text, str):
        raise ToolkitError(f"Texts must be strings, got {type(text).__name__}.")
    words = [w for w in _SPLIT.split(text.lower()) if w and w not in FUNCTION_WORDS]
    unknown = [w for w in words if config.attribute_of(w) is None]
    if unknown:
        raise ToolkitError(
            f"The text {text!r} holds {', '.join(repr(w) for w in dict.fromkeys(unknown))}, which the demo text "
            f"embedder does not know; it knows only the simulator's attribute words ({', '.join(config.words)})."
        )
    if not words:
        raise ToolkitError(
            f"The text {text!r} names no colour, texture or shape; the demo text embedder needs at least one of "
            f"{', '.join(config.words)}."
        )
    return words


# -- files -----------------------------------------------------------------------------------------------------------
def tensor_digest(tensors: Mapping[str, Any]) -> str:
    """SHA-256 over the sorted names, dtypes, shapes and bytes of float32 tensors or arrays (a weights checksum).

    Parameters
    ----------
    tensors : mapping of str to torch.Tensor | np.ndarray
        Named weights.

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name]
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        digest.update(f"{name}\0float32\0{arr.shape}\n".encode())
        digest.update(arr.tobytes())
    return f"sha256:{digest.hexdigest()}"


def read_demo_vision(directory: str | os.PathLike) -> tuple[dict[str, Any], DemoVisionConfig, dict[str, np.ndarray]]:
    """Read a demo-vision folder (``config.json`` + ``model.safetensors``) and check it against its checksums.

    Parameters
    ----------
    directory : str | os.PathLike
        The folder written by :func:`toolkit.bundles._demo_vision.train_demo_vision`.

    Returns
    -------
    meta : dict
        The whole ``config.json`` (format, versions, training summary, per-part checksums).
    config : DemoVisionConfig
        The model configuration.
    tensors : dict of str to np.ndarray
        Every stored float32 array, by name (``encoder.*``, ``decoder.*``, ``heads.*``, ``text.*``).
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise ToolkitError(
            f"'{directory}' holds no demo vision models ({CONFIG_NAME} and {WEIGHTS_NAME}); train them with "
            "train_demo_vision(SIMULATED_ROOT, FOLDER) from toolkit.bundles._demo_vision."
        )
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ToolkitError(
            f"'{config_path}' is not readable JSON ({err}); train the demo vision models again."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != DEMO_VISION_FORMAT:
        raise ToolkitError(f"'{config_path}' is not a demo vision configuration; point at a demo vision folder.")
    version = meta.get("version")
    if not isinstance(version, int) or version > DEMO_VISION_VERSION:
        raise ToolkitError(
            f"'{config_path}' has layout version {version!r}, newer than this toolkit reads ({DEMO_VISION_VERSION}); "
            "upgrade eeg-visual-toolkit or train the demo vision models again."
        )
    config = DemoVisionConfig.from_dict(meta.get("config"), source=f"'{config_path}'")
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(weights_path))
    except Exception as err:  # safetensors raises several types for a damaged or foreign file
        raise ToolkitError(
            f"'{weights_path}' is damaged or not a safetensors file ({type(err).__name__}); train the demo vision "
            "models again."
        ) from None
    checksums = meta.get("weights_sha256")
    if not isinstance(checksums, dict):
        raise ToolkitError(f"'{config_path}' carries no weight checksums; train the demo vision models again.")
    for part, expected in checksums.items():
        got = tensor_digest({k: v for k, v in tensors.items() if k.startswith(f"{part}.")})
        if got != expected:
            raise ToolkitError(
                f"The {part} weights in '{weights_path}' do not match the checksum in '{config_path}' (the files "
                "are damaged or from different trainings); train the demo vision models again."
            )
    return meta, config, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}


def part_tensors(tensors: Mapping[str, np.ndarray], part: str, source: str) -> dict[str, np.ndarray]:
    """The tensors of one part (``"encoder"``, ...) with the ``part.`` prefix removed; an error if there are none."""
    prefix = f"{part}."
    out = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not out:
        raise ToolkitError(f"{source} holds no {part} weights; train the demo vision models again.")
    return out


def load_module_state(module: torch.nn.Module, state: Mapping[str, np.ndarray], what: str) -> None:
    """Load numpy arrays into ``module`` strictly, or raise an error saying the weights do not fit ``what``."""
    import torch

    try:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ToolkitError(
            f"The stored {what} weights do not fit the configured network ({first}); the files are inconsistent — "
            "train the demo vision models again."
        ) from None


# -- the embedder ----------------------------------------------------------------------------------------------------
class DemoEmbedder:
    """Offline image and text embedder of the demo bundle (an :class:`~toolkit.embeddings.Embedder`).

    Images go through the encoder of the demo autoencoder (resized to ``config.image_size``). Texts are embedded
    compositionally: ``bias + sum of the word vectors of their attribute words``, where the word vectors were
    fitted by least squares so that a training concept's text lands on the mean raw embedding of its images;
    unseen combinations (the test concepts) therefore get the embedding their words predict. A missing attribute
    (``"a red circle"``) contributes its average.

    Build it with :meth:`from_pretrained` or :func:`toolkit.bundles._demo_vision.load_demo_vision`.

    Parameters
    ----------
    config : DemoVisionConfig
        Sizes and vocabulary.
    encoder_state : mapping of str to np.ndarray
        Weights of :func:`build_encoder` ``(config)``.
    word_vectors : np.ndarray, shape (len(config.words), embed_dim)
        One vector per vocabulary word, in :attr:`DemoVisionConfig.words` order.
    text_bias : np.ndarray, shape (embed_dim,)
        Added to every text embedding.
    """

    def __init__(
        self,
        config: DemoVisionConfig,
        encoder_state: Mapping[str, np.ndarray],
        word_vectors: np.ndarray,
        text_bias: np.ndarray,
    ) -> None:
        if not isinstance(config, DemoVisionConfig):
            raise ToolkitError(f"config must be a DemoVisionConfig, got {type(config).__name__}.")
        word_vectors = np.asarray(word_vectors, dtype=np.float32)
        text_bias = np.asarray(text_bias, dtype=np.float32)
        if word_vectors.shape != (len(config.words), config.embed_dim) or text_bias.shape != (config.embed_dim,):
            raise ToolkitError(
                f"The text weights have shapes {word_vectors.shape} and {text_bias.shape} but the configuration needs "
                f"({len(config.words)}, {config.embed_dim}) and ({config.embed_dim},); train the models again."
            )
        self.config = config
        self.encoder = build_encoder(config).eval()
        load_module_state(self.encoder, encoder_state, "encoder")
        for param in self.encoder.parameters():
            param.requires_grad_(False)
        self.word_vectors = word_vectors
        self.text_bias = text_bias
        self._word_index = {w: i for i, w in enumerate(config.words)}
        self._identity: dict[str, Any] | None = None

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> DemoEmbedder:
        """Load the embedder from a demo-vision folder (see :func:`read_demo_vision`).

        Parameters
        ----------
        directory : str | os.PathLike
            Folder holding ``config.json`` and ``model.safetensors``.

        Returns
        -------
        DemoEmbedder
            The embedder, on the CPU.
        """
        _, config, tensors = read_demo_vision(directory)
        text = part_tensors(tensors, "text", f"'{directory}'")
        if "word_vectors" not in text or "bias" not in text:
            raise ToolkitError(f"'{directory}' lacks the text embedder's weights; train the demo vision models again.")
        encoder = part_tensors(tensors, "encoder", f"'{directory}'")
        return cls(config, encoder, text["word_vectors"], text["bias"])

    # -- protocol --------------------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Length of every embedding."""
        return self.config.embed_dim

    @property
    def identity(self) -> dict[str, Any]:
        """Everything that changes the embeddings (model, checksum of the encoder and text weights, preprocessing)."""
        if self._identity is None:
            weights = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
            weights.update({"text.word_vectors": self.word_vectors, "text.bias": self.text_bias})
            self._identity = {
                "backend": "toolkit-demo",
                "model": "demo-vision-autoencoder",
                "weights": tensor_digest(weights),
                "precision": "float32",
                "config": self.config.to_dict(),
                "preprocess": {
                    "resize": [self.config.image_size, self.config.image_size],
                    "interpolation": "bilinear",
                    "mean": PIXEL_MEAN,
                    "std": PIXEL_STD,
                },
                "text": "bias + sum of attribute-word vectors",
            }
        return json.loads(json.dumps(self._identity))

    def encode_images(self, images: Sequence[ImageInput], *, normalize: bool, batch_size: int = 32) -> np.ndarray:
        """Embed images with the demo encoder.

        Parameters
        ----------
        images : sequence of PIL.Image.Image | str | os.PathLike
            Opened images or image files (any size; resized to ``config.image_size``).
        normalize : bool
            L2-normalise every row (retrieval) or return raw embeddings (norm ``config.raw_norm``; what the
            decoder and the diffusion prior use).
        batch_size : int
            Images per forward pass (the result does not depend on it: GroupNorm, no batch statistics).

        Returns
        -------
        image_embeds : np.ndarray of float32, shape (n_images, embed_dim)
            One row per image.
        """
        normalize = check_normalize(normalize)
        batch_size = check_batch_size(batch_size)
        if isinstance(images, (str, os.PathLike)) or not isinstance(images, Sequence):
            raise ToolkitError("images must be a list of images or image paths; wrap a single one in a list.")
        rows = [
            self.encode_pixels(images_to_tensor(images[start : start + batch_size], self.config.image_size))
            for start in range(0, len(images), batch_size)
        ]
        out = np.concatenate(rows) if rows else np.zeros((0, self.embed_dim), dtype=np.float32)
        return l2_normalize(out) if normalize else out

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Raw embeddings of (n, 3, image_size, image_size) pixels in [0, 1] (no resizing, no checks)."""
        import torch

        with torch.inference_mode():
            hidden = self.encoder((pixels - PIXEL_MEAN) / PIXEL_STD)
            return scale_embeddings(hidden, self.config).numpy().astype(np.float32, copy=False)

    def encode_texts(self, texts: Sequence[str], *, normalize: bool, batch_size: int = 256) -> np.ndarray:
        """Embed texts compositionally from their attribute words.

        Parameters
        ----------
        texts : sequence of str
            Concept names or prompts (``"This picture is red_striped_circle"``, ``"a blue star"``); words are
            split at spaces, underscores and punctuation, function words (:data:`FUNCTION_WORDS`) are skipped, and
            any other word outside the vocabulary is an error naming it.
        normalize : bool
            L2-normalise every row, or return raw embeddings (the predicted mean raw image embedding).
        batch_size : int
            Accepted for the protocol; texts are embedded in one matrix product.

        Returns
        -------
        text_embeds : np.ndarray of float32, shape (n_texts, embed_dim)
            One row per text.
        """
        normalize = check_normalize(normalize)
        check_batch_size(batch_size)
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise ToolkitError("texts must be a list of strings; wrap a single text in a list.")
        counts = np.zeros((len(texts), len(self.config.words)), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text_words(text, self.config):
                counts[row, self._word_index[word]] += 1.0
        out = (counts @ self.word_vectors + self.text_bias).astype(np.float32)
        return l2_normalize(out) if normalize else out

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DemoEmbedder(embed_dim={c.embed_dim}, image_size={c.image_size}, "
            f"words={len(c.words)}, weights={self.identity['weights'][:19]}…)"
        )


__all__ = [
    "ATTRIBUTES",
    "CONFIG_NAME",
    "DEMO_VISION_FORMAT",
    "DEMO_VISION_VERSION",
    "FUNCTION_WORDS",
    "WEIGHTS_NAME",
    "DemoEmbedder",
    "DemoVisionConfig",
    "build_encoder",
    "conv_channels",
    "images_to_tensor",
    "read_demo_vision",
    "scale_embeddings",
    "tensor_digest",
    "text_words",
]
