"""The demo bundle's offline captioner: demo embeddings → ``"a red striped circle"`` through linear attribute heads.

The real bundle captions (predicted) CLIP embeddings with a projector and GIT; the ``demo`` bundle cannot download
GIT, so its captions come from the three linear heads (colour, texture, shape) trained with the demo image encoder
(:mod:`toolkit.embeddings.demo`): the most probable value of each attribute, put in the simulator's word order. The
heads read L2-normalised embeddings, so raw image embeddings, the diffusion prior's output and EEG-encoder
predictions are captioned alike. :class:`DemoCaptioner` is a callable ``(batch, embed_dim) → list of str``, what
:class:`toolkit.captions.CaptionLoop` takes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..embeddings.demo import (
    ATTRIBUTES,
    DemoVisionConfig,
    part_tensors,
    read_demo_vision,
    tensor_digest,
)
from ..errors import ToolkitError

#: How a caption is made from the predicted values.
CAPTION_TEMPLATE = "a {colour} {texture} {shape}"


@dataclass(frozen=True)
class AttributePrediction:
    """The attribute heads' reading of one embedding.

    Attributes
    ----------
    caption : str
        ``"a red striped circle"`` (the most probable value of each attribute).
    values : dict of str to str
        The most probable value per attribute (``{"colour": "red", "texture": "striped", "shape": "circle"}``).
    top : dict of str to list of (str, float)
        Per attribute, the ``top_k`` most probable values with their probabilities, best first.
    """

    caption: str
    values: dict[str, str]
    top: dict[str, list[tuple[str, float]]]


class DemoCaptioner:
    """Demo embeddings → captions and attribute probabilities (linear softmax heads on embedding directions).

    Build it with :meth:`from_pretrained` or :func:`toolkit.bundles._demo_vision.load_demo_vision`.

    Parameters
    ----------
    config : DemoVisionConfig
        Sizes and vocabulary.
    weight : np.ndarray, shape (n_values, embed_dim)
        Stacked head weights: colours, then textures, then shapes (:attr:`DemoVisionConfig.words` order).
    bias : np.ndarray, shape (n_values,)
        Stacked head biases.
    """

    def __init__(self, config: DemoVisionConfig, weight: np.ndarray, bias: np.ndarray) -> None:
        if not isinstance(config, DemoVisionConfig):
            raise ToolkitError(f"config must be a DemoVisionConfig, got {type(config).__name__}.")
        weight = np.asarray(weight, dtype=np.float32)
        bias = np.asarray(bias, dtype=np.float32)
        n_values = len(config.words)
        if weight.shape != (n_values, config.embed_dim) or bias.shape != (n_values,):
            raise ToolkitError(
                f"The attribute heads have shapes {weight.shape} and {bias.shape} but the configuration needs "
                f"({n_values}, {config.embed_dim}) and ({n_values},); train the demo vision models again."
            )
        self.config = config
        self.weight = weight
        self.bias = bias
        bounds = np.cumsum([0] + [config.n_values[a] for a in ATTRIBUTES])
        self._slices = {a: slice(int(bounds[i]), int(bounds[i + 1])) for i, a in enumerate(ATTRIBUTES)}
        self.weights = tensor_digest({"weight": weight, "bias": bias})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> DemoCaptioner:
        """Load the captioner from a demo-vision folder (see :func:`toolkit.embeddings.demo.read_demo_vision`).

        Parameters
        ----------
        directory : str | os.PathLike
            Folder holding ``config.json`` and ``model.safetensors``.

        Returns
        -------
        DemoCaptioner
            The captioner.
        """
        _, config, tensors = read_demo_vision(directory)
        heads = part_tensors(tensors, "heads", f"'{directory}'")
        if set(heads) != {"weight", "bias"}:
            raise ToolkitError(f"'{directory}' holds malformed attribute heads; train the demo vision models again.")
        return cls(config, heads["weight"], heads["bias"])

    @property
    def embed_dim(self) -> int:
        """Width of the embeddings it captions."""
        return self.config.embed_dim

    def check_embeds(self, image_embeds: Any, name: str = "image_embeds") -> np.ndarray:
        """``image_embeds`` as a finite float32 (n ≥ 1, embed_dim) array, or a :class:`~toolkit.ToolkitError`."""
        if hasattr(image_embeds, "detach"):  # a torch tensor; numpy is enough for three linear heads
            image_embeds = image_embeds.detach().float().cpu().numpy()
        if not isinstance(image_embeds, np.ndarray) or not np.issubdtype(image_embeds.dtype, np.floating):
            raise ToolkitError(
                f"{name} must be a floating-point torch.Tensor or NumPy array, got {type(image_embeds).__name__}."
            )
        if image_embeds.ndim != 2 or image_embeds.shape[1] != self.embed_dim or image_embeds.shape[0] < 1:
            raise ToolkitError(
                f"{name} has shape {tuple(image_embeds.shape)} but the demo captioner expects (batch, "
                f"{self.embed_dim}) embeddings of the demo space with batch ≥ 1."
            )
        if not np.isfinite(image_embeds).all():
            raise ToolkitError(f"{name} holds NaN or infinite values; check the model that produced it.")
        return image_embeds.astype(np.float32, copy=False)

    def probabilities(self, image_embeds: Any) -> dict[str, np.ndarray]:
        """Softmax probabilities of every attribute value.

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n, embed_dim)
            Embeddings of the demo space (raw, normalised or predicted).

        Returns
        -------
        dict of str to np.ndarray
            Per attribute, ``(n, n_values)`` probabilities in vocabulary order.
        """
        x = self.check_embeds(image_embeds)
        # The heads were trained on unit directions times sqrt(embed_dim) (coordinates of about unit variance).
        x = x * (np.sqrt(self.embed_dim) / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
        logits = x @ self.weight.T + self.bias
        out = {}
        for attribute, part in self._slices.items():
            z = logits[:, part]
            z = np.exp(z - z.max(axis=1, keepdims=True))
            out[attribute] = (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
        return out

    def predict(self, image_embeds: Any, *, top_k: int = 2) -> list[AttributePrediction]:
        """Caption, most probable values and the ``top_k`` alternatives of each attribute, per embedding.

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n, embed_dim)
            Embeddings of the demo space.
        top_k : int
            Alternatives listed per attribute (capped at the number of values).

        Returns
        -------
        list of AttributePrediction
            One per row.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ToolkitError(f"top_k must be a positive integer, got {top_k!r}.")
        probs = self.probabilities(image_embeds)
        n = next(iter(probs.values())).shape[0]
        out = []
        for i in range(n):
            top: dict[str, list[tuple[str, float]]] = {}
            for attribute in ATTRIBUTES:
                p = probs[attribute][i]
                order = np.argsort(-p, kind="stable")[: int(top_k)]
                names = self.config.vocabulary[attribute]
                top[attribute] = [(names[j], round(float(p[j]), 4)) for j in order]
            values = {a: top[a][0][0] for a in ATTRIBUTES}
            out.append(AttributePrediction(caption=CAPTION_TEMPLATE.format(**values), values=values, top=top))
        return out

    def __call__(self, image_embeds: Any, *, progress_bar: bool = False) -> list[str]:
        """Caption embeddings: ``"a <colour> <texture> <shape>"`` with the most probable value of each.

        Parameters
        ----------
        image_embeds : torch.Tensor | numpy.ndarray, shape (n, embed_dim)
            Embeddings of the demo space (raw, normalised, or predicted by the prior or an EEG encoder).
        progress_bar : bool
            Unused (three matrix products); accepted for the signature of
            :class:`~toolkit.captions.EmbeddingCaptioner`.

        Returns
        -------
        list of str
            One caption per row.
        """
        probs = self.probabilities(image_embeds)
        index = {a: probs[a].argmax(axis=1) for a in ATTRIBUTES}
        n = index[ATTRIBUTES[0]].shape[0]
        vocab = self.config.vocabulary
        return [CAPTION_TEMPLATE.format(**{a: vocab[a][int(index[a][i])] for a in ATTRIBUTES}) for i in range(n)]

    @property
    def settings(self) -> dict[str, Any]:
        """Decoding settings, for protocol cards."""
        return {"decoding": "argmax of linear attribute heads", "template": CAPTION_TEMPLATE}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{a}={n}" for a, n in self.config.n_values.items())
        return f"DemoCaptioner(embed_dim={self.embed_dim}, {sizes}, weights={self.weights[:19]}…)"


__all__ = ["CAPTION_TEMPLATE", "AttributePrediction", "DemoCaptioner"]
