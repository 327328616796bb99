"""Braindecode baselines as toolkit encoders: EEGNet, ShallowFBCSPNet, EEGConformer and ATCNet.

The ATM paper compares ATM-S with these braindecode models, each mapping EEG ``(batch, 63, 250)`` to a 1024-d
embedding (reference sheet ATM.md §3.5). The models are **taken from braindecode, not rewritten**: each encoder
builds the braindecode model with ``n_outputs=embed_dim``, so the model's own final layer maps its features to the
embedding, and returns that output unchanged. Braindecode >= 1.0 adds no log-softmax to its models (checked by
the tests); the reference ran braindecode 0.8 with ``add_log_softmax=True`` and so trained on log-probability
"embeddings" (ATM.md §12.2), which these encoders do not reproduce. No LayerNorm or extra projector is added, so
the parameter counts are braindecode's (EEGNet: 1,186,832 for THINGS-EEG, the reference's 1,186,833 less its
logit scale, which lives in the loss here).

===============  ========================  ========================================================================
Registry name    braindecode class         Settings (defaults; reference sheet ATM.md §3.5)
===============  ========================  ========================================================================
``"eegnet"``     ``EEGNet`` (EEGNetv4)     F1 8, D 20, F2 160, kernel_length 4, pool mean 4/8, depthwise 16, drop
                                           0.25, unconstrained convolutional classifier
``"shallow"``    ``ShallowFBCSPNet``       20 temporal filters of 20, 20 spatial filters, mean pool 25/5, batch
                                           norm, drop 0.5, square / log non-linearities
``"conformer"``  ``EEGConformer``          40 filters of 10, pool 25/5, drop 0.25, 2 layers, 1 head, attention
                                           drop 0.5; ``final_fc_length`` derived (1,760 for 250 samples)
``"atcnet"``     ``ATCNet``                8 filters, kernels 32/8, pools 4/3, depth 2, drop 0.3, 5 windows,
                                           2 heads of 4, attention drop 0.5, TCN depth 2 kernel 4 drop 0.3, ELU,
                                           max-norm 0.25
===============  ========================  ========================================================================

Each model needs a minimum number of samples (its pooling and windowing must leave at least one position):
``config.min_n_times`` gives it (27, 44, 34 and 132 samples for the defaults) and a shorter ``n_times`` raises a
:class:`~toolkit.ToolkitError` instead of braindecode's assertion, shape error or (ATCNet) silent rescaling of the
kernels. None of these models reads channel positions, so no ``chs_info`` is passed (``n_chans`` suffices), and
none has a subject-specific part: ``subject_ids`` are validated and ignored. Braindecode is imported when an
encoder is built, not when this module is imported.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ToolkitError
from ..utils import require
from .base import EEGEncoder, EncoderConfig, check_choice_field, check_float_field, check_int_field, register_encoder

#: Warnings braindecode raises that say nothing to a toolkit user (message regexes): MNE's montage rename and a
#: pandas deprecation in wfdb, both hit while ``braindecode.models`` imports all its models, and EEGNet's notice
#: that the unconstrained convolutional classifier (the reference's, chosen on purpose here) is deprecated.
_QUIET = (
    r"Montage name 'standard_1020' is deprecated",
    r"The inplace keyword in DataFrame.set_index is deprecated",
    r"Parameter 'final_layer_with_constraint=False' is deprecated",
)

POOL_MODES = ("mean", "max")
TESTED_BRAINDECODE = "1.8.1"


@contextmanager
def _quiet_braindecode() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        yield


def braindecode_model_class(class_name: str) -> type[nn.Module]:
    """The braindecode model class ``class_name`` (imported on demand from ``braindecode.models``).

    Parameters
    ----------
    class_name : str
        Class name in ``braindecode.models`` (e.g. ``"EEGNet"``).

    Returns
    -------
    type
        The model class.
    """
    with _quiet_braindecode():
        models = require("braindecode.models", extra="encoders", purpose="the braindecode baseline encoders")
    cls = getattr(models, class_name, None)
    if cls is None:
        import braindecode

        raise ToolkitError(
            f"braindecode {braindecode.__version__} has no model '{class_name}'; install braindecode "
            f"{TESTED_BRAINDECODE} or newer (pip install -U braindecode)."
        )
    return cls


def build_braindecode_model(class_name: str, *, owner: str, **kwargs: Any) -> nn.Module:
    """Instantiate a braindecode model, turning an argument mismatch into one clear error.

    Parameters
    ----------
    class_name : str
        Class name in ``braindecode.models``.
    owner : str
        The toolkit encoder building it, named in error messages.
    **kwargs
        Constructor arguments (braindecode's names).

    Returns
    -------
    nn.Module
        The model, in training mode.
    """
    cls = braindecode_model_class(class_name)
    try:
        with _quiet_braindecode():
            return cls(**kwargs)
    except TypeError as err:  # an argument this braindecode version does not know
        import braindecode

        raise ToolkitError(
            f"The '{owner}' encoder could not build braindecode.models.{class_name} with braindecode "
            f"{braindecode.__version__} ({err}); it is written for braindecode {TESTED_BRAINDECODE}, install that "
            "version or newer."
        ) from err


def _min_length(length: Callable[[int], int]) -> int:
    """Smallest input length for which ``length`` (non-decreasing, integer pooling arithmetic) is at least 1."""
    # A linear scan: the minima are a few hundred samples at most and this runs once per configuration.
    n = 1
    while length(n) < 1:
        n += 1
    return n


def _pooled(n: int, kernel: int, stride: int) -> int:
    """Positions left by a pooling of ``kernel`` with ``stride`` over ``n`` positions (0 when ``n < kernel``)."""
    return 0 if n < kernel else (n - kernel) // stride + 1


# --------------------------------------------------------------------------------------------------------------
# Configuration base
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BraindecodeConfig(EncoderConfig):
    """Base of the baseline configurations: the signal fields plus a model's own settings.

    Subclasses add braindecode's constructor arguments as fields (same names), implement
    :meth:`braindecode_kwargs`, :meth:`output_length` (positions left after the model's pooling for a given
    ``n_times``) and ``_validate_model``.
    """

    def validate(self) -> None:
        super().validate()
        self._validate_model()
        minimum = self.min_n_times
        if self.n_times < minimum:
            raise ToolkitError(
                f"{type(self).__name__}: n_times={self.n_times} is too short for these settings; the model needs "
                f"at least {minimum} samples; use longer trials or smaller kernels/pools."
            )

    def _validate_model(self) -> None:
        """Check the model-specific fields (subclasses)."""

    def output_length(self, n_times: int) -> int:
        """Positions the model's last pooling leaves for ``n_times`` input samples (0: too short)."""
        raise NotImplementedError

    @property
    def min_n_times(self) -> int:
        """The fewest samples these settings accept."""
        return _min_length(self.output_length)

    def braindecode_kwargs(self) -> dict[str, Any]:
        """Model arguments passed to braindecode besides ``n_chans``, ``n_times``, ``sfreq`` and ``n_outputs``."""
        raise NotImplementedError


class BraindecodeEncoder(EEGEncoder):
    """Base of the braindecode baselines: ``forward(eeg, subject_ids=None) -> eeg_embeds`` ``(batch, embed_dim)``.

    The braindecode model is the submodule ``model`` (state-dict keys ``model.<braindecode name>``), built with
    ``n_outputs=embed_dim``; its output is returned as is (raw, not normalised, no log-softmax).

    Parameters
    ----------
    config : BraindecodeConfig | None
        The configuration (``None``: the defaults of ``config_class``).
    """

    braindecode_class: ClassVar[str] = ""
    config_class: ClassVar[type[EncoderConfig]] = BraindecodeConfig
    config: BraindecodeConfig

    def __init__(self, config: BraindecodeConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.model = build_braindecode_model(
            self.braindecode_class,
            owner=self.name,
            n_chans=cfg.n_chans,
            n_times=cfg.n_times,
            sfreq=cfg.sfreq,
            n_outputs=cfg.embed_dim,
            **cfg.braindecode_kwargs(),
        )

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.model(eeg)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, braindecode={self.braindecode_class}"


# --------------------------------------------------------------------------------------------------------------
# EEGNet (v4)
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class EEGNetFields:
    """EEGNet (v4) settings, shared by the ``"eegnet"`` baseline and ATM-E (braindecode ``EEGNet`` argument names).

    The reference's ``third_kernel_size=(4, 2)`` has no counterpart: braindecode's EEGNetv4 stored it without using
    it (only EEGNetv1 had a third convolution) and braindecode 1.x deprecates it, so it changes nothing. Its
    depthwise kernel (16) and pools (4, 8) were fixed in braindecode 0.8 and are arguments now, with the same
    defaults.

    Parameters
    ----------
    F1 : int
        Temporal filters (8).
    D : int
        Spatial filters per temporal filter (depth multiplier; 20).
    F2 : int
        Pointwise filters of the separable convolution (160).
    kernel_length : int
        Temporal kernel length in samples (4).
    depthwise_kernel_length : int
        Kernel of the separable block's depthwise temporal convolution (16).
    pool1_kernel_size, pool2_kernel_size : int
        The two temporal poolings (kernel = stride; 4 and 8).
    pool_mode : str
        ``"mean"`` or ``"max"`` pooling (``"mean"``).
    drop_prob : float
        Dropout after each pooling (0.25).
    """

    F1: int = 8
    D: int = 20
    F2: int = 160
    kernel_length: int = 4
    depthwise_kernel_length: int = 16
    pool1_kernel_size: int = 4
    pool2_kernel_size: int = 8
    pool_mode: str = "mean"
    drop_prob: float = 0.25

    def _validate_eegnet(self) -> None:
        for name in ("F1", "D", "F2", "kernel_length", "depthwise_kernel_length"):
            check_int_field(self, name, minimum=1)
        for name in ("pool1_kernel_size", "pool2_kernel_size"):
            check_int_field(self, name, minimum=1)
        check_choice_field(self, "pool_mode", POOL_MODES)
        check_float_field(self, "drop_prob", low=0.0, high=1.0)

    def eegnet_length(self, n_times: int) -> int:
        """Time positions after EEGNet's second pooling (0 if ``n_times`` is too short)."""
        # Both convolutions pad by kernel // 2 on each side (one extra sample for an even kernel).
        n = n_times + 2 * (self.kernel_length // 2) - self.kernel_length + 1
        n = _pooled(n, self.pool1_kernel_size, self.pool1_kernel_size)
        if n < 1:
            return 0
        n = n + 2 * (self.depthwise_kernel_length // 2) - self.depthwise_kernel_length + 1
        return _pooled(n, self.pool2_kernel_size, self.pool2_kernel_size)

    def eegnet_min_times(self) -> int:
        """The fewest input samples EEGNet accepts with these settings (27 for the defaults)."""
        return _min_length(self.eegnet_length)

    def eegnet_kwargs(self) -> dict[str, Any]:
        """Arguments of ``braindecode.models.EEGNet`` for these settings."""
        return dict(
            F1=self.F1,
            D=self.D,
            F2=self.F2,
            kernel_length=self.kernel_length,
            depthwise_kernel_length=self.depthwise_kernel_length,
            pool1_kernel_size=self.pool1_kernel_size,
            pool2_kernel_size=self.pool2_kernel_size,
            pool_mode=self.pool_mode,
            drop_prob=self.drop_prob,
            final_conv_length="auto",
            # The reference's classifier: a convolution over the remaining (virtual channel x time) map, without
            # the max-norm constraint of the linear alternative.
            final_layer_with_constraint=False,
        )


@dataclass(frozen=True, kw_only=True)
class EEGNetConfig(EEGNetFields, BraindecodeConfig):
    """Configuration of :class:`EEGNetEncoder` (defaults: the ATM repository's EEGNetv4 baseline).

    Parameters
    ----------
    n_chans, n_times, sfreq, embed_dim, logit_scale, logit_scale_init
        See :class:`~toolkit.encoders.EncoderConfig` (defaults 63, 250, 250 Hz, 1024, ``"raw"``,
        ``log(1/0.07)``).
    F1, D, F2, kernel_length, depthwise_kernel_length, pool1_kernel_size, pool2_kernel_size, pool_mode, drop_prob
        See :class:`EEGNetFields`.
    """

    def _validate_model(self) -> None:
        self._validate_eegnet()

    def output_length(self, n_times: int) -> int:
        return self.eegnet_length(n_times)

    def braindecode_kwargs(self) -> dict[str, Any]:
        return self.eegnet_kwargs()


@register_encoder("eegnet")
class EEGNetEncoder(BraindecodeEncoder):
    """EEGNet (v4; Lawhern et al. 2018) from braindecode, its classifier convolution producing the embedding."""

    braindecode_class = "EEGNet"
    config_class = EEGNetConfig
    config: EEGNetConfig


# --------------------------------------------------------------------------------------------------------------
# ShallowFBCSPNet
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ShallowConfig(BraindecodeConfig):
    """Configuration of :class:`ShallowEncoder` (defaults: the ATM repository's ShallowFBCSPNet baseline).

    The non-linearities stay braindecode's defaults (square after the convolutions, safe log after the
    pooling), as in the reference; the first layer is split into temporal and spatial convolutions.

    Parameters
    ----------
    n_chans, n_times, sfreq, embed_dim, logit_scale, logit_scale_init
        See :class:`~toolkit.encoders.EncoderConfig`.
    n_filters_time : int
        Temporal filters (20).
    filter_time_length : int
        Temporal kernel length in samples (20).
    n_filters_spat : int
        Spatial filters (20).
    pool_time_length, pool_time_stride : int
        Temporal pooling kernel and stride (25, 5).
    pool_mode : str
        ``"mean"`` or ``"max"`` (``"mean"``).
    batch_norm : bool
        Batch normalisation after the spatial convolution (True).
    drop_prob : float
        Dropout before the final layer (0.5).
    """

    n_filters_time: int = 20
    filter_time_length: int = 20
    n_filters_spat: int = 20
    pool_time_length: int = 25
    pool_time_stride: int = 5
    pool_mode: str = "mean"
    batch_norm: bool = True
    drop_prob: float = 0.5

    def _validate_model(self) -> None:
        for name in ("n_filters_time", "filter_time_length", "n_filters_spat", "pool_time_length", "pool_time_stride"):
            check_int_field(self, name, minimum=1)
        check_choice_field(self, "pool_mode", POOL_MODES)
        if not isinstance(self.batch_norm, bool):
            raise ToolkitError(f"ShallowConfig.batch_norm must be True or False; got {self.batch_norm!r}.")
        check_float_field(self, "drop_prob", low=0.0, high=1.0)

    def output_length(self, n_times: int) -> int:
        return _pooled(n_times - self.filter_time_length + 1, self.pool_time_length, self.pool_time_stride)

    def braindecode_kwargs(self) -> dict[str, Any]:
        return dict(
            n_filters_time=self.n_filters_time,
            filter_time_length=self.filter_time_length,
            n_filters_spat=self.n_filters_spat,
            pool_time_length=self.pool_time_length,
            pool_time_stride=self.pool_time_stride,
            pool_mode=self.pool_mode,
            batch_norm=self.batch_norm,
            drop_prob=self.drop_prob,
            final_conv_length="auto",
            split_first_layer=True,
        )


@register_encoder("shallow")
class ShallowEncoder(BraindecodeEncoder):
    """ShallowFBCSPNet (Schirrmeister et al. 2017) from braindecode, its classifier producing the embedding."""

    braindecode_class = "ShallowFBCSPNet"
    config_class = ShallowConfig
    config: ShallowConfig


# --------------------------------------------------------------------------------------------------------------
# EEGConformer
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ConformerConfig(BraindecodeConfig):
    """Configuration of :class:`ConformerEncoder` (defaults: the ATM repository's EEGConformer baseline).

    Braindecode 1.x names the reference's ``att_depth`` / ``att_heads`` ``num_layers`` / ``num_heads``. The
    flattened feature size is derived (:attr:`final_fc_length`, 1,760 for 250 samples, which the reference
    hard-coded). Braindecode's head is kept: ``Linear(final_fc_length -> 256) -> ELU -> Dropout(0.5) ->
    Linear(256 -> 32) -> ELU -> Dropout(0.3) -> Linear(32 -> embed_dim)``, so the embedding passes a 32-wide
    bottleneck, as in the reference.

    Parameters
    ----------
    n_chans, n_times, sfreq, embed_dim, logit_scale, logit_scale_init
        See :class:`~toolkit.encoders.EncoderConfig`.
    n_filters_time : int
        Temporal filters, also the transformer's width (40).
    filter_time_length : int
        Temporal kernel length (10).
    pool_time_length, pool_time_stride : int
        Average pooling kernel and stride (25, 5).
    drop_prob : float
        Dropout of the convolutional patch embedding (0.25).
    num_layers : int
        Transformer layers (2).
    num_heads : int
        Attention heads; must divide ``n_filters_time`` (1).
    att_drop_prob : float
        Dropout inside the transformer (0.5).
    """

    n_filters_time: int = 40
    filter_time_length: int = 10
    pool_time_length: int = 25
    pool_time_stride: int = 5
    drop_prob: float = 0.25
    num_layers: int = 2
    num_heads: int = 1
    att_drop_prob: float = 0.5

    def _validate_model(self) -> None:
        for name in ("n_filters_time", "filter_time_length", "pool_time_length", "pool_time_stride", "num_layers"):
            check_int_field(self, name, minimum=1)
        check_int_field(self, "num_heads", minimum=1)
        if self.n_filters_time % self.num_heads:
            raise ToolkitError(
                f"ConformerConfig: num_heads={self.num_heads} must divide n_filters_time={self.n_filters_time} "
                "(the attention width); choose a divisor."
            )
        for name in ("drop_prob", "att_drop_prob"):
            check_float_field(self, name, low=0.0, high=1.0)

    def output_length(self, n_times: int) -> int:
        return _pooled(n_times - self.filter_time_length + 1, self.pool_time_length, self.pool_time_stride)

    @property
    def final_fc_length(self) -> int:
        """Flattened transformer output feeding braindecode's head (``n_filters_time x`` pooled positions)."""
        return self.n_filters_time * self.output_length(self.n_times)

    def braindecode_kwargs(self) -> dict[str, Any]:
        return dict(
            n_filters_time=self.n_filters_time,
            filter_time_length=self.filter_time_length,
            pool_time_length=self.pool_time_length,
            pool_time_stride=self.pool_time_stride,
            drop_prob=self.drop_prob,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            att_drop_prob=self.att_drop_prob,
            final_fc_length="auto",
        )


@register_encoder("conformer")
class ConformerEncoder(BraindecodeEncoder):
    """EEGConformer (Song et al. 2023) from braindecode, its classification head producing the embedding."""

    braindecode_class = "EEGConformer"
    config_class = ConformerConfig
    config: ConformerConfig


# --------------------------------------------------------------------------------------------------------------
# ATCNet
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ATCNetConfig(BraindecodeConfig):
    """Configuration of :class:`ATCNetEncoder` (defaults: the ATM repository's ATCNet baseline).

    Braindecode 1.x renamed some of the reference's arguments (``att_head_dim`` -> ``head_dim``,
    ``att_num_heads`` -> ``num_heads``, ``att_dropout`` -> ``att_drop_prob``, ``tcn_dropout`` ->
    ``tcn_drop_prob``) and derives the TCN width as ``conv_block_depth_mult x conv_block_n_filters`` (16, the
    reference's ``tcn_n_filters``). The TCN activation is braindecode's default ELU and the windows' outputs are
    averaged (``concat=False``), both as in the reference; the convolutions carry no max-norm constraint
    (braindecode's default), only the final linear layers do (``max_norm_const``).

    Braindecode silently shrinks the kernels and pools when ``n_times`` is below its minimum
    (``(n_windows + (tcn_kernel_size - 1) * 2 ** (tcn_depth - 1)) * pool_1 * pool_2``, 132 for the defaults);
    this configuration refuses such lengths instead.

    Parameters
    ----------
    n_chans, n_times, sfreq, embed_dim, logit_scale, logit_scale_init
        See :class:`~toolkit.encoders.EncoderConfig`.
    conv_block_n_filters : int
        Temporal filters of the convolutional block (8).
    conv_block_kernel_length_1, conv_block_kernel_length_2 : int
        Its two temporal kernels (32, 8).
    conv_block_pool_size_1, conv_block_pool_size_2 : int
        Its two poolings (4, 3).
    conv_block_depth_mult : int
        Depth multiplier of its spatial convolution (2).
    conv_block_dropout : float
        Its dropout (0.3).
    n_windows : int
        Sliding windows, each with its attention, TCN and linear head (5).
    head_dim : int
        Width of each attention head (4).
    num_heads : int
        Attention heads (2).
    att_drop_prob : float
        Attention dropout (0.5).
    tcn_depth : int
        Residual blocks per TCN (2).
    tcn_kernel_size : int
        TCN kernel (4).
    tcn_drop_prob : float
        TCN dropout (0.3).
    max_norm_const : float
        Max-norm of the final linear layers' weights (0.25).
    """

    conv_block_n_filters: int = 8
    conv_block_kernel_length_1: int = 32
    conv_block_kernel_length_2: int = 8
    conv_block_pool_size_1: int = 4
    conv_block_pool_size_2: int = 3
    conv_block_depth_mult: int = 2
    conv_block_dropout: float = 0.3
    n_windows: int = 5
    head_dim: int = 4
    num_heads: int = 2
    att_drop_prob: float = 0.5
    tcn_depth: int = 2
    tcn_kernel_size: int = 4
    tcn_drop_prob: float = 0.3
    max_norm_const: float = 0.25

    def _validate_model(self) -> None:
        for name in (
            "conv_block_n_filters",
            "conv_block_kernel_length_1",
            "conv_block_kernel_length_2",
            "conv_block_pool_size_1",
            "conv_block_pool_size_2",
            "conv_block_depth_mult",
            "n_windows",
            "head_dim",
            "num_heads",
            "tcn_depth",
        ):
            check_int_field(self, name, minimum=1)
        check_int_field(self, "tcn_kernel_size", minimum=2)
        for name in ("conv_block_dropout", "att_drop_prob", "tcn_drop_prob"):
            check_float_field(self, name, low=0.0, high=1.0)
        check_float_field(self, "max_norm_const", low=0.0, open_low=True)

    def output_length(self, n_times: int) -> int:
        # Positions the shortest admissible window leaves beyond the TCN's receptive field; braindecode's
        # minimum is where this reaches 1.
        n_conv = n_times // (self.conv_block_pool_size_1 * self.conv_block_pool_size_2)
        receptive_field = (self.tcn_kernel_size - 1) * 2 ** (self.tcn_depth - 1) + 1
        return max(0, n_conv - (self.n_windows + receptive_field - 1) + 1)

    def braindecode_kwargs(self) -> dict[str, Any]:
        return dict(
            conv_block_n_filters=self.conv_block_n_filters,
            conv_block_kernel_length_1=self.conv_block_kernel_length_1,
            conv_block_kernel_length_2=self.conv_block_kernel_length_2,
            conv_block_pool_size_1=self.conv_block_pool_size_1,
            conv_block_pool_size_2=self.conv_block_pool_size_2,
            conv_block_depth_mult=self.conv_block_depth_mult,
            conv_block_dropout=self.conv_block_dropout,
            n_windows=self.n_windows,
            head_dim=self.head_dim,
            num_heads=self.num_heads,
            att_drop_prob=self.att_drop_prob,
            tcn_depth=self.tcn_depth,
            tcn_kernel_size=self.tcn_kernel_size,
            tcn_drop_prob=self.tcn_drop_prob,
            max_norm_const=self.max_norm_const,
            concat=False,
        )


@register_encoder("atcnet")
class ATCNetEncoder(BraindecodeEncoder):
    """ATCNet (Altaheri et al. 2022) from braindecode, its averaged window heads producing the embedding."""

    braindecode_class = "ATCNet"
    config_class = ATCNetConfig
    config: ATCNetConfig
