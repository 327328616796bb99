"""The braindecode baselines (eegnet, shallow, conformer, atcnet) and ATM-E: THINGS-EEG geometry, raw embeddings,
reference settings and parameter counts, minimum lengths, and ATM-E's reuse of the ATM-S front end.

The generic behaviour (validation, save/load, gradients at a tiny size, registry) is covered for these encoders by
``test_encoders_contract.py``, whose ``TINY`` table holds their small configurations.
"""

from __future__ import annotations

import sys
import warnings
from functools import cache

import pytest
import torch

from toolkit import ToolkitError
from toolkit.encoders import EEGEncoder, create_encoder, get_encoder_class
from toolkit.encoders._layers import Projector
from toolkit.encoders.atm import ChannelAttentionLayer
from toolkit.encoders.atm_e import ATMEConfig, ATMEEncoder
from toolkit.encoders.baselines import (
    ATCNetConfig,
    ATCNetEncoder,
    ConformerConfig,
    ConformerEncoder,
    EEGNetConfig,
    EEGNetEncoder,
    ShallowConfig,
    ShallowEncoder,
    braindecode_model_class,
)

BASELINES = {
    # name: (encoder class, braindecode class, parameters for 63 x 250 -> 1024, minimum n_times)
    # EEGNet: the reference notebooks printed 1,186,833 = these 1,186,832 + the logit scale (kept in the loss here).
    "eegnet": (EEGNetEncoder, "EEGNet", 1_186_832, 27),
    "shallow": (ShallowEncoder, "ShallowFBCSPNet", 886_844, 44),
    "conformer": (ConformerEncoder, "EEGConformer", 635_272, 34),
    "atcnet": (ATCNetEncoder, "ATCNet", 114_792, 132),
}
# ATM-E: ATM-S's front end (444,500) + EEGNet with 1,440 outputs (1,653,168) + the ATM-S projector (2,527,232).
THINGS_PARAMETERS = {**{name: row[2] for name, row in BASELINES.items()}, "atm-e": 4_624_900}
THINGS = list(THINGS_PARAMETERS)

# torch notes once that ATCNet's even 'same'-padded kernels need a padded copy; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


@cache
def _things(name: str) -> EEGEncoder:
    """A seeded default (THINGS-EEG, 63 x 250 at 250 Hz -> 1024) encoder, built once per test session."""
    torch.manual_seed(0)
    return create_encoder(name)


def _eeg(batch: int = 2, n_chans: int = 63, n_times: int = 250, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n_chans, n_times, generator=torch.Generator().manual_seed(seed))


def test_registered_under_their_names():
    for name, (cls, bd_name, _, _) in BASELINES.items():
        assert get_encoder_class(name) is cls and cls.braindecode_class == bd_name
        assert type(_things(name).model) is braindecode_model_class(bd_name)
    assert get_encoder_class("atm-e") is ATMEEncoder


@pytest.mark.parametrize("name", THINGS)
def test_things_geometry_gives_raw_embeddings(name):
    encoder = _things(name)
    assert not any(isinstance(m, (torch.nn.LogSoftmax, torch.nn.Softmax)) for m in encoder.modules())
    eeg = _eeg()
    for mode in ("train", "eval"):
        getattr(encoder, mode)()
        with torch.no_grad():
            out = encoder(eeg, torch.tensor([1, 2]))
        assert out.shape == (2, 1024) and out.dtype == torch.float32 and torch.isfinite(out).all()
        # Not log-probabilities: exp() rows do not sum to 1 and the values are not all <= 0.
        assert not torch.allclose(out.exp().sum(-1), torch.ones(2), rtol=1e-2)
        assert (out > 0).any()
        assert out.std() > 0 and not torch.allclose(out[0], out[1])
    encoder.train()


@pytest.mark.parametrize("name", THINGS)
def test_parameter_counts(name):
    assert _things(name).n_parameters() == THINGS_PARAMETERS[name]


@pytest.mark.parametrize("name", THINGS)
def test_gradients_flow_at_things_geometry(name):
    encoder = _things(name).train()
    eeg = _eeg().requires_grad_(True)
    target = torch.randn(2, 1024, generator=torch.Generator().manual_seed(1))
    try:
        # Known subjects and unknown ones (None), so ATM-E's subject table and shared token both take part.
        ((encoder(eeg, torch.tensor([1, 2])) + encoder(eeg, None)) * target).sum().backward()
        assert eeg.grad is not None and eeg.grad.abs().sum() > 0
        for param_name, param in encoder.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), param_name
    finally:
        encoder.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", THINGS)
