"""BrainVis encoders (Fu et al., ICASSP 2025): time branch with latent masked modelling, frequency branch, both.

Three registered encoders share the signature ``forward(eeg, subject_ids=None) -> eeg_embeds`` (subject ids are
ignored: BrainVis has no subject-specific parts):

``"brainvis-time"`` (:class:`BrainVisTimeEncoder`)
    EEG ``(batch, n_chans, n_times)`` → units: ``Conv1d(n_chans → d_model)`` with kernel = stride =
    ``wave_length`` (4) → plus a learnable position table ``(n_units, d_model)`` → ``n_layers`` post-LN blocks
    ``y = LN(x + Dropout(a · f(x)))`` with scalar gates ``a`` initialised to 1e-8 (ReZero-like) → mean over units
    (1,024-d). EEG-ImageNet's 440 samples give 110 units; when ``n_times`` is not a multiple of ``wave_length``
    (THINGS-EEG: 250) the trials are zero-padded at the end to the next multiple (252 → 63 units, the last one
    holding 2 real samples) with ``unit_padding="zeros"``, or the incomplete unit is dropped with ``"crop"``
    (62 units). With ``masked_modelling=True`` it also holds the latent-masked-modelling (LMM) pretraining parts
    (reference sheet BRAINVIS.md §2): :meth:`~BrainVisTimeEncoder.pretraining_loss`,
    :meth:`~BrainVisTimeEncoder.update_momentum` and the trainer hook
    :meth:`~BrainVisTimeEncoder.training_loss` (``python -m toolkit train --objective model``).
``"brainvis-freq"`` (:class:`BrainVisFreqEncoder`)
    ``|torch.fft.rfft|`` over time per channel, bins ``1 … n_times // 2`` (DC dropped; 220 for 440 samples) as a
    sequence of ``n_bins`` steps x ``n_chans`` → LSTM(128) → last hidden state → Linear 128 → 128 + ReLU (128-d).
    Differentiable and on the input's device.
``"brainvis"`` (:class:`BrainVisEncoder`)
    ``concat(time 1,024, freq 128)`` = 1,152-d features; ``n_classes > 0`` adds the Linear 1,152 → ``n_classes``
    head (:meth:`~BrainVisEncoder.classify`, trainer hook :meth:`~BrainVisEncoder.training_loss`). Branches
    trained separately are combined with :meth:`BrainVisEncoder.from_branches`.

Every encoder maps its natural features (``feature_dim``) to ``embed_dim`` with ``projection``: ``"auto"`` (none
when the sizes agree, else a Linear), ``"linear"``, ``"mlp"`` (the ATM/NICE projector: Linear, residual GELU
block, LayerNorm) or ``"none"``. For CLIP alignment on THINGS-EEG, e.g.
``create_encoder("brainvis", n_chans=63, n_times=250, sfreq=250, embed_dim=1024, projection="mlp")``.

:class:`BrainVisAlignNet` is the alignment variant (§5.2): a residual tanh MLP mapping ``concat(features,
class logits)`` to ``77 x 768`` CLIP text hidden states, trained with :func:`brainvis_alignment_loss`.

Defaults reproduce the reference on EEG-ImageNet (128 channels x 440 samples at 1 kHz).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .._version import __version__
from ..errors import ToolkitError
from ..utils import atomic_path, atomic_write_json
from ._brainvis_freq import FreqBackbone, magnitude_spectrum
from ._brainvis_time import GatedBlock, TimeBackbone, frozen_copy
from ._layers import Projector
from .base import (
    EEGEncoder,
    EncoderConfig,
    check_choice_field,
    check_encoder_input,
    check_float_field,
    check_int_field,
    check_state_dict,
    register_encoder,
)

logger = logging.getLogger(__name__)

UNIT_PADDINGS = ("zeros", "crop")
PROJECTIONS = ("auto", "linear", "mlp", "none")
CODE_SAMPLINGS = ("gumbel", "argmax")
ALIGN_CONFIG_NAME = "align_config.json"
ALIGN_WEIGHTS_NAME = "align_head.safetensors"
ALIGN_ENCODER_DIR = "encoder"


def _check_bool_field(config: Any, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise ToolkitError(
            f"{type(config).__name__}.{name} must be True or False; got {value!r}; fix the value passed for '{name}'."
        )


# --------------------------------------------------------------------------------------------------------------
# Configuration (field groups combined into the three encoder configurations)
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _TimeFields:
    if TYPE_CHECKING:  # provided by EncoderConfig in the combined configurations
        n_times: int

    wave_length: int = 4
    d_model: int = 1024
    n_layers: int = 8
    n_heads: int = 16
    d_ff: int = 4096
    dropout: float = 0.2
    gate_init: float = 1e-8
    unit_padding: str = "zeros"

    @property
    def n_units(self) -> int:
        """Units per trial: ``ceil(n_times / wave_length)`` (``"zeros"``) or ``floor`` (``"crop"``)."""
        n_times: int = self.n_times
        if self.unit_padding == "crop":
            return n_times // self.wave_length
        return -(-n_times // self.wave_length)

    @property
    def n_pad(self) -> int:
        """Zero samples appended to each trial (``"zeros"`` padding only)."""
        if self.unit_padding == "crop":
            return 0
        return self.n_units * self.wave_length - self.n_times

    def _validate_time(self) -> None:
        for name in ("wave_length", "d_model", "n_layers", "n_heads", "d_ff"):
            check_int_field(self, name, minimum=1)
        check_float_field(self, "dropout", low=0.0, high=1.0)
        check_float_field(self, "gate_init", low=-math.inf)
        check_choice_field(self, "unit_padding", UNIT_PADDINGS)
        if self.d_model % self.n_heads:
            raise ToolkitError(
                f"{type(self).__name__}: d_model={self.d_model} is not divisible by n_heads={self.n_heads}; pick "
                "sizes where every attention head gets the same width."
            )
        if self.n_units < 1:
            raise ToolkitError(
                f"{type(self).__name__}: n_times={self.n_times} is shorter than one unit of "
                f"wave_length={self.wave_length} samples with unit_padding='crop'; use unit_padding='zeros' or a "
                "smaller wave_length."
            )


@dataclass(frozen=True, kw_only=True)
class _MaskedModellingFields:
    if TYPE_CHECKING:  # provided by _TimeFields in the combined configuration
        n_units: int

    masked_modelling: bool = False
    mask_ratio: float = 0.75
    momentum: float = 0.99
    n_codes: int = 660
    regressor_layers: int = 4
    mse_weight: float = 4.0
    ce_weight: float = 2.0
    code_label_smoothing: float = 0.2
    code_sampling: str = "gumbel"

    @property
    def n_masked(self) -> int:
        """Masked units per trial: ``floor(n_units * mask_ratio)`` (82 of 110 in the reference)."""
        # round() first so that e.g. 0.29 * 100 = 28.999999999999996 counts as 29.
        return math.floor(round(self.n_units * self.mask_ratio, 9))

    def _validate_masked_modelling(self) -> None:
        _check_bool_field(self, "masked_modelling")
        check_float_field(self, "mask_ratio", low=0.0, high=1.0, open_low=True)
        check_float_field(self, "momentum", low=0.0, high=1.0)
        check_int_field(self, "n_codes", minimum=2)
        check_int_field(self, "regressor_layers", minimum=1)
        check_float_field(self, "mse_weight", low=0.0)
        check_float_field(self, "ce_weight", low=0.0)
        check_float_field(self, "code_label_smoothing", low=0.0, high=1.0)
        check_choice_field(self, "code_sampling", CODE_SAMPLINGS)
        n_units = self.n_units
        if self.masked_modelling and not 1 <= self.n_masked <= n_units - 1:
            raise ToolkitError(
                f"{type(self).__name__}: mask_ratio={self.mask_ratio} masks {self.n_masked} of {n_units} units; "
                "masked modelling needs at least one masked and one visible unit; change mask_ratio or use longer "
                "trials."
            )


@dataclass(frozen=True, kw_only=True)
class _FreqFields:
    if TYPE_CHECKING:  # provided by EncoderConfig in the combined configurations
        n_times: int

    lstm_hidden: int = 128
    freq_features: int = 128

    @property
    def n_bins(self) -> int:
        """FFT bins after DC: ``n_times // 2`` (220 for 440 samples, 125 for 250)."""
        return self.n_times // 2

    def _validate_freq(self) -> None:
        check_int_field(self, "lstm_hidden", minimum=1)
        check_int_field(self, "freq_features", minimum=1)
        if self.n_bins < 1:
            raise ToolkitError(
                f"{type(self).__name__}: n_times={self.n_times} leaves no FFT bin after DC; the frequency "
                "branch needs at least 2 samples."
            )


