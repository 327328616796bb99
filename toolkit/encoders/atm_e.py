"""ATM-E: ATM-S's channel-attention front end with braindecode's EEGNet as the temporal-spatial module.

ATM.md §3.4: the same model as ATM-S with braindecode EEGNetv4 (F1 8, D 20, F2 160, kernel_length 4, drop 0.25)
in place of TSConv; EEGNet's classifier convolution produces the features (1,440 in the reference) that the ATM-S
projector maps to the embedding. For EEG ``(batch, n_chans, n_times)``:

1. the ATM-S front end, built from ``atm.py``'s parts (value embedding, optional sinusoidal positional encoding
   over channels, the prepended subject token with its shared-token fallback, :class:`ChannelAttentionLayer`
   layers, the final LayerNorm and the token slice), with the same parameter names as :class:`ATMSEncoder`, so an
   ATM-S checkpoint's front end loads into ATM-E by key;
2. braindecode ``EEGNet`` over the kept tokens: ``n_chans`` = tokens kept (63), ``n_times`` = token width (250),
   ``n_outputs`` = :attr:`ATMEConfig.eegnet_outputs`; its output is used raw (the reference's braindecode 0.8
   applied a log-softmax here, ATM.md §12.2);
3. the ATM-S :class:`~toolkit.encoders._layers.Projector` (Linear, GELU residual block, LayerNorm).

The reference hard-coded EEGNet's width as 1,440 so that ATM-S's projector could be reused; here it is derived the
same way (the flatten size ATM-S's TSConv has for the token width: 1,440 for 250, 1,040 for 201) unless set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ToolkitError
from ._layers import Projector, tsconv_positions
from .atm import (
    POSITIONAL_ENCODINGS,
    SUBJECT_FALLBACKS,
    TOKEN_SLICES,
    ATMSConfig,
    ChannelAttentionFrontEnd,
)
from .base import (
    EEGEncoder,
    EncoderConfig,
    check_choice_field,
    check_float_field,
    check_int_field,
    register_encoder,
)
from .baselines import EEGNetFields, build_braindecode_model

# ATM-S's TSConv geometry (its configuration defaults), from which the reference's 1,440 follows.
_ATMS_TSCONV = ATMSConfig.__dataclass_fields__


def atms_flatten_size(width: int) -> int:
    """The flatten size of ATM-S's default TSConv over tokens of ``width`` features (0 if it does not fit)."""
    n_filters = _ATMS_TSCONV["n_filters"].default
    positions = tsconv_positions(
        width,
        _ATMS_TSCONV["temporal_kernel"].default,
        _ATMS_TSCONV["pool_kernel"].default,
        _ATMS_TSCONV["pool_stride"].default,
    )
    return n_filters * max(positions, 0)


