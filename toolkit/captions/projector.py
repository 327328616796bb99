"""PixelProjector: one CLIP image embedding → a sequence of GIT vision tokens (ATM's semantic path).

ATM's ``image_adapter.ipynb`` (reference/ATM.md §10) maps a 1 × 1024 OpenCLIP ViT-H-14 image embedding to the
257 × 1024 last hidden state of GIT-large-coco's vision encoder, so GIT can caption a decoded embedding:

    (batch, embed_dim) → (batch, embed_dim, 1) → Linear(1 → n_tokens) → LayerNorm(n_tokens)
      → transpose → (batch, n_tokens, embed_dim) → Linear(embed_dim → hidden_size) → LayerNorm(hidden_size)

The first Linear spreads each embedding coordinate over the tokens (one weight and bias per token, shared by all
coordinates); the second mixes the coordinates of each token. The reference trains it with the mean squared error to
the GIT vision-encoder outputs of the same images (AdamW, lr 1e-3, batch 32, 30 epochs): :func:`projector_loss`;
the targets come from :meth:`toolkit.captions.GitCaptioner.encode_images`. At the reference sizes it has 1,052,676
parameters.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import _pretrained
from .._pretrained import CONFIG_NAME, WEIGHTS_NAME
from ..errors import ToolkitError

_CLASS_NAME = "PixelProjector"


@dataclass(frozen=True)
class PixelProjectorConfig:
    """Shape of :class:`PixelProjector`; the defaults are ATM's (ViT-H-14 embedding → GIT-large vision tokens).

    Parameters
    ----------
    embed_dim : int
        Width of the input embedding (1024 for OpenCLIP ViT-H-14 image embeddings).
    n_tokens : int
        Number of output tokens: GIT's vision-encoder sequence length, (image_size / patch_size)² + 1 (257 for
        GIT-large: 224 / 14 = 16, 16² patches plus the class token).
    hidden_size : int
        Width of each output token: GIT's vision hidden size (1024 for GIT-large, 768 for GIT-base).
    layer_norm_eps : float
        Epsilon of both LayerNorms (PyTorch's default).
    normalized_inputs : bool | None
        Whether the embeddings it is trained on (and must be fed) are L2-normalised; ``None`` if not recorded.
        Checked against the ``normalize`` flag of embedding files by ``python -m toolkit caption``.
    """

    embed_dim: int = 1024
    n_tokens: int = 257
    hidden_size: int = 1024
    layer_norm_eps: float = 1e-5
    normalized_inputs: bool | None = None

    def __post_init__(self) -> None:
        for name in ("embed_dim", "n_tokens", "hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ToolkitError(f"PixelProjectorConfig.{name} must be a positive integer, got {value!r}.")
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ToolkitError(f"PixelProjectorConfig.layer_norm_eps must be a number in (0, 1), got {eps!r}.")
        if self.normalized_inputs is not None and not isinstance(self.normalized_inputs, bool):
            raise ToolkitError(
                f"PixelProjectorConfig.normalized_inputs must be True, False or None, got {self.normalized_inputs!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the configuration") -> PixelProjectorConfig:
        """Build a configuration from a dict (keys starting with ``_`` are metadata and ignored).

        Parameters
        ----------
        data : Mapping
            Field values, as written by :meth:`to_dict`.
        source : str
            Where ``data`` came from, used in error messages.

        Returns
        -------
        PixelProjectorConfig
            The configuration.
        """
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must hold a JSON object with the projector's configuration.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if not str(k).startswith("_") and k not in fields)
        if unknown:
            raise ToolkitError(
                f"{source} has unknown projector configuration keys {unknown}; expected only {sorted(fields)}."
            )
        return cls(**{k: v for k, v in data.items() if k in fields})


class PixelProjector(nn.Module):
    """Embedding (batch, embed_dim) → vision tokens (batch, n_tokens, hidden_size); see the module docstring.

    Parameters
    ----------
    config : PixelProjectorConfig | None
        Shape; ``None`` is ATM's (1024 → 257 × 1024).

    Examples
    --------
    >>> projector = PixelProjector(PixelProjectorConfig(embed_dim=8, n_tokens=5, hidden_size=4))
    >>> projector(torch.randn(2, 8)).shape
    torch.Size([2, 5, 4])
    """

    def __init__(self, config: PixelProjectorConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = PixelProjectorConfig()
        if not isinstance(config, PixelProjectorConfig):
            raise ToolkitError(f"config must be a PixelProjectorConfig, got {type(config).__name__}.")
        self.config = config
        eps = float(config.layer_norm_eps)
        self.token_proj = nn.Linear(1, config.n_tokens)
        self.token_norm = nn.LayerNorm(config.n_tokens, eps=eps)
        self.feature_proj = nn.Linear(config.embed_dim, config.hidden_size)
        self.feature_norm = nn.LayerNorm(config.hidden_size, eps=eps)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.feature_proj.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type of the parameters."""
        return self.feature_proj.weight.dtype

    @property
    def output_shape(self) -> tuple[int, int]:
        """``(n_tokens, hidden_size)`` of one embedding's output."""
        return self.config.n_tokens, self.config.hidden_size

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        """Project embeddings to vision tokens.

        Parameters
        ----------
        embeds : torch.Tensor, shape (batch, embed_dim) or (batch, 1, embed_dim)
            Image embeddings (or what a prior predicts for them), in the space the projector was trained on.

        Returns
        -------
        torch.Tensor, shape (batch, n_tokens, hidden_size)
            Vision tokens, on the projector's device and dtype.
        """
        x = self._check_embeds(embeds)
        x = self.token_norm(self.token_proj(x[:, :, None]))  # (batch, embed_dim, n_tokens)
        return self.feature_norm(self.feature_proj(x.transpose(1, 2)))  # (batch, n_tokens, hidden_size)

    def _check_embeds(self, embeds: Any) -> torch.Tensor:
        width = self.config.embed_dim
        if not isinstance(embeds, torch.Tensor):
            raise ToolkitError(
                f"embeds must be a torch.Tensor of shape (batch, {width}), got {type(embeds).__name__}; convert "
                "arrays with torch.from_numpy."
            )
        if embeds.ndim == 3 and embeds.shape[1] == 1:
            embeds = embeds[:, 0]
        if embeds.ndim != 2 or embeds.shape[1] != width or embeds.shape[0] < 1:
            raise ToolkitError(
                f"embeds has shape {tuple(embeds.shape)} but this PixelProjector expects (batch, {width}) with "
                f"batch ≥ 1 (its embed_dim is {width}); pass embeddings of the model it was trained on."
            )
        if not embeds.is_floating_point():
            raise ToolkitError(f"embeds must be floating point, got {embeds.dtype}; convert it with .float().")
        return embeds.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ weights
    def load_weights(self, path: str | os.PathLike) -> PixelProjector:
        """Load a state dict from a ``.safetensors`` file (or a PyTorch state-dict file, read weights-only).

        Parameters
        ----------
        path : str | os.PathLike
            The weights file, with this module's parameter names.

        Returns
        -------
        PixelProjector
            ``self``, modified in place.
        """
        self.load_checked_state_dict(read_state_dict(path), source=str(path))
        return self

    def load_checked_state_dict(self, state: Mapping[str, torch.Tensor], *, source: str) -> None:
        """Load ``state`` after checking names, shapes and dtypes; one :class:`~toolkit.ToolkitError` names ``source``.

        Parameters
        ----------
        state : Mapping of str to torch.Tensor
            Parameter tensors keyed by name.
        source : str
            Where ``state`` came from (a file name), used in error messages.
        """
        _pretrained.load_checked_state_dict(self, state, source=source, what=f"{_CLASS_NAME} ({self._describe()})")

    def _describe(self) -> str:
        cfg = self.config
        return f"embed_dim={cfg.embed_dim}, n_tokens={cfg.n_tokens}, hidden_size={cfg.hidden_size}"

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (atomically; replaces the folder).

        Parameters
        ----------
        directory : str | os.PathLike
            Destination folder.

        Returns
        -------
        Path
            The folder written.
        """
        return _pretrained.save_component(
            directory,
            config=self.config.to_dict(),
            state_dict=self.state_dict(),
            class_name=_CLASS_NAME,
            what="the projector",
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained: str | os.PathLike,
        *,
        subfolder: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ) -> PixelProjector:
        """Load a projector written by :meth:`save_pretrained` from a local folder or a Hugging Face Hub repository.

        Parameters
        ----------
        pretrained : str | os.PathLike
            A folder holding ``config.json`` and ``model.safetensors``, or a Hub repository id ``"owner/name"``.
        subfolder : str | None
            Folder inside ``pretrained`` holding the files (e.g. ``"projector"`` inside a bundle).
        revision : str | None
            Hub branch, tag or commit (Hub ids only; pin it for reproducible results).
        cache_dir : str | os.PathLike | None
            Hugging Face cache folder; ``None`` uses huggingface_hub's default.
        local_files_only : bool
            Never use the network (Hub ids must be in the local cache).

        Returns
        -------
        PixelProjector
            The projector, in evaluation mode, on the CPU in float32.
        """
        data, config_path, weights_path = _pretrained.read_pretrained_component(
            pretrained,
            subfolder=subfolder,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            class_name=_CLASS_NAME,
            what="projector",
            save_hint="PixelProjector.save_pretrained",
        )
        model = cls(PixelProjectorConfig.from_dict(data, source=str(config_path)))
        model.load_weights(weights_path)
        return model.eval()


def projector_loss(
    projector: PixelProjector, embeds: torch.Tensor, target_tokens: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Mean squared error between the projected embeddings and the target vision tokens (ATM's objective).

    Parameters
    ----------
    projector : PixelProjector
        The projector being trained (differentiable through it).
    embeds : torch.Tensor, shape (batch, embed_dim)
        Image embeddings of a batch of images.
    target_tokens : torch.Tensor, shape (batch, n_tokens, hidden_size)
        GIT's vision-encoder last hidden state of the same images, row by row (see
        :meth:`toolkit.captions.GitCaptioner.encode_images`).
    reduction : str
        ``"mean"`` (the reference: over every element) or ``"none"`` (one value per row, mean over tokens and
        features).

    Returns
    -------
    torch.Tensor
        The scalar loss, or ``(batch,)`` values with ``reduction="none"``.
    """
    if not isinstance(projector, PixelProjector):
        raise ToolkitError(f"projector must be a PixelProjector, got {type(projector).__name__}.")
    if reduction not in ("mean", "none"):
        raise ToolkitError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    n_tokens, hidden = projector.output_shape
    if not isinstance(target_tokens, torch.Tensor) or not target_tokens.is_floating_point():
        what = target_tokens.dtype if isinstance(target_tokens, torch.Tensor) else type(target_tokens).__name__
        raise ToolkitError(f"target_tokens must be a floating-point tensor of shape (batch, {n_tokens}, {hidden}), "
                           f"got {what}.")
    pred = projector(embeds)
    if tuple(target_tokens.shape) != tuple(pred.shape):
        raise ToolkitError(
            f"target_tokens has shape {tuple(target_tokens.shape)} but the projector makes {tuple(pred.shape)} from "
            f"embeds ({pred.shape[0]} rows × {n_tokens} tokens × {hidden}); pair one target per embedding and build "
            "the projector with the captioning model's vision token count and hidden size."
        )
    err = (pred - target_tokens.to(device=pred.device, dtype=pred.dtype)).square()
    return err.mean() if reduction == "mean" else err.mean(dim=(1, 2))


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a projector state dict from a ``.safetensors`` file or a PyTorch file, without executing code from it.

    Parameters
    ----------
    path : str | os.PathLike
        ``.safetensors`` (preferred) or ``.pt`` / ``.pth`` / ``.bin`` holding a plain dict of tensors; PyTorch files
        are read with ``weights_only=True``, which refuses pickled code.

    Returns
    -------
    dict of str to torch.Tensor
        The tensors, on the CPU.
    """
    return _pretrained.read_state_dict(path, what="projector")


__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "PixelProjector",
    "PixelProjectorConfig",
    "projector_loss",
    "read_state_dict",
]
