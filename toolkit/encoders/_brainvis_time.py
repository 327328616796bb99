"""Building blocks of the BrainVis time branch: gated post-LN transformer blocks, the unit backbone, the EMA copy.

Private to :mod:`toolkit.encoders.brainvis`; see that module and the reference sheet (BRAINVIS.md §2) for the
architecture.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class GatedBlock(nn.Module):
    """Post-LN transformer block with learnable ReZero-like gates: ``y = LN(x + Dropout(a * f(x)))`` per sublayer.

    Self-attention when called with ``memory=None``, cross-attention (queries ``x``, keys/values ``memory``) for
    the masked-modelling regressor otherwise. Attention is :class:`torch.nn.MultiheadAttention`.

    Parameters
    ----------
    d_model : int
        Token width.
    n_heads : int
        Attention heads (``d_model`` must be divisible by it).
    d_ff : int
        Hidden width of the GELU feed-forward sublayer.
    dropout : float
        Dropout of the attention weights, of each sublayer's output and inside the feed-forward sublayer.
    gate_init : float
        Initial value of the two scalar gates ``a`` (1e-8: each block starts as a LayerNorm of its input).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, gate_init: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.attn_gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.ffn_gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """Transform ``(batch, n_tokens, d_model)`` tokens (attending to ``memory`` when given)."""
        context = x if memory is None else memory
        attended, _ = self.attn(x, context, context, need_weights=False)
        x = self.norm1(x + self.dropout(self.attn_gate * attended))
        return self.norm2(x + self.dropout(self.ffn_gate * self.ffn(x)))


class TimeBackbone(nn.Module):
    """Unit embedding (Conv1d, kernel = stride = ``wave_length``), learnable positions and gated blocks.

    Parameters
    ----------
    n_chans : int
        Input channels.
    n_units : int
        Units per trial (rows of the position table).
    n_pad : int
        Zero samples appended at the end of each trial before the unit embedding (0 when ``n_times`` is a
        multiple of ``wave_length`` or when the incomplete trailing unit is cropped).
    wave_length : int
        Samples per unit.
    d_model, n_layers, n_heads, d_ff : int
        Transformer geometry.
    dropout, gate_init : float
        See :class:`GatedBlock`.
    """

    def __init__(
        self,
        n_chans: int,
        n_units: int,
        n_pad: int,
        wave_length: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        gate_init: float,
    ) -> None:
        super().__init__()
        self.n_units = n_units
        self.n_pad = n_pad
        self.unit_embedding = nn.Conv1d(n_chans, d_model, kernel_size=wave_length, stride=wave_length)
        self.positions = nn.Parameter(torch.empty(n_units, d_model))
        nn.init.trunc_normal_(self.positions, std=0.02)
        self.blocks = nn.ModuleList(GatedBlock(d_model, n_heads, d_ff, dropout, gate_init) for _ in range(n_layers))

    def units(self, eeg: torch.Tensor) -> torch.Tensor:
        """Projected unit embeddings ``(batch, n_units, d_model)``, before positions (the codebook's input)."""
        if self.n_pad:
            eeg = F.pad(eeg, (0, self.n_pad))
        # The strided convolution drops an incomplete trailing unit by itself (the "crop" padding mode).
        return self.unit_embedding(eeg).transpose(1, 2)

    def encode(
        self,
        units: torch.Tensor,
        index: torch.Tensor | None = None,
        blocks: nn.ModuleList | None = None,
    ) -> torch.Tensor:
        """Add the positions of ``index`` (all units when ``None``) and run ``blocks`` (default: the online ones).

        Parameters
        ----------
        units : torch.Tensor, shape (batch, n, d_model)
            Unit embeddings (already restricted to ``index``).
        index : torch.Tensor | None, shape (n,)
            Unit positions of those embeddings.
        blocks : nn.ModuleList | None
            The blocks to run (the momentum copy for the targets).
        """
        positions = self.positions if index is None else self.positions[index]
        x = units + positions
        for block in self.blocks if blocks is None else blocks:
            x = block(x)
        return x

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        """Encode every unit: ``(batch, n_chans, n_times)`` → ``(batch, n_units, d_model)``."""
        return self.encode(self.units(eeg))


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters are turned into buffers (same names).

    Used for the momentum (EMA) target encoder: its weights are state (saved, moved by ``.to()``) but not
    parameters, so no optimiser updates them and no gradient is ever expected for them.
    """
    clone = copy.deepcopy(module)
    for sub in clone.modules():
        for name, param in list(sub._parameters.items()):
            if param is None:  # e.g. MultiheadAttention's unused bias_k: keep the None attribute
                continue
            del sub._parameters[name]
            sub.register_buffer(name, param.detach())
    return clone.requires_grad_(False)