@dataclass(frozen=True, kw_only=True)
class _ProjectionFields:
    if TYPE_CHECKING:  # provided by EncoderConfig in the combined configurations
        embed_dim: int

    projection: str = "auto"
    proj_dropout: float = 0.5

    @property
    def feature_dim(self) -> int:
        """Size of the features before the projection (subclasses define it)."""
        raise NotImplementedError

    def _validate_projection(self) -> None:
        check_choice_field(self, "projection", PROJECTIONS)
        check_float_field(self, "proj_dropout", low=0.0, high=1.0)
        if self.projection == "none" and self.feature_dim != self.embed_dim:
            raise ToolkitError(
                f"{type(self).__name__}: projection='none' needs embed_dim equal to the feature size "
                f"{self.feature_dim}; got embed_dim={self.embed_dim}; set embed_dim={self.feature_dim} or choose "
                "projection='linear' or 'mlp'."
            )


@dataclass(frozen=True, kw_only=True)
class BrainVisTimeConfig(_ProjectionFields, _MaskedModellingFields, _TimeFields, EncoderConfig):
    """Configuration of :class:`BrainVisTimeEncoder` (defaults: the reference on EEG-ImageNet).

    Parameters
    ----------
    n_chans, n_times, sfreq, logit_scale, logit_scale_init
        See :class:`EncoderConfig` (defaults here 128 channels, 440 samples, 1000 Hz).
    embed_dim : int
        Output size (1024 = ``d_model``: no projection with ``projection="auto"``).
    wave_length : int
        Samples per unit: kernel and stride of the unit-embedding convolution (4).
    d_model : int
        Unit embedding width (1024).
    n_layers : int
        Transformer blocks of the encoder (8).
    n_heads : int
        Attention heads (16); must divide ``d_model``.
    d_ff : int
        Feed-forward width (4096).
    dropout : float
        Dropout of attention weights, sublayer outputs and the feed-forward block (0.2).
    gate_init : float
        Initial value of every block's residual gates (1e-8).
    unit_padding : str
        ``"zeros"``: zero-pad the end of each trial to a multiple of ``wave_length``; ``"crop"``: drop the
        incomplete trailing unit.
    masked_modelling : bool
        Build the LMM pretraining parts (mask token, regressor, codebook, momentum target). Off by default: the
        encoder then holds only what :meth:`forward` uses.
    mask_ratio : float
        Fraction of units masked (0.75: 82 of 110).
    momentum : float
        EMA factor of the target encoder (0.99): ``target = m * target + (1 - m) * online``.
    n_codes : int
        Codebook size (660).
    regressor_layers : int
        Cross-attention blocks of the regressor (4).
    mse_weight, ce_weight : float
        Weights of the latent MSE and the code cross-entropy (4.0 and 2.0).
    code_label_smoothing : float
        Label smoothing of the code cross-entropy (0.2).
    code_sampling : str
        How a masked unit's code id is drawn from the codebook logits: ``"gumbel"`` (the reference:
        Gumbel-softmax followed by argmax, i.e. ``argmax(logits + Gumbel noise)``, a sample from
        ``softmax(logits)``; the Gumbel-softmax temperature does not change an argmax, so there is none) or
        ``"argmax"`` (deterministic, no noise).
    projection : str
        ``"auto"``, ``"linear"``, ``"mlp"`` or ``"none"`` (see the module docstring).
    proj_dropout : float
        Dropout inside the ``"mlp"`` projection (0.5).
    """

    n_chans: int = 128
    n_times: int = 440
    sfreq: float = 1000.0
    embed_dim: int = 1024

    @property
    def feature_dim(self) -> int:
        """The mean-pooled unit width ``d_model``."""
        return self.d_model

    def validate(self) -> None:
        super().validate()
        self._validate_time()
        self._validate_masked_modelling()
        self._validate_projection()


