"""Loading reference ATM prior checkpoints (``Generation/diffusion_prior.py``, class ``DiffusionPriorUNet``).

:class:`~toolkit.prior.unet.DiffusionPriorUNet` keeps the reference parameter names (reference/ATM.md §13:
``input_layer.0/1``, ``encode_time_embedding.i.linear_{1,2}``, ``encode_cond_embedding.i``, ``encode_layers.i.0/1``,
the ``decode_*`` counterparts and ``output_layer``), so the key mapping is the identity and a reference state dict
loads as is. What a reference checkpoint does not record is its configuration; :func:`config_from_state_dict` reads
it from the tensor shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ..errors import ToolkitError
from .unet import DiffusionPriorUNet, PriorUNetConfig, read_state_dict


def config_from_state_dict(
    state: Mapping[str, torch.Tensor], *, dropout: float = 0.1, activation: str = "silu", source: str = "state dict"
) -> PriorUNetConfig:
    """Infer a :class:`PriorUNetConfig` from the shapes of a reference prior state dict.

    Parameters
    ----------
    state : Mapping of str to torch.Tensor
        The reference parameters.
    dropout : float
        Dropout probability (not recorded in a state dict; the reference uses 0.1).
    activation : str
        Activation name (not recorded in a state dict; the reference uses SiLU).
    source : str
        Where ``state`` came from, used in error messages.

    Returns
    -------
    PriorUNetConfig
        The configuration whose module has these parameter shapes.
    """
    try:
        embed_dim = int(state["input_layer.0.weight"].shape[1])
        hidden = [int(state["input_layer.0.weight"].shape[0])]
        i = 0
        while f"encode_layers.{i}.0.weight" in state:
            hidden.append(int(state[f"encode_layers.{i}.0.weight"].shape[0]))
            i += 1
        cond_dim = int(state["encode_cond_embedding.0.weight"].shape[1])
        time_embed_dim = int(state["encode_time_embedding.0.linear_1.weight"].shape[1])
    except (KeyError, IndexError) as err:
        raise ToolkitError(
            f"{source} is not a DiffusionPriorUNet state dict (no usable {err}); expected the reference names "
            "input_layer.*, encode_*, decode_*, output_layer.*."
        ) from err
    return PriorUNetConfig(
        embed_dim=embed_dim,
        cond_dim=cond_dim,
        hidden_dims=tuple(hidden),
        time_embed_dim=time_embed_dim,
        dropout=dropout,
        activation=activation,
    )


def load_reference_prior(path: str | os.PathLike, *, dropout: float = 0.1) -> DiffusionPriorUNet:
    """Build a :class:`DiffusionPriorUNet` from a reference ATM prior state dict file.

    Parameters
    ----------
    path : str | os.PathLike
        ``.safetensors``, or a PyTorch file holding the reference ``state_dict()`` (read weights-only, so no code in
        it can run).
    dropout : float
        Dropout probability for further training (the reference uses 0.1; sampling is unaffected).

    Returns
    -------
    DiffusionPriorUNet
        The prior with the weights loaded, in evaluation mode.
    """
    state = read_state_dict(path)
    model = DiffusionPriorUNet(config_from_state_dict(state, dropout=dropout, source=str(path)))
    model.load_checked_state_dict(state, source=str(path))
    return model.eval()


__all__ = ["config_from_state_dict", "load_reference_prior"]
