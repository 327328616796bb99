"""The ATM diffusion-prior denoiser: an MLP U-Net predicting the noise on a CLIP image embedding.

The network (ATM, ``Generation/diffusion_prior.py``, class ``DiffusionPriorUNet``; see reference/ATM.md §7.1)
maps a noisy image embedding ``x_t`` (batch, embed_dim), a diffusion timestep and an optional EEG embedding
``cond`` (batch, cond_dim) to the predicted noise ε (batch, embed_dim). It is a stack of fully connected layers
shaped like a U-Net: an input layer, encoder steps narrowing through ``hidden_dims``, decoder steps widening back with
skip connections, and an output layer. Before every encoder and decoder step a timestep embedding and a condition
embedding of the current width are added. Without a condition (``cond=None``) the condition contribution is zero at
every injection point, which is what classifier-free guidance needs.

Parameter names follow the reference implementation, so its checkpoints load without a key mapping.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import _pretrained
from .._pretrained import CONFIG_NAME, WEIGHTS_NAME
from ..errors import ToolkitError
from ..utils import require

_CLASS_NAME = "DiffusionPriorUNet"
_ACTIVATIONS = ("silu", "swish", "gelu", "relu", "mish")


@dataclass(frozen=True)
class PriorUNetConfig:
    """Architecture of :class:`DiffusionPriorUNet`; the defaults are the reference ATM prior (9,675,648 parameters).

    Parameters
    ----------
    embed_dim : int
        Width of the denoised embedding (the CLIP image embedding: 1024 for OpenCLIP ViT-H-14).
    cond_dim : int
        Width of the condition (the EEG embedding).
    hidden_dims : tuple of int
        Widths of the U-Net levels, from the input level down to the bottleneck (at least two).
    time_embed_dim : int
        Number of sinusoidal timestep features fed to each timestep-embedding MLP.
    dropout : float
        Dropout probability after every encoder and decoder step (active only in training mode).
    activation : str
        Activation of the layers and of the timestep MLPs: ``"silu"`` (reference), ``"gelu"``, ``"relu"``,
        ``"mish"``.
    """

    embed_dim: int = 1024
    cond_dim: int = 1024
    hidden_dims: tuple[int, ...] = (1024, 512, 256, 128, 64)
    time_embed_dim: int = 512
    dropout: float = 0.1
    activation: str = "silu"

    def __post_init__(self) -> None:
        for name in ("embed_dim", "cond_dim", "time_embed_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ToolkitError(f"PriorUNetConfig.{name} must be a positive integer, got {value!r}.")
        dims = self.hidden_dims
        if isinstance(dims, list):
            object.__setattr__(self, "hidden_dims", tuple(dims))
            dims = self.hidden_dims
        if (
            not isinstance(dims, tuple)
            or len(dims) < 2
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims)
        ):
            raise ToolkitError(
                f"PriorUNetConfig.hidden_dims must be a sequence of at least two positive integers, got {dims!r}."
            )
        if self.time_embed_dim % 2:
            # diffusers' sinusoidal features pad odd widths with a zero column; the reference never does this.
            raise ToolkitError(f"PriorUNetConfig.time_embed_dim must be even, got {self.time_embed_dim}.")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ToolkitError(f"PriorUNetConfig.dropout must be a number in [0, 1), got {self.dropout!r}.")
        if self.activation not in _ACTIVATIONS:
            raise ToolkitError(
                f"PriorUNetConfig.activation must be one of {', '.join(_ACTIVATIONS)}, got {self.activation!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        out["hidden_dims"] = list(self.hidden_dims)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the configuration") -> PriorUNetConfig:
        """Build a configuration from a dict (keys starting with ``_`` are metadata and ignored).

        Parameters
        ----------
        data : Mapping
            Field values, as written by :meth:`to_dict`.
        source : str
            Where ``data`` came from, used in error messages.

        Returns
        -------
        PriorUNetConfig
            The configuration.
        """
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must hold a JSON object with the prior's configuration.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if not str(k).startswith("_") and k not in fields)
        if unknown:
            raise ToolkitError(
                f"{source} has unknown prior configuration keys {unknown}; expected only {sorted(fields)}."
            )
        kwargs = {k: v for k, v in data.items() if k in fields}
        if isinstance(kwargs.get("hidden_dims"), list):
            kwargs["hidden_dims"] = tuple(kwargs["hidden_dims"])
        return cls(**kwargs)


class DiffusionPriorUNet(nn.Module):
    """MLP U-Net predicting the noise ε on a noisy CLIP image embedding, optionally conditioned on an EEG embedding.

    Parameters
    ----------
    config : PriorUNetConfig | None
        Architecture; ``None`` gives the reference ATM prior (embed_dim 1024, cond_dim 1024,
        hidden_dims (1024, 512, 256, 128, 64), time_embed_dim 512, dropout 0.1, SiLU).

    Notes
    -----
    The sinusoidal timestep features come from diffusers' ``Timesteps(time_embed_dim, flip_sin_to_cos=True,
    downscale_freq_shift=0)`` (cosine half first) and each injection point has its own diffusers
    ``TimestepEmbedding`` (Linear, activation, Linear) and its own condition ``Linear(cond_dim, width)``.
    The module is a plain :class:`torch.nn.Module`: move it with ``.to(device, dtype)``.
    """

    def __init__(self, config: PriorUNetConfig | None = None) -> None:
        super().__init__()
        diffusers_embeddings = require("diffusers.models.embeddings", extra="generate", purpose="the diffusion prior")
        config = PriorUNetConfig() if config is None else config
        if not isinstance(config, PriorUNetConfig):
            raise ToolkitError(f"config must be a PriorUNetConfig, got {type(config).__name__}.")
        self.config = config
        dims = config.hidden_dims
        n_steps = len(dims) - 1
        down = list(range(n_steps))  # encoder step i: dims[i] -> dims[i + 1]
        up = list(range(n_steps, 0, -1))  # decoder step i: dims[i] -> dims[i - 1]

        self.time_proj = diffusers_embeddings.Timesteps(
            config.time_embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0
        )
        self.input_layer = nn.Sequential(
            nn.Linear(config.embed_dim, dims[0]), nn.LayerNorm(dims[0]), _activation(config.activation)
        )
        self.encode_time_embedding = nn.ModuleList(
            diffusers_embeddings.TimestepEmbedding(config.time_embed_dim, dims[i], act_fn=config.activation)
            for i in down
        )
        self.encode_cond_embedding = nn.ModuleList(nn.Linear(config.cond_dim, dims[i]) for i in down)
        self.encode_layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(dims[i], dims[i + 1]),
                nn.LayerNorm(dims[i + 1]),
                _activation(config.activation),
                nn.Dropout(config.dropout),
            )
            for i in down
        )
        self.decode_time_embedding = nn.ModuleList(
            diffusers_embeddings.TimestepEmbedding(config.time_embed_dim, dims[i], act_fn=config.activation)
            for i in up
        )
        self.decode_cond_embedding = nn.ModuleList(nn.Linear(config.cond_dim, dims[i]) for i in up)
        self.decode_layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(dims[i], dims[i - 1]),
                nn.LayerNorm(dims[i - 1]),
                _activation(config.activation),
                nn.Dropout(config.dropout),
            )
            for i in up
        )
        self.output_layer = nn.Linear(dims[0], config.embed_dim)

    # ------------------------------------------------------------------ properties
    @property
    def embed_dim(self) -> int:
        """Width of the denoised (CLIP image) embedding."""
        return self.config.embed_dim

    @property
    def cond_dim(self) -> int:
        """Width of the condition (EEG) embedding."""
        return self.config.cond_dim

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.output_layer.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type of the parameters."""
        return self.output_layer.weight.dtype

    # ------------------------------------------------------------------ forward
    def encode_condition(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """Condition embeddings for every injection point (encoder steps first, then decoder steps).

        They depend on the condition only, so a sampler computes them once and reuses them at every step through
        ``forward(..., cond_features=...)``.

        Parameters
        ----------
        cond : torch.Tensor, shape (batch, cond_dim)
            The condition (EEG embedding).

        Returns
        -------
        list of torch.Tensor
            One (batch, width) tensor per injection point.
        """
        cond = self._check_embeds(cond, self.config.cond_dim, "cond")
        return [layer(cond) for layer in (*self.encode_cond_embedding, *self.decode_cond_embedding)]

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor | int | float,
        cond: torch.Tensor | None = None,
        *,
        cond_features: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predict the noise ε in ``x_t``.

        Parameters
        ----------
        x_t : torch.Tensor, shape (batch, embed_dim)
            Noisy image embeddings.
        t : torch.Tensor | int | float
            Diffusion timesteps: one per row, shape (batch,), or one for all rows (a number, a 0-d tensor or shape
            (1,)).
        cond : torch.Tensor | None, shape (batch, cond_dim)
            Condition (EEG embeddings); ``None`` for the unconditional prediction (zero condition contribution).
        cond_features : sequence of torch.Tensor | None
            Precomputed :meth:`encode_condition` output (rows may be zero for unconditional rows), used instead of
            ``cond``.

        Returns
        -------
        torch.Tensor, shape (batch, embed_dim)
            The predicted noise.
        """
        x_t = self._check_embeds(x_t, self.config.embed_dim, "x_t")
        batch = x_t.shape[0]
        if cond is not None and cond_features is not None:
            raise ToolkitError("Pass either cond or cond_features to DiffusionPriorUNet.forward, not both.")
        if cond is not None:
            cond_features = self.encode_condition(cond)  # checks the type and width
            if cond.shape[0] != batch:
                raise ToolkitError(
                    f"cond has shape {tuple(cond.shape)} but x_t has {batch} rows; pass one condition per row, "
                    f"shape ({batch}, {self.config.cond_dim})."
                )
        elif cond_features is not None:
            cond_features = self._check_cond_features(cond_features, batch)
        time_features = self._time_features(t, batch, x_t.device)

        x = self.input_layer(x_t)
        n_steps = len(self.encode_layers)
        skips = []
        for i in range(n_steps):
            skips.append(x)
            x = x + self.encode_time_embedding[i](time_features)
            if cond_features is not None:
                x = x + cond_features[i]
            x = self.encode_layers[i](x)
        for i in range(n_steps):
            x = x + self.decode_time_embedding[i](time_features)
            if cond_features is not None:
                x = x + cond_features[n_steps + i]
            x = self.decode_layers[i](x)
            x = x + skips[n_steps - 1 - i]
        return self.output_layer(x)

    def _time_features(self, t: torch.Tensor | int | float, batch: int, device: torch.device) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise ToolkitError(f"t must be a number or a tensor of timesteps, got {type(t).__name__}.")
            t = torch.tensor([t], device=device)
        if t.ndim == 0:
            t = t.reshape(1)
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise ToolkitError(
                f"t has shape {tuple(t.shape)}; pass one timestep per row, shape ({batch},), or a single timestep."
            )
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ToolkitError("t holds non-finite timesteps; pass timesteps in [0, num_train_timesteps).")
        # Sinusoidal features are computed in float32 by diffusers; cast them to the module's dtype (as diffusers'
        # UNets do) so bfloat16/float16 modules work. A single timestep broadcasts over the batch.
        return self.time_proj(t.to(device)).to(self.dtype)

    def _check_embeds(self, value: Any, width: int, name: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise ToolkitError(f"{name} must be a torch.Tensor of shape (batch, {width}), got {type(value).__name__}.")
        if value.ndim != 2 or value.shape[1] != width:
            raise ToolkitError(
                f"{name} has shape {tuple(value.shape)} but this prior expects (batch, {width}); "
                f"pass embeddings of dimension {width}."
            )
        if not value.is_floating_point():
            raise ToolkitError(f"{name} must be a floating-point tensor, got {value.dtype}.")
        return value.to(device=self.device, dtype=self.dtype)

    def _check_cond_features(self, features: Sequence[torch.Tensor], batch: int) -> Sequence[torch.Tensor]:
        widths = [layer.out_features for layer in (*self.encode_cond_embedding, *self.decode_cond_embedding)]
        shapes = [tuple(f.shape) if isinstance(f, torch.Tensor) else None for f in features]
        if len(shapes) != len(widths) or any(s not in ((batch, w), (1, w)) for s, w in zip(shapes, widths)):
            raise ToolkitError(
                f"cond_features must be the output of encode_condition for {batch} rows, widths {widths}; "
                f"got shapes {shapes}."
            )
        return features

    # ------------------------------------------------------------------ weights
    def load_weights(self, path: str | os.PathLike) -> DiffusionPriorUNet:
        """Load a state dict from a ``.safetensors`` file (or a PyTorch state-dict file, loaded weights-only).

        Parameters
        ----------
        path : str | os.PathLike
            The weights file, with the reference parameter names (those of this module).

        Returns
        -------
        DiffusionPriorUNet
            ``self``, modified in place.
        """
        state = read_state_dict(path)
        self.load_checked_state_dict(state, source=str(path))
        return self

    def load_checked_state_dict(self, state: Mapping[str, torch.Tensor], *, source: str) -> None:
        """Load ``state`` after checking names and shapes, failing with one error that names ``source``.

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
        return (
            f"embed_dim={cfg.embed_dim}, cond_dim={cfg.cond_dim}, hidden_dims={list(cfg.hidden_dims)}, "
            f"time_embed_dim={cfg.time_embed_dim}"
        )

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
        return _pretrained.save_component(directory, **self._component())

    def _write_pretrained(self, folder: Path) -> None:
        # For a folder already being written atomically (the prior inside a pipeline bundle).
        _pretrained.write_component(folder, **self._component())

    def _component(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "state_dict": self.state_dict(),
            "class_name": _CLASS_NAME,
            "what": "the prior",
        }

    @classmethod
    def from_pretrained(
        cls,
        pretrained: str | os.PathLike,
        *,
        subfolder: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ) -> DiffusionPriorUNet:
        """Load a prior written by :meth:`save_pretrained`, from a local folder or a Hugging Face Hub repository.

        Parameters
        ----------
        pretrained : str | os.PathLike
            A local folder holding ``config.json`` and ``model.safetensors``, or a Hub repository id
            (``"owner/name"``).
        subfolder : str | None
            Folder inside ``pretrained`` holding the files (e.g. ``"prior"`` inside a bundle).
        revision : str | None
            Hub revision (branch, tag or commit); Hub ids only (refused for local folders).
        cache_dir : str | os.PathLike | None
            Hub cache folder; ``None`` uses huggingface_hub's default.
        local_files_only : bool
            Only use the Hub cache, never the network.

        Returns
        -------
        DiffusionPriorUNet
            The prior, in evaluation mode, on the CPU in float32.
        """
        data, config_path, weights_path = _pretrained.read_pretrained_component(
            pretrained,
            subfolder=subfolder,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            class_name=_CLASS_NAME,
            what="prior",
            save_hint="DiffusionPriorUNet.save_pretrained",
        )
        model = cls(PriorUNetConfig.from_dict(data, source=str(config_path)))
        model.load_weights(weights_path)
        return model.eval()


def _activation(name: str) -> nn.Module:
    activations = require("diffusers.models.activations", extra="generate", purpose="the diffusion prior")
    return activations.get_activation(name)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a prior state dict from a ``.safetensors`` file or a PyTorch file, without executing code from it.

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
    return _pretrained.read_state_dict(path, what="prior")


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "DiffusionPriorUNet", "PriorUNetConfig", "read_state_dict"]