@dataclass(frozen=True, kw_only=True)
class ATMEConfig(EEGNetFields, EncoderConfig):
    """Configuration of :class:`ATMEEncoder` (defaults: the ATM repository's ATM-E on THINGS-EEG).

    Parameters
    ----------
    n_chans, n_times, sfreq, embed_dim, logit_scale, logit_scale_init
        See :class:`EncoderConfig` (defaults 63, 250, 250 Hz, 1024, ``"raw"``, ``log(1/0.07)``).
    d_model, n_heads, d_ff, n_layers, dropout, n_subjects, subject_fallback, positional_encoding, token_slice
        The channel-attention front end, as in :class:`~toolkit.encoders.ATMSConfig` (defaults ``None`` (=
        ``n_times``), 4, 256, 1, 0.25, 10, ``"batch"``, ``"sinusoidal"``, ``"reference"``).
    F1, D, F2, kernel_length, depthwise_kernel_length, pool1_kernel_size, pool2_kernel_size, pool_mode, drop_prob
        EEGNet's settings (see :class:`~toolkit.encoders.baselines.EEGNetFields`; defaults 8, 20, 160, 4, 16, 4,
        8, ``"mean"``, 0.25). EEGNet runs over the kept tokens (rows) and the token width (its "time" axis).
    eegnet_n_outputs : int | None
        Width of EEGNet's output, the projector's input. ``None`` derives it as the reference chose it: the
        flatten size of ATM-S's TSConv on the same token width (1,440 for 250, 1,040 for 201); token widths
        under 75 have no such size and need an explicit value.
    proj_dropout : float
        Dropout inside the projector's residual block (0.5).
    """

    d_model: int | None = None
    n_heads: int = 4
    d_ff: int = 256
    n_layers: int = 1
    dropout: float = 0.25
    n_subjects: int = 10
    subject_fallback: str = "batch"
    positional_encoding: str = "sinusoidal"
    token_slice: str = "reference"
    eegnet_n_outputs: int | None = None
    proj_dropout: float = 0.5

    def validate(self) -> None:
        super().validate()
        if self.d_model is not None:
            check_int_field(self, "d_model", minimum=1)
        for name in ("n_heads", "d_ff", "n_layers"):
            check_int_field(self, name, minimum=1)
        check_int_field(self, "n_subjects", minimum=0)
        for name in ("dropout", "proj_dropout"):
            check_float_field(self, name, low=0.0, high=1.0)
        check_choice_field(self, "subject_fallback", SUBJECT_FALLBACKS)
        check_choice_field(self, "positional_encoding", POSITIONAL_ENCODINGS)
        check_choice_field(self, "token_slice", TOKEN_SLICES)
        if self.width < self.n_heads:
            raise ToolkitError(
                f"ATMEConfig: d_model={self.width} is smaller than n_heads={self.n_heads}; each head needs at least "
                "one feature."
            )
        self._validate_eegnet()
        if self.eegnet_length(self.width) < 1:
            raise ToolkitError(
                f"ATMEConfig: the token width d_model={self.width} is too short for EEGNet's kernels and pools (it "
                f"needs at least {self.eegnet_min_times()}); raise d_model (or n_times) or lower kernel_length, "
                "pool1_kernel_size or pool2_kernel_size."
            )
        if self.eegnet_n_outputs is not None:
            check_int_field(self, "eegnet_n_outputs", minimum=1)
        elif atms_flatten_size(self.width) < 1:
            raise ToolkitError(
                f"ATMEConfig: eegnet_n_outputs=None derives EEGNet's width from ATM-S's TSConv, which needs a token "
                f"width of at least 75, but d_model={self.width}; set eegnet_n_outputs explicitly."
            )

    @property
    def width(self) -> int:
        """The token width ``d_model`` (``n_times`` when ``d_model`` is ``None``)."""
        return self.n_times if self.d_model is None else self.d_model

    @property
    def n_tokens_kept(self) -> int:
        """Tokens passed to EEGNet (``n_chans`` with the reference slice, ``n_chans + 1`` with ``"all"``)."""
        return self.n_chans if self.token_slice == "reference" else self.n_chans + 1

    @property
    def eegnet_outputs(self) -> int:
        """EEGNet's output width (``eegnet_n_outputs``, or the derived 1,440 for a token width of 250)."""
        return self.eegnet_n_outputs if self.eegnet_n_outputs is not None else atms_flatten_size(self.width)


@register_encoder("atm-e")
class ATMEEncoder(ChannelAttentionFrontEnd, EEGEncoder):
    """ATM-E EEG encoder: ``forward(eeg, subject_ids=None) -> eeg_embeds`` ``(batch, embed_dim)``, not normalised.

    Parameters
    ----------
    config : ATMEConfig | None
        The configuration (``None``: THINGS-EEG defaults).

    Notes
    -----
    Parameter names of the front end (``value_embedding``, ``subject_embedding``, ``shared_token``, ``layers``,
    ``norm``) are those of :class:`~toolkit.encoders.ATMSEncoder`; EEGNet is the submodule ``eegnet`` (keys
    ``eegnet.<braindecode name>``) and the projector ``projector``. There is no folded inference path.
    """

    config_class = ATMEConfig
    config: ATMEConfig

    def __init__(self, config: ATMEConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        d = cfg.width
        self._build_front_end()  # ATM-S's front end, under the same parameter names
        # Temporal-spatial module: braindecode's EEGNet over (tokens kept) x (token width).
        self.eegnet = build_braindecode_model(
            "EEGNet",
            owner=self.name,
            n_chans=cfg.n_tokens_kept,
            n_times=d,
            n_outputs=cfg.eegnet_outputs,
            **cfg.eegnet_kwargs(),
        )
        self.projector = Projector(cfg.eegnet_outputs, cfg.embed_dim, cfg.proj_dropout)

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.projector(self.eegnet(self.front_end(eeg, subject_ids)))