def test_save_load_identical_outputs_at_things_geometry(name, tmp_path):
    encoder = _things(name).eval()
    loaded = EEGEncoder.from_pretrained(encoder.save_pretrained(tmp_path / name))
    assert type(loaded) is type(encoder) and loaded.config == encoder.config
    eeg = _eeg(batch=3, seed=4)
    with torch.no_grad():
        assert torch.equal(loaded(eeg), encoder(eeg))
    encoder.train()


@pytest.mark.parametrize("name", list(BASELINES))
def test_minimum_length_is_enforced_and_tight(name):
    cls, bd_name, _, minimum = BASELINES[name]
    config_class = cls.config_class
    assert config_class(n_chans=4, n_times=300).min_n_times == minimum
    torch.manual_seed(0)
    encoder = create_encoder(name, n_chans=4, n_times=minimum, sfreq=100.0, embed_dim=8).eval()
    with torch.no_grad():
        assert encoder(_eeg(n_chans=4, n_times=minimum)).shape == (2, 8)
    with pytest.raises(ToolkitError, match=rf"n_times={minimum - 1} is too short .* at least {minimum} samples"):
        create_encoder(name, n_chans=4, n_times=minimum - 1, embed_dim=8)
    # One sample fewer really is too short for braindecode itself: it fails, or (ATCNet) rescales its kernels.
    kwargs = dict(n_chans=4, n_times=minimum - 1, n_outputs=8, **encoder.config.braindecode_kwargs())
    model_class = braindecode_model_class(bd_name)
    if name == "atcnet":
        with pytest.warns(UserWarning, match="smaller than the minimum"):
            model_class(**kwargs)
    else:
        with pytest.raises((ValueError, RuntimeError)), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model_class(**kwargs)(_eeg(n_chans=4, n_times=minimum - 1))


def test_braindecode_models_get_the_reference_settings():
    eegnet = _things("eegnet").model
    assert (eegnet.F1, eegnet.D, eegnet.F2, eegnet.kernel_length, eegnet.pool_mode) == (8, 20, 160, 4, "mean")
    assert eegnet.drop_1.p == eegnet.drop_2.p == 0.25
    assert eegnet.conv_temporal.kernel_size == (1, 4) and eegnet.conv_separable_depth.kernel_size == (1, 16)
    # 251 -> pool 4 -> 62 -> depthwise -> 63 -> pool 8 -> 7 positions: the classifier spans all of them.
    assert eegnet.final_layer.conv_classifier.kernel_size == (1, 7)

    shallow = _things("shallow").model
    assert (shallow.n_filters_time, shallow.filter_time_length, shallow.n_filters_spat) == (20, 20, 20)
    assert shallow.pool.kernel_size == (25, 1) and shallow.pool.stride == (5, 1) and shallow.pool_mode == "mean"
    assert shallow.drop.p == 0.5 and shallow.batch_norm

    conformer = _things("conformer").model
    assert conformer.final_fc_length == ConformerConfig().final_fc_length == 1760  # derived, not hard-coded
    assert len(conformer.transformer) == 2
    assert ConformerConfig(n_times=500).final_fc_length == 40 * 94

    atcnet = _things("atcnet").model
    assert (atcnet.conv_block_n_filters, atcnet.conv_block_kernel_length_1, atcnet.conv_block_kernel_length_2) == (
        8,
        32,
        8,
    )
    assert (atcnet.conv_block_pool_size_1, atcnet.conv_block_pool_size_2, atcnet.n_windows) == (4, 3, 5)
    assert (atcnet.head_dim, atcnet.num_heads, atcnet.tcn_depth, atcnet.tcn_kernel_size) == (4, 2, 2, 4)
    assert atcnet.tcn_n_filters == 16 and atcnet.max_norm_const == 0.25 and not atcnet.concat


def test_building_is_quiet_about_braindecode_internals():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_encoder("eegnet", n_chans=4, n_times=64, embed_dim=8)
    assert not [w for w in caught if "final_layer_with_constraint" in str(w.message)]


def test_baselines_ignore_subject_ids():
    torch.manual_seed(0)
    encoder = create_encoder("shallow", n_chans=4, n_times=64, embed_dim=8).eval()
    eeg = _eeg(n_chans=4, n_times=64)
    with torch.no_grad():
        assert torch.equal(encoder(eeg, torch.tensor([1, 7])), encoder(eeg))


