"""Contract tests run on every registered encoder (braindecode/diffusers style): adding an encoder to the
registry subjects it to all of them. Encoders that cannot run at 8 channels x 50 samples with the generic tiny
configuration get an entry in ``TINY``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.encoders import (
    ATMSEncoder,
    EEGEncoder,
    LogitScale,
    NICEEncoder,
    create_encoder,
    get_encoder_class,
    list_encoders,
    register_encoder,
)

GENERIC_TINY = dict(n_chans=8, n_times=50, sfreq=50.0, embed_dim=16)
_TSCONV = dict(n_filters=4, temporal_kernel=5, pool_kernel=9, pool_stride=3)
TINY = {
    "atm-s": dict(GENERIC_TINY, n_heads=2, d_ff=32, n_subjects=3, **_TSCONV),
    "nice": dict(GENERIC_TINY, **_TSCONV),
    # ATCNet needs 132 samples with its reference pools/windows; ATM-E cannot derive EEGNet's width under 75.
    "atcnet": dict(GENERIC_TINY, conv_block_pool_size_1=2, conv_block_pool_size_2=2, n_windows=2, tcn_kernel_size=2),
    "atm-e": dict(GENERIC_TINY, n_heads=2, d_ff=32, n_subjects=3, eegnet_n_outputs=24),
    "brainvis-time": dict(GENERIC_TINY, d_model=16, n_layers=1, n_heads=2, d_ff=32),
    "brainvis-freq": dict(GENERIC_TINY, lstm_hidden=8, freq_features=8),
    "brainvis": dict(GENERIC_TINY, d_model=16, n_layers=1, n_heads=2, d_ff=32, lstm_hidden=8, freq_features=8),
}
ENCODERS = list_encoders()


def _tiny_config(name: str, **changes) -> dict:
    return {**TINY.get(name, GENERIC_TINY), **changes}


def _build(name: str, seed: int = 0, **changes) -> EEGEncoder:
    torch.manual_seed(seed)
    return create_encoder(name, **_tiny_config(name, **changes))


def _eeg(encoder: EEGEncoder, batch: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, encoder.config.n_chans, encoder.config.n_times, generator=gen)


def _ids(batch: int = 4) -> torch.Tensor:
    return torch.arange(batch) % 2 + 1


def test_builtin_encoders_are_registered():
    assert {"atm-s", "nice"} <= set(ENCODERS)
    assert get_encoder_class("atm-s") is ATMSEncoder and get_encoder_class("nice") is NICEEncoder


@pytest.fixture(params=ENCODERS)
def name(request) -> str:
    return request.param


def test_output_shape_dtype_and_not_normalised(name):
    encoder = _build(name)
    eeg = _eeg(encoder)
    for mode in ("train", "eval"):
        getattr(encoder, mode)()
        with torch.no_grad():
            for ids in (_ids(), None):
                out = encoder(eeg, ids)
                assert out.shape == (4, encoder.config.embed_dim) and out.dtype == torch.float32
                assert torch.isfinite(out).all()
                assert not torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-2)


@pytest.mark.parametrize("fast", [True, False])
def test_batch_and_single_trials_agree_in_eval_mode(name, fast):
    encoder = _build(name).eval()
    encoder.fast_inference = fast
    eeg, ids = _eeg(encoder, batch=5), _ids(5)
    with torch.no_grad():
        batched = encoder(eeg, ids)
        singles = torch.cat([encoder(eeg[i : i + 1], ids[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, singles, rtol=0, atol=1e-5)


def test_gradients_reach_every_parameter_in_train_mode(name):
    encoder = _build(name).train()
    eeg = _eeg(encoder).requires_grad_(True)
    target = torch.randn(4, encoder.config.embed_dim, generator=torch.Generator().manual_seed(1))
    # Known subjects and unknown ones (None), so subject tables and shared tokens both take part.
    loss = (encoder(eeg, _ids()) * target).sum() + (encoder(eeg, None) * target).sum()
    loss.backward()
    assert eeg.grad is not None and eeg.grad.abs().sum() > 0
    for param_name, param in encoder.named_parameters():
        assert param.grad is not None, f"{param_name} received no gradient"
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{param_name} has an all-zero gradient"


def test_save_load_round_trip(name, tmp_path):
    encoder = _build(name)
    with torch.no_grad():  # move BatchNorm statistics away from their initial values
        encoder(_eeg(encoder, seed=5), _ids())
    encoder.eval()
    folder = encoder.save_pretrained(tmp_path / name)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((folder / "config.json").read_text())
    assert meta["encoder"] == name and meta["config"] == encoder.config.to_dict()
    for loader in (EEGEncoder, type(encoder)):
        loaded = loader.from_pretrained(folder)
        assert type(loaded) is type(encoder) and loaded.config == encoder.config and not loaded.training
        eeg = _eeg(encoder)
        with torch.no_grad():
            assert torch.equal(loaded(eeg, _ids()), encoder(eeg, _ids()))


def test_config_round_trips_through_json(name):
    cls = get_encoder_class(name)
    config = cls.config_class.from_dict(_tiny_config(name))
    again = cls.config_class.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert config.replace(embed_dim=8).embed_dim == 8


@pytest.mark.parametrize(
    ("shape", "nonfinite", "match"),
    [
        ((2, 7, 50), None, "eeg has 7 channels x 50 samples but this .* encoder expects 8 channels x 50 samples"),
        ((2, 8, 49), None, "eeg has 8 channels x 49 samples but this .* encoder expects 8 channels x 50 samples"),
        ((8, 50), None, r"3-D .*add a batch dimension"),
        ((0, 8, 50), None, "empty batch"),
        ((2, 8, 50), math.nan, "1 NaN or infinite value"),
        ((2, 8, 50), math.inf, "1 NaN or infinite value"),
    ],
)
def test_bad_eeg_raises_one_clear_error(name, shape, nonfinite, match):
    encoder = _build(name).eval()
    eeg = torch.zeros(shape)
    if nonfinite is not None:
        eeg[1, 3, 7] = nonfinite
    with pytest.raises(ToolkitError, match=match):
        encoder(eeg)


def test_bad_types_and_subject_ids_raise(name):
    encoder = _build(name).eval()
    eeg = _eeg(encoder, batch=2)
    with pytest.raises(ToolkitError, match=r"torch\.Tensor"):
        encoder(eeg.numpy())
    with pytest.raises(ToolkitError, match="floating point"):
        encoder(eeg.long())
    with pytest.raises(ToolkitError, match=r"weights are torch\.float32"):
        encoder(eeg.double())
    with pytest.raises(ToolkitError, match=r"shape \(2,\)"):
        encoder(eeg, torch.tensor([1, 2, 3]))
    with pytest.raises(ToolkitError, match="integer tensor"):
        encoder(eeg, torch.tensor([1.0, 2.0]))
    with pytest.raises(ToolkitError, match="non-negative"):
        encoder(eeg, torch.tensor([1, -1]))
    with pytest.raises(ToolkitError, match=r"int64 torch\.Tensor"):
        encoder(eeg, [1, 2])


def test_unknown_name_lists_the_known_encoders():
    with pytest.raises(ToolkitError, match="Unknown encoder 'no-such-encoder'") as info:
        create_encoder("no-such-encoder")
    for known in ENCODERS:
        assert known in str(info.value)


def test_bad_configuration_raises(name):
    with pytest.raises(ToolkitError, match=r"unknown .* fields bogus; valid fields are n_chans"):
        create_encoder(name, **_tiny_config(name), bogus=1)
    with pytest.raises(ToolkitError, match="n_chans must be an integer >= 1"):
        create_encoder(name, **_tiny_config(name, n_chans=0))
    with pytest.raises(ToolkitError, match="logit_scale must be one of"):
        create_encoder(name, **_tiny_config(name, logit_scale="log"))


def test_checkpoint_of_another_shape_names_the_keys(name, tmp_path):
    from safetensors.torch import save_file

    folder = _build(name).save_pretrained(tmp_path / "small")
    wider = _build(name, n_chans=10)
    save_file(wider.state_dict(), str(folder / "model.safetensors"))
    with pytest.raises(ToolkitError, match=r"shape mismatches: .*\(checkpoint \(.*10.*\) vs model \(.*8.*\)\)"):
        EEGEncoder.from_pretrained(folder)

    state = dict(_build(name).state_dict())
    dropped = next(iter(state))
    state.pop(dropped)
    state["extra.weight"] = torch.zeros(3)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ToolkitError, match=rf"missing keys: {dropped}; unexpected keys: extra\.weight"):
        EEGEncoder.from_pretrained(folder)


def test_checkpoint_of_another_architecture_is_refused(name, tmp_path):
    other = next((n for n in ENCODERS if n != name), None)
    if other is None:
        pytest.skip("only one encoder is registered")
    folder = _build(other).save_pretrained(tmp_path / other)
    with pytest.raises(ToolkitError, match=f"holds a '{other}' encoder, not a '{name}' one"):
        get_encoder_class(name).from_pretrained(folder)


def test_logit_scale_stays_out_of_the_encoder(name):
    encoder = _build(name)
    assert not any("logit" in key for key in encoder.state_dict())
    scale = encoder.make_logit_scale()
    assert isinstance(scale, LogitScale) and scale.parametrization == encoder.config.logit_scale == "raw"
    assert scale().item() == pytest.approx(math.log(1 / 0.07))
    exp_scale = _build(name, logit_scale="exp").make_logit_scale()
    assert exp_scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        exp_scale.logit_scale.fill_(10.0)
    assert exp_scale().item() == 100.0  # CLIP's clamp


def test_encode_batches_numpy_input(name):
    encoder = _build(name).train()
    eeg = _eeg(encoder, batch=7)
    out = encoder.encode(eeg.numpy(), 1, batch_size=3, normalize=True)
    assert out.shape == (7, encoder.config.embed_dim) and encoder.training
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(7))
    encoder.eval()
    with torch.no_grad():
        expected = torch.nn.functional.normalize(encoder(eeg, torch.ones(7, dtype=torch.long)), dim=-1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


# -- registry and loading (not per encoder) ----------------------------------------------------------------------
def test_registry_rejects_duplicates_and_non_encoders():
    with pytest.raises(ToolkitError, match="already taken"):

        @register_encoder("atm-s")
        class Impostor(EEGEncoder):
            pass

    with pytest.raises(ToolkitError, match="decorates EEGEncoder subclasses"):
        register_encoder("not-an-encoder")(dict)
    assert "not-an-encoder" not in list_encoders()


def test_from_pretrained_resolves_hub_ids_through_snapshot_download(tmp_path, monkeypatch):
    import huggingface_hub

    folder = _build("nice").save_pretrained(tmp_path / "snapshot")
    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = EEGEncoder.from_pretrained("someone/nice-things-eeg", revision="v1")
    assert isinstance(loaded, NICEEncoder)
    assert calls == [("someone/nice-things-eeg", "v1", ("config.json", "model.safetensors"))]

    def offline(repo_id, revision=None, allow_patterns=None):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ToolkitError, match="could not be fetched from the Hugging Face Hub"):
        EEGEncoder.from_pretrained("someone/missing")


def test_from_pretrained_bad_locations_and_files(tmp_path):
    with pytest.raises(ToolkitError, match="neither an existing folder nor a Hugging Face Hub id"):
        EEGEncoder.from_pretrained(tmp_path / "not" / "here")
    with pytest.raises(ToolkitError, match="only applies to Hub ids"):
        EEGEncoder.from_pretrained(tmp_path, revision="main")
    with pytest.raises(ToolkitError, match=r"config\.json is missing"):
        EEGEncoder.from_pretrained(tmp_path)
    folder = _build("nice").save_pretrained(tmp_path / "enc")
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ToolkitError, match="not a readable safetensors file"):
        EEGEncoder.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ToolkitError, match="not valid JSON"):
        EEGEncoder.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"encoder": "nope", "config": {}}))
    with pytest.raises(ToolkitError, match="Unknown encoder 'nope'"):
        EEGEncoder.from_pretrained(folder)


def test_failed_save_leaves_no_partial_files(tmp_path, monkeypatch):
    import safetensors.torch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        _build("nice").save_pretrained(tmp_path / "enc")
    assert list((tmp_path / "enc").iterdir()) == []


def test_numpy_eeg_through_encode_is_validated():
    encoder = _build("nice")
    with pytest.raises(ToolkitError, match="1 NaN or infinite value"):
        bad = np.zeros((2, 8, 50), dtype=np.float32)
        bad[0, 0, 0] = np.nan
        encoder.encode(bad)
