"""Layers shared by ATM-S and NICE: the temporal-spatial convolution (TSConv), the MLP projector, and their
eval-mode folding into a few matrix products.

TSConv (ShallowNet/NICE style) maps rows x features ``(batch, n_rows, n_features)`` to ``n_filters`` feature maps:
a temporal convolution ``Conv2d(1 -> F, (1, k))``, average pooling ``(1, pool)`` with stride ``(1, s)``,
BatchNorm, ELU, a spatial convolution ``Conv2d(F -> F, (n_rows, 1))`` over all rows, BatchNorm, ELU, dropout and
a 1x1 convolution, flattened position-major (index ``position * F + filter``).

Two exact rewrites make it fast:

- *pool first*: convolution and averaging commute, so averaging the 1-channel input with a box of ``pool``
  samples (stride 1) and then convolving with stride ``s`` gives the same numbers as convolving and then pooling,
  with about a fifth of the work and no ``(batch, F, rows, n_features)`` intermediate; gradients reach the same
  25-tap weights, so it is used in training too;
- *folding* (eval only, :class:`FoldedHead`): box filter (and a preceding LayerNorm affine) → one matrix;
  convolution → BatchNorm → one matrix; spatial convolution → BatchNorm → one matrix; 1x1 convolution → flatten →
  the projector's first Linear → one matrix. The products are laid out ``(filters, rows, positions, batch)`` so
  every step is a single large GEMM with no transposition of the big intermediate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ToolkitError


def sinusoidal_encoding(n_positions: int, d_model: int) -> torch.Tensor:
    """The Transformer sinusoidal table ``(n_positions, d_model)``: sin on even, cos on odd feature indices.

    Frequencies are ``10000 ** (-2i / d_model)``, as in the ATM reference (§3.1 item 2 of the reference sheet).
    For an odd ``d_model`` the cosine columns use the first ``d_model // 2`` frequencies.
    """
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
    return table.float()


def tsconv_positions(n_features: int, temporal_kernel: int, pool_kernel: int, pool_stride: int) -> int:
    """Number of output positions of TSConv along the feature axis (``floor((L - k + 1 - pool) / s) + 1``)."""
    return (n_features - temporal_kernel + 1 - pool_kernel) // pool_stride + 1


def check_tsconv_geometry(owner: str, n_features: int, temporal_kernel: int, pool_kernel: int) -> None:
    """Fail with a message naming the fields when the feature axis is too short for the kernels."""
    needed = temporal_kernel + pool_kernel - 1
    if n_features < needed:
        raise ToolkitError(
            f"{owner}: the TSConv input has {n_features} samples/features but temporal_kernel={temporal_kernel} "
            f"and pool_kernel={pool_kernel} need at least {needed}; lower temporal_kernel/pool_kernel."
        )


class TSConv(nn.Module):
    """Temporal-spatial convolution: ``(batch, n_rows, n_features) -> (batch, n_positions * n_filters)``.

    Parameters
    ----------
    n_rows : int
        Rows mixed by the spatial convolution (channels for NICE; tokens for ATM-S).
    n_features : int
        Length of each row (samples for NICE; the token width for ATM-S).
    n_filters : int
        Filters of every convolution (40 in the reference).
    temporal_kernel : int
        Width of the temporal convolution (25).
    pool_kernel : int
        Width of the average pooling (51).
    pool_stride : int
        Stride of the average pooling (5).
    dropout : float
        Dropout before the 1x1 convolution (0.5).
    """

    def __init__(
        self,
        n_rows: int,
        n_features: int,
        *,
        n_filters: int = 40,
        temporal_kernel: int = 25,
        pool_kernel: int = 51,
        pool_stride: int = 5,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_tsconv_geometry("TSConv", n_features, temporal_kernel, pool_kernel)
        self.n_rows = n_rows
        self.n_features = n_features
        self.n_filters = n_filters
        self.pool_kernel = pool_kernel
        self.pool_stride = pool_stride
        self.n_positions = tsconv_positions(n_features, temporal_kernel, pool_kernel, pool_stride)
        self.temporal = nn.Conv2d(1, n_filters, (1, temporal_kernel))
        self.bn1 = nn.BatchNorm2d(n_filters)
        self.spatial = nn.Conv2d(n_filters, n_filters, (n_rows, 1))
        self.bn2 = nn.BatchNorm2d(n_filters)
        self.dropout = nn.Dropout(dropout)
        self.pointwise = nn.Conv2d(n_filters, n_filters, 1)
        n_box = pool_stride * (self.n_positions - 1) + temporal_kernel  # box-averaged samples the convolution reads
        self.register_buffer("box_band", box_band_matrix(n_features, n_box, pool_kernel), persistent=False)

    @property
    def out_features(self) -> int:
        """Size of the flattened output (``n_positions * n_filters``; 1,440 for 250 features)."""
        return self.n_positions * self.n_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply TSConv to ``x`` ``(batch, n_rows, n_features)``; returns ``(batch, n_positions * n_filters)``.

        Same numbers as the reference's ``Conv2d -> AvgPool2d -> BatchNorm2d -> ELU -> Conv2d -> BatchNorm2d ->
        ELU -> Dropout -> Conv2d -> flatten``, computed pool-first in a ``(batch, positions, rows, filters)``
        layout where every convolution is one matrix product (CPU convolution kernels are slow for a
        single-channel input with a stride, forward and backward) and the flatten order comes for free.
        """
        batch, n_rows, _ = x.shape
        n_f, n_p = self.n_filters, self.n_positions
        # Box average over `pool_kernel` samples as a product with a constant band matrix: exact sums of
        # `pool_kernel` terms, unlike a cumulative-sum difference, which loses precision with a DC offset.
        box = torch.matmul(x, self._box_band(x))  # (B, R, n_box)
        kernel = self.temporal.weight.shape[-1]
        windows = box.unfold(2, kernel, self.pool_stride).transpose(1, 2).reshape(-1, kernel)  # (B * P * R, k)
        y = torch.addmm(self.temporal.bias, windows, self.temporal.weight.reshape(n_f, kernel).t())  # rows (B, P, R)
        # (N, C, 1, 1) views let the BatchNorm2d modules normalise the filter axis without moving data.
        y = F.elu(self.bn1(y.reshape(-1, n_f, 1, 1)))
        w_spatial = self.spatial.weight[..., 0].permute(2, 1, 0).reshape(n_rows * n_f, n_f)  # (R * F_in, F_out)
        y = torch.addmm(self.spatial.bias, y.reshape(batch * n_p, n_rows * n_f), w_spatial)  # (B * P, F)
        y = self.dropout(F.elu(self.bn2(y.reshape(-1, n_f, 1, 1))))
        y = F.linear(y.reshape(batch * n_p, n_f), self.pointwise.weight.reshape(n_f, n_f), self.pointwise.bias)
        return y.reshape(batch, n_p * n_f)  # index = position * F + filter

    def _box_band(self, x: torch.Tensor) -> torch.Tensor:
        band = self.box_band
        if band.dtype != x.dtype or band.device != x.device:
            band = band.to(device=x.device, dtype=x.dtype)
        return band