@pytest.mark.parametrize(
    ("name", "changes", "match"),
    [
        ("eegnet", dict(pool_mode="median"), "pool_mode must be one of 'mean', 'max'"),
        ("eegnet", dict(F2=0), "F2 must be an integer >= 1"),
        ("shallow", dict(batch_norm="yes"), "batch_norm must be True or False"),
        ("conformer", dict(num_heads=3), "num_heads=3 must divide n_filters_time=40"),
        ("conformer", dict(att_drop_prob=1.5), "att_drop_prob must be a finite number >= 0.0 and <= 1.0"),
        ("atcnet", dict(tcn_kernel_size=1), "tcn_kernel_size must be an integer >= 2"),
        ("atcnet", dict(max_norm_const=0), "max_norm_const must be a finite number > 0.0"),
        ("atm-e", dict(n_times=60), "eegnet_n_outputs=None derives .* set eegnet_n_outputs explicitly"),
        ("atm-e", dict(n_times=20, eegnet_n_outputs=32), "d_model=20 is too short for EEGNet.* at least 27"),
        ("atm-e", dict(n_heads=300), "smaller than n_heads=300"),
    ],
)
def test_bad_settings_raise_one_clear_error(name, changes, match):
    with pytest.raises(ToolkitError, match=match):
        create_encoder(name, **changes)


def test_missing_braindecode_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "braindecode.models", None)  # makes the import fail
    with pytest.raises(ToolkitError, match=r"pip install 'eeg-visual-toolkit\[encoders\]'"):
        create_encoder("eegnet", n_chans=4, n_times=64, embed_dim=8)


def test_braindecode_argument_mismatch_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(EEGNetConfig, "braindecode_kwargs", lambda self: {"no_such_argument": 1})
    with pytest.raises(ToolkitError, match=r"could not build braindecode\.models\.EEGNet with braindecode"):
        create_encoder("eegnet", n_chans=4, n_times=64, embed_dim=8)


def test_config_classes_have_the_reference_defaults():
    assert EEGNetConfig().to_dict()["F2"] == 160 and ShallowConfig().pool_time_length == 25
    assert ATCNetConfig().min_n_times == 132 and ConformerConfig().num_layers == 2


# -- ATM-E ------------------------------------------------------------------------------------------------------
def test_atme_eegnet_width_is_derived_like_the_reference():
    assert ATMEConfig().eegnet_outputs == 1440  # THINGS-EEG: ATM-S's TSConv flatten size
    assert ATMEConfig(n_chans=271, n_times=201, sfreq=200.0).eegnet_outputs == 1040  # THINGS-MEG
    assert ATMEConfig(eegnet_n_outputs=512).eegnet_outputs == 512
    encoder = _things("atm-e")
    assert encoder.eegnet.n_outputs == encoder.projector.linear.in_features == 1440
    assert (encoder.eegnet.n_chans, encoder.eegnet.n_times) == (63, 250)  # tokens kept x token width
    eegnet = encoder.eegnet
    assert (eegnet.F1, eegnet.D, eegnet.F2, eegnet.kernel_length, eegnet.drop_1.p) == (8, 20, 160, 4, 0.25)


def test_atme_reuses_the_atm_s_classes():
    encoder = _things("atm-e")
    assert all(type(layer) is ChannelAttentionLayer for layer in encoder.layers)
    assert type(encoder.projector) is Projector
    assert type(encoder.eegnet) is braindecode_model_class("EEGNet")


TINY_FRONT = dict(n_chans=8, n_times=50, sfreq=50.0, embed_dim=16, n_heads=2, d_ff=32, n_subjects=3)


@pytest.mark.parametrize(
    "front",
    [
        dict(),
        dict(positional_encoding="none", token_slice="all", subject_fallback="trial", n_layers=2, d_model=40),
    ],
)
def test_atme_front_end_is_atm_s_front_end(front):
    """ATM-S weights loaded into ATM-E by key give the tokens ATM-S feeds its TSConv."""
    torch.manual_seed(0)
    atms = create_encoder(
        "atm-s", **TINY_FRONT, **front, n_filters=4, temporal_kernel=5, pool_kernel=9, pool_stride=3
    ).eval()
    atme = create_encoder("atm-e", **TINY_FRONT, **front, F1=2, D=2, F2=4, eegnet_n_outputs=24).eval()
    shared = {k: v for k, v in atms.state_dict().items() if not k.startswith(("tsconv.", "projector."))}
    atme_front = {k for k in atme.state_dict() if not k.startswith(("eegnet.", "projector."))}
    assert set(shared) == atme_front
    atme.load_state_dict(shared, strict=False)

    seen = {}

    def keep_input(module, args, out):  # returns None, so the output is unchanged
        seen["tokens"] = args[0]

    atms.tsconv.register_forward_hook(keep_input)
    atms.fast_inference = False
    eeg, ids = _eeg(batch=4, n_chans=8, n_times=50), torch.tensor([0, 1, 2, 5])  # 5 is unknown: shared token
    with torch.no_grad():
        atms(eeg, ids)
        tokens = atme.front_end(eeg, ids)
    assert tokens.shape == seen["tokens"].shape == (4, atme.config.n_tokens_kept, atme.config.width)
    torch.testing.assert_close(tokens, seen["tokens"], rtol=0, atol=1e-6)