@dataclass(frozen=True, kw_only=True)
class BrainVisFreqConfig(_ProjectionFields, _FreqFields, EncoderConfig):
    """Configuration of :class:`BrainVisFreqEncoder` (defaults: the reference on EEG-ImageNet).

    Parameters
    ----------
    n_chans, n_times, sfreq, logit_scale, logit_scale_init
        See :class:`EncoderConfig` (defaults here 128 channels, 440 samples, 1000 Hz).
    embed_dim : int
        Output size (128 = ``freq_features``: no projection with ``projection="auto"``).
    lstm_hidden : int
        LSTM hidden size (128).
    freq_features : int
        Size of the Linear + ReLU feature (128).
    projection, proj_dropout
        See :class:`BrainVisTimeConfig`.
    """

    n_chans: int = 128
    n_times: int = 440
    sfreq: float = 1000.0
    embed_dim: int = 128

    @property
    def feature_dim(self) -> int:
        """The frequency feature size ``freq_features``."""
        return self.freq_features

    def validate(self) -> None:
        super().validate()
        self._validate_freq()
        self._validate_projection()


@dataclass(frozen=True, kw_only=True)
class BrainVisConfig(_ProjectionFields, _FreqFields, _TimeFields, EncoderConfig):
    """Configuration of :class:`BrainVisEncoder` (both branches; defaults: the reference on EEG-ImageNet).

    Parameters
    ----------
    n_chans, n_times, sfreq, logit_scale, logit_scale_init
        See :class:`EncoderConfig` (defaults here 128 channels, 440 samples, 1000 Hz).
    embed_dim : int
        Output size (1152 = ``d_model + freq_features``: no projection with ``projection="auto"``; 1024 with
        a projection for CLIP image embeddings).
    wave_length, d_model, n_layers, n_heads, d_ff, dropout, gate_init, unit_padding
        Time branch, see :class:`BrainVisTimeConfig`.
    lstm_hidden, freq_features
        Frequency branch, see :class:`BrainVisFreqConfig`.
    n_classes : int
        Classes of the Linear head on the 1,152-d features (40 on EEG-ImageNet); 0 (default) builds no head.
    projection, proj_dropout
        See :class:`BrainVisTimeConfig`.
    """

    n_chans: int = 128
    n_times: int = 440
    sfreq: float = 1000.0
    embed_dim: int = 1152
    n_classes: int = 0

    @property
    def feature_dim(self) -> int:
        """``d_model + freq_features`` (1,152)."""
        return self.d_model + self.freq_features

    def validate(self) -> None:
        super().validate()
        self._validate_time()
        self._validate_freq()
        check_int_field(self, "n_classes", minimum=0)
        if self.n_classes == 1:
            raise ToolkitError("BrainVisConfig.n_classes must be 0 (no classification head) or at least 2; got 1.")
        self._validate_projection()


_TIME_FIELDS = tuple(f.name for f in dataclasses.fields(_TimeFields))
_FREQ_FIELDS = tuple(f.name for f in dataclasses.fields(_FreqFields))


def _make_projection(config: Any) -> nn.Module:
    kind = config.projection
    if kind == "auto":
        kind = "none" if config.feature_dim == config.embed_dim else "linear"
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(config.feature_dim, config.embed_dim)
    return Projector(config.feature_dim, config.embed_dim, config.proj_dropout)