def box_band_matrix(n_features: int, n_box: int, pool_kernel: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n_features, n_box)`` matrix whose column ``m`` averages inputs ``m .. m + pool_kernel - 1``."""
    band = torch.zeros(n_features, n_box, dtype=torch.float64)
    for m in range(n_box):
        band[m : m + pool_kernel, m] = 1.0 / pool_kernel
    return band.to(dtype)


class Projector(nn.Module):
    """MLP projector: ``Linear(in -> embed) -> x + Dropout(Linear(GELU(x))) -> LayerNorm``.

    Parameters
    ----------
    in_features : int
        Input size (TSConv's ``out_features``).
    embed_dim : int
        Output size.
    dropout : float
        Dropout inside the residual block (0.5 in the reference).
    """

    def __init__(self, in_features: int, embed_dim: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, embed_dim)
        self.residual = nn.Linear(embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``(batch, in_features)`` to ``(batch, embed_dim)``."""
        h = self.linear(x)
        h = h + self.dropout(self.residual(F.gelu(h)))
        return self.norm(h)


def pad_output_rows(weight: torch.Tensor, bias: torch.Tensor | None = None, multiple: int = 16):
    """Zero-pad a Linear weight ``(out, in)`` (and bias) to an output width that is a multiple of ``multiple``.

    MKL's single-precision GEMM is markedly faster on the development CPU (AMD EPYC, AVX-512) when the output
    width is a multiple of 16 floats (e.g. about 20 versus 30 GMAC/s for 250 versus 256 columns); the padded
    columns come out as exact zeros and are sliced away as a view, so results are bit-identical.

    Returns
    -------
    weight : torch.Tensor, shape (padded_out, in)
    bias : torch.Tensor, shape (padded_out,)
    """
    n_out = weight.shape[0]
    padded = -(-n_out // multiple) * multiple
    new_weight = weight.new_zeros((padded, *weight.shape[1:]))
    new_weight[:n_out] = weight
    new_bias = weight.new_zeros(padded)
    if bias is not None:
        new_bias[:n_out] = bias
    return new_weight, new_bias


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = scale * x + shift`` (float64)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ToolkitError("Cannot fold a BatchNorm without running statistics (track_running_stats=False).")
    scale = torch.ones_like(bn.running_var, dtype=torch.float64)
    shift = torch.zeros_like(bn.running_mean, dtype=torch.float64)
    if bn.affine:
        scale = bn.weight.double().clone()
        shift = bn.bias.double().clone()
    inv_std = torch.rsqrt(bn.running_var.double() + bn.eps)
    scale = scale * inv_std
    shift = shift - bn.running_mean.double() * scale
    return scale, shift


class FoldedHead(nn.Module):
    """Eval-mode TSConv + projector folded into five matrix products (inference only).

    Built from a :class:`TSConv` and a :class:`Projector`; optionally absorbs an elementwise affine map
    ``x * gamma + beta`` applied to the input rows just before TSConv (the final LayerNorm's affine in ATM-S).
    All folding is done in float64 and stored in the modules' dtype.

    Parameters
    ----------
    tsconv : TSConv
        The TSConv to fold (its BatchNorm running statistics are used).
    projector : Projector
        The projector that follows it.
    input_scale : torch.Tensor | None, shape (n_features,)
        Per-feature scale applied to the input before TSConv, or ``None``.
    input_shift : torch.Tensor | None, shape (n_features,)
        Per-feature shift applied to the input before TSConv, or ``None``.
    """

    @torch.no_grad()  # snapshots of the weights, never part of an autograd graph
    def __init__(
        self,
        tsconv: TSConv,
        projector: Projector,
        input_scale: torch.Tensor | None = None,
        input_shift: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        dtype = projector.linear.weight.dtype
        device = projector.linear.weight.device
        n_f, n_r, n_p = tsconv.n_filters, tsconv.n_rows, tsconv.n_positions
        d = tsconv.n_features
        k_t = tsconv.temporal.weight.shape[-1]
        pool, stride = tsconv.pool_kernel, tsconv.pool_stride
        n_box = stride * (n_p - 1) + k_t  # box-filtered samples the strided convolution reads
        self.n_filters, self.n_rows, self.n_positions, self.kernel, self.stride = n_f, n_r, n_p, k_t, stride

        # 1. Box average (and input affine) as one matrix: box[m] = mean(z[m : m + pool]), z = x * gamma + beta.
        gamma = torch.ones(d, dtype=torch.float64, device=device)
        beta = torch.zeros(d, dtype=torch.float64, device=device)
        if input_scale is not None:
            gamma = input_scale.double()
        if input_shift is not None:
            beta = input_shift.double()
        band = box_band_matrix(d, n_box, pool, torch.float64).to(device)
        box_weight, box_bias = pad_output_rows((gamma[:, None] * band).t(), beta @ band)
        self.n_box = n_box
        self.register_buffer("box_weight", box_weight.t().contiguous().to(dtype))  # (d, n_box padded)
        self.register_buffer("box_bias", box_bias.to(dtype))

        # 2. Strided temporal convolution + BatchNorm 1.
        scale1, shift1 = _bn_scale_shift(tsconv.bn1)
        w_t = tsconv.temporal.weight.double().reshape(n_f, k_t)
        self.register_buffer("conv_weight", (scale1[:, None] * w_t).to(dtype))  # (F, k)
        self.register_buffer("conv_bias", (scale1 * tsconv.temporal.bias.double() + shift1).to(dtype)[:, None])

        # 3. Spatial convolution + BatchNorm 2: (F_out, F_in * rows), F_in-major like the conv weight.
        scale2, shift2 = _bn_scale_shift(tsconv.bn2)
        w_s = tsconv.spatial.weight.double().reshape(n_f, n_f * n_r)
        self.register_buffer("spatial_weight", (scale2[:, None] * w_s).to(dtype))
        self.register_buffer("spatial_bias", (scale2 * tsconv.spatial.bias.double() + shift2).to(dtype)[:, None])

        # 4. 1x1 convolution -> flatten (position * F + filter) -> Linear, reordered to (filter * P + position).
        w_lin = projector.linear.weight.double().reshape(-1, n_p, n_f)  # (E, P, F_out)
        w_pw = tsconv.pointwise.weight.double().reshape(n_f, n_f)  # (F_out, F_in)
        folded = torch.einsum("epg,gh->ehp", w_lin, w_pw).reshape(w_lin.shape[0], n_f * n_p)
        bias = projector.linear.bias.double() + torch.einsum("epg,g->e", w_lin, tsconv.pointwise.bias.double())
        self.register_buffer("linear_weight", folded.to(dtype))  # (E, F * P)
        self.register_buffer("linear_bias", bias.to(dtype))

        # 5. Projector residual block and LayerNorm, unchanged.
        self.register_buffer("residual_weight", projector.residual.weight.detach().clone())
        self.register_buffer("residual_bias", projector.residual.bias.detach().clone())
        self.register_buffer("norm_weight", projector.norm.weight.detach().clone())
        self.register_buffer("norm_bias", projector.norm.bias.detach().clone())
        self.norm_eps = projector.norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, n_rows, n_features)`` to ``(batch, embed_dim)`` (eval-mode TSConv + projector)."""
        batch = x.shape[0]
        n_f, n_r, n_p = self.n_filters, self.n_rows, self.n_positions
        box = torch.addmm(self.box_bias, x.reshape(batch * n_r, -1), self.box_weight)[:, : self.n_box]  # (B*R, n_box)
        # (R, n_box, B) so that batch is the fastest axis of every later product.
        box = box.reshape(batch, n_r, -1).permute(1, 2, 0).contiguous()
        # Windows (kernel, R, P, B): window k of position p is box[:, p * stride + k, :].
        windows = box.unfold(1, self.kernel, self.stride).permute(3, 0, 1, 2).reshape(self.kernel, -1)
        maps = torch.addmm(self.conv_bias, self.conv_weight, windows)  # (F, R * P * B)
        F.elu(maps, inplace=True)
        spatial = torch.addmm(self.spatial_bias, self.spatial_weight, maps.reshape(n_f * n_r, n_p * batch))
        F.elu(spatial, inplace=True)  # (F, P * B) = (F * P, B)
        # Batch-major for the last products: addmm with a narrow batch accumulates less accurately in MKL.
        h = F.linear(spatial.reshape(n_f * n_p, batch).t().contiguous(), self.linear_weight, self.linear_bias)
        h = h + F.linear(F.gelu(h), self.residual_weight, self.residual_bias)
        return F.layer_norm(h, h.shape[-1:], self.norm_weight, self.norm_bias, self.norm_eps)
