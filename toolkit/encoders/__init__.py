"""EEG encoders: one base class and registry; ATM-S and NICE (more architectures register here).

Every encoder maps float32 EEG ``(batch, n_chans, n_times)`` (and optional int64 ``subject_ids``) to
``eeg_embeds`` ``(batch, embed_dim)``, not normalised::

    from toolkit.encoders import create_encoder, list_encoders

    encoder = create_encoder("atm-s", n_chans=63, n_times=250)
    encoder.save_pretrained("my-encoder")
    encoder = EEGEncoder.from_pretrained("my-encoder")

Importing this package imports torch (but nothing heavier).
"""

from __future__ import annotations

from . import atm_e, baselines  # noqa: F401  (importing them registers their encoders)
from ._parity import (
    REFERENCE_IGNORED_KEYS,
    REFERENCE_RECOMPUTED_KEYS,
    convert_reference_state_dict,
    load_reference_atms,
)
from .atm import ATMSConfig, ATMSEncoder, FusedATMS
from .base import (
    EEGEncoder,
    EncoderConfig,
    FusedEncoder,
    LogitScale,
    create_encoder,
    get_encoder_class,
    list_encoders,
    register_encoder,
)
from .brainvis import (
    BrainVisAlignNet,
    BrainVisConfig,
    BrainVisEncoder,
    BrainVisFreqConfig,
    BrainVisFreqEncoder,
    BrainVisTimeConfig,
    BrainVisTimeEncoder,
    LMMOutput,
    brainvis_alignment_loss,
)
from .nice import FusedNICE, NICEConfig, NICEEncoder

__all__ = [
    "REFERENCE_IGNORED_KEYS",
    "REFERENCE_RECOMPUTED_KEYS",
    "ATMSConfig",
    "ATMSEncoder",
    "BrainVisAlignNet",
    "BrainVisConfig",
    "BrainVisEncoder",
    "BrainVisFreqConfig",
    "BrainVisFreqEncoder",
    "BrainVisTimeConfig",
    "BrainVisTimeEncoder",
    "EEGEncoder",
    "EncoderConfig",
    "FusedATMS",
    "FusedEncoder",
    "FusedNICE",
    "LMMOutput",
    "LogitScale",
    "NICEConfig",
    "NICEEncoder",
    "brainvis_alignment_loss",
    "convert_reference_state_dict",
    "create_encoder",
    "get_encoder_class",
    "list_encoders",
    "load_reference_atms",
    "register_encoder",
]