def _time_backbone(cfg: BrainVisTimeConfig | BrainVisConfig) -> TimeBackbone:
    return TimeBackbone(
        cfg.n_chans,
        cfg.n_units,
        cfg.n_pad,
        cfg.wave_length,
        cfg.d_model,
        cfg.n_layers,
        cfg.n_heads,
        cfg.d_ff,
        cfg.dropout,
        cfg.gate_init,
    )


def _batch_eeg(batch: Any, owner: str) -> torch.Tensor:
    if not isinstance(batch, Mapping) or "eeg" not in batch:
        raise ToolkitError(
            f"{owner}.training_loss needs a batch mapping with an 'eeg' tensor (the trainer's batch dict); got "
            f"{type(batch).__name__}."
        )
    return batch["eeg"]


# --------------------------------------------------------------------------------------------------------------
# Time branch
# --------------------------------------------------------------------------------------------------------------
@dataclass
class LMMOutput:
    """Everything one latent-masked-modelling pass computes (see :meth:`BrainVisTimeEncoder.masked_forward`).

    Attributes
    ----------
    visible, masked : torch.Tensor, shape (n_visible,) and (n_masked,)
        Sorted unit indices (one mask for the whole batch).
    online : torch.Tensor, shape (batch, n_visible, d_model)
        Online-encoder output for the visible units (the only units it sees).
    target : torch.Tensor, shape (batch, n_masked, d_model)
        Momentum-encoder output for the masked units alone (no gradient): ``f_m``.
    predicted : torch.Tensor, shape (batch, n_masked, d_model)
        Regressor prediction of the masked latents: ``f_mp``.
    code_ids : torch.Tensor, shape (batch, n_masked)
        int64 codeword targets ``l_m`` from the codebook on the masked units' projected embeddings.
    code_logits : torch.Tensor, shape (batch, n_masked, n_codes)
        The codebook applied to the predictions: ``p_m`` (logits).
    """

    visible: torch.Tensor
    masked: torch.Tensor
    online: torch.Tensor
    target: torch.Tensor
    predicted: torch.Tensor
    code_ids: torch.Tensor
    code_logits: torch.Tensor


