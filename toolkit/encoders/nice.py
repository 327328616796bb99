"""NICE (Song et al., ICLR 2024): TSConv + MLP projector on raw EEG, no attention (reference sheet ATM.md §3.5).

For EEG ``(batch, n_chans, n_times)`` the temporal convolution runs along time, the spatial convolution mixes
all channels, and the projector maps the flattened ``n_filters * n_positions`` features (1,440 for 63 x 250) to
``embed_dim``. It shares :class:`~toolkit.encoders._layers.TSConv` and the projector (and their eval-mode folding)
with ATM-S. NICE has no subject-specific part: ``subject_ids`` are validated and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._layers import FoldedHead, Projector, TSConv, check_tsconv_geometry
from .base import EEGEncoder, EncoderConfig, FusedEncoder, check_float_field, check_int_field, register_encoder


@dataclass(frozen=True, kw_only=True)
class NICEConfig(EncoderConfig):
    """Configuration of :class:`NICEEncoder` (defaults: the ATM repository's NICE baseline).

    Parameters
    ----------
    n_chans, n_times, sfreq, embed_dim, logit_scale, logit_scale_init
        See :class:`EncoderConfig` (defaults 63, 250, 250 Hz, 1024, ``"raw"``, ``log(1/0.07)``).
    n_filters, temporal_kernel, pool_kernel, pool_stride : int
        TSConv geometry (40, 25, 51, 5).
    tsconv_dropout : float
        Dropout inside TSConv (0.5).
    proj_dropout : float
        Dropout inside the projector's residual block (0.5).
    """

    n_filters: int = 40
    temporal_kernel: int = 25
    pool_kernel: int = 51
    pool_stride: int = 5
    tsconv_dropout: float = 0.5
    proj_dropout: float = 0.5

    def validate(self) -> None:
        super().validate()
        for name in ("n_filters", "temporal_kernel", "pool_kernel", "pool_stride"):
            check_int_field(self, name, minimum=1)
        for name in ("tsconv_dropout", "proj_dropout"):
            check_float_field(self, name, low=0.0, high=1.0)
        check_tsconv_geometry("NICEConfig", self.n_times, self.temporal_kernel, self.pool_kernel)


@register_encoder("nice")
class NICEEncoder(EEGEncoder):
    """NICE EEG encoder: ``forward(eeg, subject_ids=None) -> eeg_embeds`` ``(batch, embed_dim)``, not normalised.

    Parameters
    ----------
    config : NICEConfig | None
        The configuration (``None``: THINGS-EEG defaults).
    """

    config_class = NICEConfig
    config: NICEConfig

    def __init__(self, config: NICEConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.tsconv = TSConv(
            cfg.n_chans,
            cfg.n_times,
            n_filters=cfg.n_filters,
            temporal_kernel=cfg.temporal_kernel,
            pool_kernel=cfg.pool_kernel,
            pool_stride=cfg.pool_stride,
            dropout=cfg.tsconv_dropout,
        )
        self.projector = Projector(self.tsconv.out_features, cfg.embed_dim, cfg.proj_dropout)

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.projector(self.tsconv(eeg))

    def _build_fused(self) -> FusedNICE:
        return FusedNICE(self)


class FusedNICE(FusedEncoder):
    """Inference-only NICE: TSConv and projector folded into :class:`FoldedHead` matrices."""

    @torch.no_grad()  # snapshots of the weights, never part of an autograd graph
    def __init__(self, encoder: NICEEncoder) -> None:
        super().__init__(encoder.config, encoder.name)
        self.head = FoldedHead(encoder.tsconv, encoder.projector)

    def run(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        return self.head(eeg)