@register_encoder("brainvis-time")
class BrainVisTimeEncoder(EEGEncoder):
    """BrainVis time branch: ``forward(eeg, subject_ids=None) -> eeg_embeds`` (mean over encoded units).

    Parameters
    ----------
    config : BrainVisTimeConfig | None
        The configuration (``None``: the reference on EEG-ImageNet, without the pretraining parts).

    Notes
    -----
    With ``masked_modelling=True`` (LMM pretraining, TimeMAE-style): one random permutation per batch masks
    ``n_masked`` units (shared by all trials); the online encoder sees only the visible units plus their
    positions; the momentum target encoder (an EMA copy of the transformer blocks, held as buffers; the unit
    embedding and the position table are shared, as in TimeMAE) encodes the masked units alone without gradient;
    a cross-attention regressor with a learnable mask token plus positions as queries predicts the masked
    latents; one linear codebook maps the masked units' projected embeddings (before positions) to code ids and
    the predictions to code logits. Loss = ``mse_weight * MSE + ce_weight * CE`` (label smoothing). The target
    encoder always runs in eval mode (no dropout), so targets depend only on the weights.
    """

    config_class = BrainVisTimeConfig
    config: BrainVisTimeConfig

    def __init__(self, config: BrainVisTimeConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.time = _time_backbone(cfg)
        self.projection = _make_projection(cfg)
        self.mask_token: nn.Parameter | None = None
        self.regressor: nn.ModuleList | None = None
        self.codebook: nn.Linear | None = None
        self.target: nn.Module | None = None
        self._momentum_key: tuple | None = None
        if cfg.masked_modelling:
            self.mask_token = nn.Parameter(torch.empty(cfg.d_model))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
            self.regressor = nn.ModuleList(
                GatedBlock(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.gate_init)
                for _ in range(cfg.regressor_layers)
            )
            self.codebook = nn.Linear(cfg.d_model, cfg.n_codes)
            self.target = frozen_copy(self.time.blocks).eval()
            self._momentum_key = self._online_key()

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.projection(self.time(eeg).mean(dim=1))

    def train(self, mode: bool = True) -> BrainVisTimeEncoder:
        """Set training mode; the momentum target encoder stays in eval mode (deterministic targets)."""
        super().train(mode)
        if self.target is not None:
            self.target.eval()
        return self

    # -- masked modelling ----------------------------------------------------------------------------------------
    def _require_lmm(self, what: str) -> None:
        if not self.config.masked_modelling:
            raise ToolkitError(
                f"{what} needs the masked-modelling parts, but this 'brainvis-time' encoder was built with "
                "masked_modelling=False; build it with create_encoder('brainvis-time', masked_modelling=True, ...)."
            )

    def sample_mask(
        self, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one mask for a batch: a random permutation of the units, split into visible and masked.

        Parameters
        ----------
        generator : torch.Generator | None
            Random generator (its device is used to draw); ``None`` uses torch's default one.
        device : torch.device | str | None
            Device of the returned indices (default: the encoder's).

        Returns
        -------
        visible : torch.Tensor, shape (n_units - n_masked,)
            Sorted int64 indices of the visible units.
        masked : torch.Tensor, shape (n_masked,)
            Sorted int64 indices of the masked units.
        """
        cfg = self.config
        device = torch.device(device) if device is not None else self._reference().device
        draw_on = generator.device if generator is not None else device
        perm = torch.randperm(cfg.n_units, generator=generator, device=draw_on).to(device)
        masked, visible = perm[: cfg.n_masked], perm[cfg.n_masked :]
        return visible.sort().values, masked.sort().values

    def _code_ids(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.config.code_sampling == "gumbel":
            # argmax(gumbel_softmax(logits, tau)) == argmax(logits + g) for every tau > 0, with g ~ Gumbel(0, 1)
            # = -log(Exp(1)). Drawn here rather than with F.gumbel_softmax, which takes no generator.
            draw_on = generator.device if generator is not None else logits.device
            exp = torch.empty(logits.shape, device=draw_on, dtype=logits.dtype).exponential_(generator=generator)
            logits = logits - exp.log().to(logits.device)
        return logits.argmax(dim=-1)

    def _masked_forward(self, eeg: torch.Tensor, generator: torch.Generator | None) -> LMMOutput:
        visible, masked = self.sample_mask(generator, eeg.device)
        units = self.time.units(eeg)
        online = self.time.encode(units[:, visible], visible)
        with torch.no_grad():
            target = self.time.encode(units[:, masked], masked, blocks=self.target)
            code_ids = self._code_ids(self.codebook(units[:, masked]), generator)
        queries = (self.mask_token + self.time.positions[masked]).expand(eeg.shape[0], -1, -1)
        for block in self.regressor:
            queries = block(queries, online)
        return LMMOutput(visible, masked, online, target, queries, code_ids, self.codebook(queries))

    def masked_forward(self, eeg: torch.Tensor, generator: torch.Generator | None = None) -> LMMOutput:
        """One latent-masked-modelling pass (no loss): the mask, the online, target and predicted latents, codes.

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            float32 EEG (validated like :meth:`forward`).
        generator : torch.Generator | None
            Generator for the mask and the Gumbel noise (``None``: torch's default one).

        Returns
        -------
        LMMOutput
        """
        self._require_lmm("masked_forward")
        check_encoder_input(eeg, None, self.config, encoder=self.name, reference=self._reference())
        return self._masked_forward(eeg, generator)

    def pretraining_loss(
        self, eeg: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The LMM loss ``mse_weight * MSE(f_m, f_mp) + ce_weight * CE(p_m, l_m)`` on a batch.

        Does not update the momentum encoder: call :meth:`update_momentum` after each optimiser step (the
        :meth:`training_loss` hook does it for the common trainer).

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            float32 EEG.
        generator : torch.Generator | None
            Generator for the mask and the Gumbel noise (``None``: torch's default one).

        Returns
        -------
        loss : torch.Tensor
            Scalar loss (with gradient).
        parts : dict of str to torch.Tensor
            Detached scalars: ``mse``, ``ce``, ``code_accuracy`` (fraction of masked units whose predicted code
            is the target code).
        """
        self._require_lmm("pretraining_loss")
        check_encoder_input(eeg, None, self.config, encoder=self.name, reference=self._reference())
        cfg = self.config
        out = self._masked_forward(eeg, generator)
        mse = F.mse_loss(out.predicted, out.target)
        ce = F.cross_entropy(
            out.code_logits.flatten(0, 1), out.code_ids.flatten(), label_smoothing=cfg.code_label_smoothing
        )
        loss = cfg.mse_weight * mse + cfg.ce_weight * ce
        accuracy = (out.code_logits.detach().argmax(dim=-1) == out.code_ids).float().mean()
        return loss, {"mse": mse.detach(), "ce": ce.detach(), "code_accuracy": accuracy}

    def _online_key(self) -> tuple:
        # Storage and in-place version of every online block weight: an optimiser step (or load_state_dict, .to())
        # changes it, which tells training_loss that an EMA update is due.
        return tuple((p.data_ptr(), p._version) for p in self.time.blocks.parameters())

    @torch.no_grad()
    def update_momentum(self, momentum: float | None = None) -> None:
        """One EMA step of the target encoder: ``target = m * target + (1 - m) * online``.

        Parameters
        ----------
        momentum : float | None
            ``m`` (default: the configuration's ``momentum``, 0.99).
        """
        self._require_lmm("update_momentum")
        m = self.config.momentum if momentum is None else float(momentum)
        if not 0.0 <= m <= 1.0:
            raise ToolkitError(f"momentum must be within [0, 1]; got {momentum!r}.")
        targets = dict(self.target.named_buffers())
        for name, online in self.time.blocks.named_parameters():
            targets[name].lerp_(online.detach().to(targets[name].dtype), 1.0 - m)
        self._momentum_key = self._online_key()

    @torch.no_grad()
    def reset_momentum(self) -> None:
        """Copy the online blocks into the target encoder (done at construction: the start of pretraining)."""
        self.update_momentum(0.0)

    def training_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Trainer hook (objective ``"model"``): the LMM loss of ``batch["eeg"]``, keeping the EMA target in step.

        In training mode with autograd on, an EMA update is applied first if the online weights changed since
        the last one (i.e. once after every optimiser step: the trainer has no post-step hook; ``load_state_dict``
        and ``.to()`` count as a change too, and the EMA step they trigger is the one still pending after a saved
        checkpoint's last optimiser step). In eval mode the mask and noise come from a generator seeded with 0, so
        validation losses are comparable across epochs.

        Parameters
        ----------
        batch : Mapping
            The trainer's batch dict; only ``eeg`` is used.

        Returns
        -------
        dict
            ``loss`` (scalar with gradient) and the detached ``mse``, ``ce``, ``code_accuracy``.
        """
        self._require_lmm("training_loss")
        eeg = _batch_eeg(batch, type(self).__name__)
        generator = None
        if self.training and torch.is_grad_enabled():
            if self._online_key() != self._momentum_key:
                self.update_momentum()
        elif isinstance(eeg, torch.Tensor):
            generator = torch.Generator(device=eeg.device).manual_seed(0)
        loss, parts = self.pretraining_loss(eeg, generator)
        return {"loss": loss, **parts}


# --------------------------------------------------------------------------------------------------------------
# Frequency branch
# --------------------------------------------------------------------------------------------------------------
@register_encoder("brainvis-freq")
class BrainVisFreqEncoder(EEGEncoder):
    """BrainVis frequency branch: ``forward(eeg, subject_ids=None) -> eeg_embeds`` from ``|rFFT|`` via an LSTM.

    Parameters
    ----------
    config : BrainVisFreqConfig | None
        The configuration (``None``: the reference on EEG-ImageNet, 148,608 parameters; with the reference's
        40-way Linear head 153,768 ≈ the paper's 0.1538 M).
    """

    config_class = BrainVisFreqConfig
    config: BrainVisFreqConfig

    def __init__(self, config: BrainVisFreqConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.freq = FreqBackbone(cfg.n_chans, cfg.n_bins, cfg.lstm_hidden, cfg.freq_features)
        self.projection = _make_projection(cfg)

    def spectrum(self, eeg: torch.Tensor) -> torch.Tensor:
        """The LSTM's input: ``|rfft(eeg)|`` bins ``1 … n_bins``, shape ``(batch, n_bins, n_chans)``."""
        check_encoder_input(eeg, None, self.config, encoder=self.name, reference=self._reference())
        return magnitude_spectrum(eeg, self.config.n_bins)

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.projection(self.freq(eeg))


# --------------------------------------------------------------------------------------------------------------
# Unified time-frequency encoder
# --------------------------------------------------------------------------------------------------------------
@register_encoder("brainvis")
class BrainVisEncoder(EEGEncoder):
    """BrainVis time-frequency encoder: ``forward(eeg, subject_ids=None) -> eeg_embeds`` from 1,152-d features.

    Parameters
    ----------
    config : BrainVisConfig | None
        The configuration (``None``: the reference on EEG-ImageNet, no classification head).
    """

    config_class = BrainVisConfig
    config: BrainVisConfig

    def __init__(self, config: BrainVisConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.time = _time_backbone(cfg)
        self.freq = FreqBackbone(cfg.n_chans, cfg.n_bins, cfg.lstm_hidden, cfg.freq_features)
        self.head = nn.Linear(cfg.feature_dim, cfg.n_classes) if cfg.n_classes else None
        self.projection = _make_projection(cfg)

    def _features(self, eeg: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.time(eeg).mean(dim=1), self.freq(eeg)], dim=-1)

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.projection(self._features(eeg))

    def features(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The concatenated features before the projection: ``(batch, d_model + freq_features)`` (1,152).

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            float32 EEG.
        subject_ids : torch.Tensor | None, shape (batch,)
            Validated and ignored (BrainVis has no subject-specific parts).
        """
        check_encoder_input(eeg, subject_ids, self.config, encoder=self.name, reference=self._reference())
        return self._features(eeg)

    def classify(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits ``(batch, n_classes)`` of the Linear head on the 1,152-d features.

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            float32 EEG.
        subject_ids : torch.Tensor | None, shape (batch,)
            Validated and ignored.
        """
        if self.head is None:
            raise ToolkitError(
                "This 'brainvis' encoder has no classification head (n_classes=0); build it with n_classes=<number "
                "of classes>."
            )
        return self.head(self.features(eeg, subject_ids))

    def training_loss(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Trainer hook (objective ``"model"``): cross-entropy of :meth:`classify` against ``batch["labels"]``.

        This is the reference's unified ("TFE") fine-tuning with the encoder's own head; the trainer's
        ``"classification"`` objective instead trains a separate head on the (projected) embeddings.
        """
        eeg = _batch_eeg(batch, type(self).__name__)
        labels = batch.get("labels")
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.ndim != 1:
            raise ToolkitError(
                "BrainVisEncoder.training_loss needs integer class labels of shape (batch,) in the batch's 'labels'."
            )
        logits = self.classify(eeg)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.config.n_classes):
            raise ToolkitError(
                f"labels must lie in [0, {self.config.n_classes}) for this encoder's n_classes="
                f"{self.config.n_classes}; got values from {int(labels.min())} to {int(labels.max())}."
            )
        return F.cross_entropy(logits, labels.to(logits.device))

    @classmethod
    def from_branches(
        cls, time_encoder: BrainVisTimeEncoder, freq_encoder: BrainVisFreqEncoder, **changes: Any
    ) -> BrainVisEncoder:
        """Combine a (pretrained / fine-tuned) time branch and frequency branch into one encoder.

        The branch weights are copied (the time encoder's LMM parts and both branches' projections are not
        used); the new head and projection are freshly initialised.

        Parameters
        ----------
        time_encoder : BrainVisTimeEncoder
            Source of the time branch.
        freq_encoder : BrainVisFreqEncoder
            Source of the frequency branch; same ``n_chans`` and ``n_times``.
        **changes
            Other :class:`BrainVisConfig` fields (``n_classes``, ``embed_dim``, ``projection``, ...); branch
            architecture fields come from the branches and cannot be changed here. ``embed_dim`` defaults to the
            feature size (no projection).

        Returns
        -------
        BrainVisEncoder
            On the time encoder's device and dtype, in training mode.
        """
        if not isinstance(time_encoder, BrainVisTimeEncoder) or not isinstance(freq_encoder, BrainVisFreqEncoder):
            raise ToolkitError(
                "from_branches needs a 'brainvis-time' and a 'brainvis-freq' encoder; got "
                f"{type(time_encoder).__name__} and {type(freq_encoder).__name__}."
            )
        tc, fc = time_encoder.config, freq_encoder.config
        if (tc.n_chans, tc.n_times) != (fc.n_chans, fc.n_times):
            raise ToolkitError(
                f"The time branch expects {tc.n_chans} x {tc.n_times} but the frequency branch {fc.n_chans} x "
                f"{fc.n_times}; combine branches trained on the same data geometry."
            )
        fixed = sorted(set(changes) & {*_TIME_FIELDS, *_FREQ_FIELDS, "n_chans", "n_times"})
        if fixed:
            raise ToolkitError(
                f"from_branches takes {', '.join(fixed)} from the branches; leave them out of the changes."
            )
        fields: dict[str, Any] = {"n_chans": tc.n_chans, "n_times": tc.n_times, "sfreq": tc.sfreq}
        fields.update({name: getattr(tc, name) for name in _TIME_FIELDS})
        fields.update({name: getattr(fc, name) for name in _FREQ_FIELDS})
        fields["embed_dim"] = tc.d_model + fc.freq_features  # the features themselves unless asked otherwise
        fields.update(changes)
        model = cls(BrainVisConfig.from_dict(fields, source="from_branches()"))
        model.time.load_state_dict(time_encoder.time.state_dict())
        model.freq.load_state_dict(freq_encoder.freq.state_dict())
        reference = time_encoder._reference()
        return model.to(device=reference.device, dtype=reference.dtype).train()


# --------------------------------------------------------------------------------------------------------------
# Alignment to CLIP text hidden states (semantic interpolation)
# --------------------------------------------------------------------------------------------------------------
class AlignHead(nn.Module):
    """Residual tanh MLP to ``n_tokens x token_dim`` (BRAINVIS.md §5.2), widths ``(wide, narrow)``.

    ``h1 = tanh(W1 x)`` (wide), ``h2 = tanh(W2 h1)`` (narrow), ``h3 = tanh(W3 h2 + h1)``, ``h4 = tanh(W4 h3 +
    h2)``, ``h5 = tanh(W5 h4 + h3)``, output ``W6 h5`` reshaped to ``(n_tokens, token_dim)``.
    """

    def __init__(self, in_features: int, widths: tuple[int, int], n_tokens: int, token_dim: int) -> None:
        super().__init__()
        wide, narrow = widths
        self.n_tokens, self.token_dim = n_tokens, token_dim
        self.fc1 = nn.Linear(in_features, wide)
        self.fc2 = nn.Linear(wide, narrow)
        self.fc3 = nn.Linear(narrow, wide)
        self.fc4 = nn.Linear(wide, narrow)
        self.fc5 = nn.Linear(narrow, wide)
        self.out = nn.Linear(wide, n_tokens * token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_features)`` → ``(batch, n_tokens, token_dim)``."""
        h1 = torch.tanh(self.fc1(x))
        h2 = torch.tanh(self.fc2(h1))
        h3 = torch.tanh(self.fc3(h2) + h1)
        h4 = torch.tanh(self.fc4(h3) + h2)
        h5 = torch.tanh(self.fc5(h4) + h3)
        return self.out(h5).view(x.shape[0], self.n_tokens, self.token_dim)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ToolkitError(f"BrainVisAlignNet {name} must be a positive integer; got {value!r}.")
    return value


class BrainVisAlignNet(nn.Module):
    """EEG → CLIP text hidden states: a :class:`BrainVisEncoder` plus the residual tanh :class:`AlignHead`.

    The head's input is ``concat(features, class logits)`` (1,152 + 40 = 1,192 in the reference) or the features
    alone when the encoder has no head. The whole encoder is trained with the head (as in the reference).

    Parameters
    ----------
    encoder : BrainVisEncoder
        The time-frequency encoder (usually fine-tuned with ``n_classes``).
    n_tokens : int
        Output tokens (77, CLIP's text length).
    token_dim : int
        Token width (768, CLIP ViT-L/14 text hidden size; SD-1.5 conditioning).
    widths : tuple of int
        ``(wide, narrow)`` hidden widths ((4096, 1024); the last layer alone then has 4096 x 59,136 weights).
    """

    def __init__(
        self,
        encoder: BrainVisEncoder,
        *,
        n_tokens: int = 77,
        token_dim: int = 768,
        widths: Sequence[int] = (4096, 1024),
    ) -> None:
        super().__init__()
        if not isinstance(encoder, BrainVisEncoder):
            raise ToolkitError(f"BrainVisAlignNet needs a 'brainvis' encoder; got {type(encoder).__name__}.")
        if not isinstance(widths, Sequence) or isinstance(widths, str) or len(widths) != 2:
            raise ToolkitError(f"BrainVisAlignNet widths must be two integers (wide, narrow); got {widths!r}.")
        self.n_tokens = _positive_int(n_tokens, "n_tokens")
        self.token_dim = _positive_int(token_dim, "token_dim")
        self.widths = (_positive_int(widths[0], "widths[0]"), _positive_int(widths[1], "widths[1]"))
        self.encoder = encoder
        in_features = encoder.config.feature_dim + encoder.config.n_classes
        self.head = AlignHead(in_features, self.widths, self.n_tokens, self.token_dim)
        reference = encoder._reference()
        self.head.to(device=reference.device, dtype=reference.dtype)

    def head_inputs(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``concat(features, class logits)`` (or the features alone without a head), ``(batch, in_features)``."""
        features = self.encoder.features(eeg, subject_ids)
        if self.encoder.head is None:
            return features
        return torch.cat([features, self.encoder.head(features)], dim=-1)

    def forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Predict CLIP text hidden states ``(batch, n_tokens, token_dim)`` from EEG ``(batch, n_chans, n_times)``."""
        return self.head(self.head_inputs(eeg, subject_ids))

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the encoder (``encoder/``), ``align_config.json`` and ``align_head.safetensors`` (each atomic)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ToolkitError(f"save_pretrained needs a directory but {directory} is a file; pick another path.")
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory / ALIGN_ENCODER_DIR)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.head.state_dict().items()}
        with atomic_path(directory / ALIGN_WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "toolkit_version": __version__})
        atomic_write_json(
            directory / ALIGN_CONFIG_NAME,
            {
                "toolkit_version": __version__,
                "n_tokens": self.n_tokens,
                "token_dim": self.token_dim,
                "widths": list(self.widths),
            },
        )
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BrainVisAlignNet:
        """Load a model saved with :meth:`save_pretrained` (in eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / ALIGN_CONFIG_NAME, directory / ALIGN_WEIGHTS_NAME
        for path in (config_path, weights_path, directory / ALIGN_ENCODER_DIR / "config.json"):
            if not path.is_file():
                raise ToolkitError(f"{path} is missing; the folder does not hold a BrainVisAlignNet save_pretrained.")
        encoder = BrainVisEncoder.from_pretrained(directory / ALIGN_ENCODER_DIR)
        try:
            meta = json.loads(config_path.read_text(encoding="utf-8"))
            kwargs = {"n_tokens": meta["n_tokens"], "token_dim": meta["token_dim"], "widths": meta["widths"]}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ToolkitError(
                f"{config_path} is not a valid BrainVisAlignNet configuration ({err}); re-save the model."
            ) from err
        model = cls(encoder, **kwargs)
        try:
            state = load_file(str(weights_path))
        except (OSError, SafetensorError) as err:
            raise ToolkitError(
                f"{weights_path} is not a readable safetensors file ({err}); re-save the model."
            ) from err
        check_state_dict(model.head, state, source=str(weights_path), what="BrainVisAlignNet head")
        model.head.load_state_dict(state)
        return model.eval()


def brainvis_alignment_loss(
    pred: torch.Tensor, label_embeds: torch.Tensor, caption_embeds: torch.Tensor | None = None
) -> torch.Tensor:
    """Semantic-interpolation loss: ``Σ over targets [(1 − cos(pred, t)) + MSE(pred, t)]``, batch-averaged.

    The cosine is taken on the flattened ``n_tokens * token_dim`` vectors (BRAINVIS.md §5.3); equal pull toward
    the coarse class-phrase and the fine caption embeddings places the optimum between them.

    Parameters
    ----------
    pred : torch.Tensor, shape (batch, n_tokens, token_dim)
        Predicted CLIP text hidden states.
    label_embeds : torch.Tensor, shape (batch, n_tokens, token_dim)
        Hidden states of the class phrase (``c_label``).
    caption_embeds : torch.Tensor | None, shape (batch, n_tokens, token_dim)
        Hidden states of the image caption (``c_cap``); ``None`` uses the label target only.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    if not isinstance(pred, torch.Tensor) or pred.ndim < 2:
        raise ToolkitError(f"pred must be a tensor of shape (batch, n_tokens, token_dim); got {type(pred).__name__}.")
    total = pred.new_zeros(())
    for name, target in (("label_embeds", label_embeds), ("caption_embeds", caption_embeds)):
        if target is None and name == "caption_embeds":
            continue
        if not isinstance(target, torch.Tensor) or target.shape != pred.shape:
            shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
            raise ToolkitError(f"{name} must have the shape of pred {tuple(pred.shape)}; got {shape}.")
        target = target.to(device=pred.device, dtype=pred.dtype)
        cosine = F.cosine_similarity(pred.flatten(1), target.flatten(1), dim=1).mean()
        total = total + (1.0 - cosine) + F.mse_loss(pred, target)
    return total
