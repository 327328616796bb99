"""BrainVis encoders: time branch with latent masked modelling, frequency branch, unified encoder, AlignNet.

Tiny configurations throughout (d_model 32, 2 layers, 4 heads, 8 channels x 40 samples); the registry contract
(shapes, validation, save/load, gradients) is also covered by ``test_encoders_contract.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toolkit import ToolkitError
from toolkit.encoders import (
    BrainVisAlignNet,
    BrainVisConfig,
    BrainVisEncoder,
    BrainVisFreqConfig,
    BrainVisFreqEncoder,
    BrainVisTimeConfig,
    BrainVisTimeEncoder,
    EEGEncoder,
    brainvis_alignment_loss,
    create_encoder,
    list_encoders,
)
from toolkit.encoders._brainvis_freq import magnitude_spectrum

GEOMETRY = dict(n_chans=8, n_times=40, sfreq=100.0)  # tiny EEG-ImageNet-like: a multiple of the unit length
TIME = dict(d_model=32, n_layers=2, n_heads=4, d_ff=64)
FREQ = dict(lstm_hidden=16, freq_features=12)
LMM = dict(masked_modelling=True, n_codes=24, regressor_layers=2)


def _time(seed: int = 0, **changes) -> BrainVisTimeEncoder:
    torch.manual_seed(seed)
    return create_encoder("brainvis-time", **{**GEOMETRY, **TIME, "embed_dim": 32, **changes})


def _lmm(seed: int = 0, **changes) -> BrainVisTimeEncoder:
    return _time(seed, **{**LMM, **changes})


def _freq(seed: int = 0, **changes) -> BrainVisFreqEncoder:
    torch.manual_seed(seed)
    return create_encoder("brainvis-freq", **{**GEOMETRY, **FREQ, "embed_dim": 12, **changes})


def _unified(seed: int = 0, **changes) -> BrainVisEncoder:
    torch.manual_seed(seed)
    return create_encoder("brainvis", **{**GEOMETRY, **TIME, **FREQ, "embed_dim": 44, **changes})


def _eeg(batch: int = 4, n_chans: int = 8, n_times: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n_chans, n_times, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: one intra-op thread is faster than two, and far faster on a loaded machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- configuration and geometry ----------------------------------------------------------------------------------
def test_registered_and_reference_geometry():
    assert {"brainvis", "brainvis-freq", "brainvis-time"} <= set(list_encoders())
    ref = BrainVisTimeConfig(masked_modelling=True)  # EEG-ImageNet defaults: 128 x 440 at 1 kHz
    assert (ref.n_chans, ref.n_times, ref.n_units, ref.n_pad, ref.n_masked) == (128, 440, 110, 0, 82)
    assert (ref.d_model, ref.n_layers, ref.n_heads, ref.d_ff, ref.dropout, ref.n_codes) == (
        1024,
        8,
        16,
        4096,
        0.2,
        660,
    )
    assert BrainVisFreqConfig().n_bins == 220
    unified = BrainVisConfig()
    assert unified.feature_dim == unified.embed_dim == 1152
    things = BrainVisConfig(n_chans=63, n_times=250, sfreq=250.0, embed_dim=1024, projection="mlp")
    assert (things.n_units, things.n_pad, things.n_bins) == (63, 2, 125)
    cropped = BrainVisTimeConfig(n_chans=63, n_times=250, unit_padding="crop")
    assert (cropped.n_units, cropped.n_pad) == (62, 0)


def test_reference_frequency_branch_parameter_count():
    encoder = BrainVisFreqEncoder()  # 128 x 440, LSTM(128), Linear 128 -> 128, no projection
    assert isinstance(encoder.projection, nn.Identity)
    assert encoder.n_parameters() == 148_608
    assert encoder.n_parameters() + nn.Linear(128, 40).weight.numel() + 40 == 153_768  # the paper's 0.1538 M


@pytest.mark.parametrize(
    ("name", "changes", "match"),
    [
        ("brainvis-time", dict(d_model=30), "not divisible by n_heads"),
        ("brainvis-time", dict(n_times=2, unit_padding="crop"), "shorter than one unit"),
        ("brainvis-time", dict(masked_modelling=True, mask_ratio=0.05), "at least one masked and one visible"),
        ("brainvis-time", dict(masked_modelling=1), "must be True or False"),
        ("brainvis-time", dict(code_sampling="softmax"), "code_sampling must be one of"),
        ("brainvis-time", dict(embed_dim=16, projection="none"), "projection='none' needs embed_dim"),
        ("brainvis-freq", dict(n_times=1), "no FFT bin"),
        ("brainvis", dict(n_classes=1), "n_classes must be 0"),
        ("brainvis", dict(projection="conv"), "projection must be one of"),
    ],
)
def test_bad_configurations_raise(name, changes, match):
    base = {**GEOMETRY, **TIME} if name != "brainvis-freq" else {**GEOMETRY, **FREQ}
    if name == "brainvis":
        base.update(FREQ, embed_dim=44)
    with pytest.raises(ToolkitError, match=match):
        create_encoder(name, **{**base, **changes})


# -- shapes on both geometries -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_chans", "n_times", "n_units"), [(8, 40, 10), (6, 50, 13)])
def test_shapes_for_both_geometries(n_chans, n_times, n_units):
    geometry = dict(n_chans=n_chans, n_times=n_times)
    eeg = _eeg(3, n_chans, n_times)
    time, freq, unified = _time(**geometry), _freq(**geometry), _unified(**geometry, n_classes=5)
    assert time.config.n_units == n_units and time.time.positions.shape == (n_units, 32)
    with torch.no_grad():
        assert time.time(eeg).shape == (3, n_units, 32)
        assert time(eeg).shape == (3, 32) and isinstance(time.projection, nn.Identity)
        assert freq.spectrum(eeg).shape == (3, n_times // 2, n_chans)
        assert freq(eeg).shape == (3, 12)
        assert unified.features(eeg).shape == (3, 44) and unified(eeg).shape == (3, 44)
        assert unified.classify(eeg).shape == (3, 5)


def test_projection_choices():
    eeg = _eeg()
    assert isinstance(_time(embed_dim=16).projection, nn.Linear)
    mlp = _unified(embed_dim=24, projection="mlp")
    assert type(mlp.projection).__name__ == "Projector"
    with torch.no_grad():
        assert mlp(eeg).shape == (4, 24)
    assert isinstance(_freq(projection="linear").projection, nn.Linear)


def test_zero_padding_and_crop_match_explicitly_trimmed_trials():
    eeg = _eeg(2, 8, 50)
    padded = _time(n_times=50).eval()  # 13 units: 2 zero samples appended
    explicit = _time(n_times=52).eval()
    explicit.load_state_dict(padded.state_dict())
    cropped = _time(n_times=50, unit_padding="crop").eval()  # 12 units: last 2 samples dropped
    short = _time(n_times=48).eval()
    short.load_state_dict(cropped.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(padded(eeg), explicit(F.pad(eeg, (0, 2))))
        torch.testing.assert_close(cropped(eeg), short(eeg[..., :48]))


# -- latent masked modelling ---------------------------------------------------------------------------------------
def test_mask_ratio_and_one_mask_per_batch():
    encoder = _lmm()
    visible, masked = encoder.sample_mask(_gen(3))
    assert len(masked) == encoder.config.n_masked == 7 and len(visible) == 3
    assert sorted(torch.cat([visible, masked]).tolist()) == list(range(10))
    again = encoder.sample_mask(_gen(3))
    assert torch.equal(again[0], visible) and torch.equal(again[1], masked)
    assert any(not torch.equal(encoder.sample_mask(_gen(s))[1], masked) for s in range(4, 10))
    out = encoder.masked_forward(_eeg(), _gen(3))
    assert torch.equal(out.masked, masked) and out.online.shape == (4, 3, 32)


def test_online_encoder_never_sees_masked_units():
    encoder = _lmm().eval()  # no dropout: outputs depend only on the inputs
    with torch.no_grad():  # make the gates non-negligible so every block mixes units
        for name, param in encoder.named_parameters():
            if name.endswith("_gate"):
                param.fill_(1.0)
    eeg = _eeg()
    with torch.no_grad():
        first = encoder.masked_forward(eeg, _gen(7))
        perturbed = eeg.clone()
        for unit in first.masked.tolist():
            perturbed[..., 4 * unit : 4 * unit + 4] += 5.0 * torch.randn(4, 8, 4)
        second = encoder.masked_forward(perturbed, _gen(7))
        assert torch.equal(first.online, second.online)
        assert torch.equal(first.predicted, second.predicted)
        assert not torch.allclose(first.target, second.target)  # the target encoder sees the masked units
        unit = first.visible[0].item()
        perturbed[..., 4 * unit : 4 * unit + 4] += 1.0
        third = encoder.masked_forward(perturbed, _gen(7))
        assert not torch.allclose(first.online, third.online)


def test_codebook_targets_and_predictions():
    encoder = _lmm()
    eeg = _eeg()
    out = encoder.masked_forward(eeg, _gen(1))
    assert out.code_ids.shape == (4, 7) and out.code_ids.dtype == torch.int64
    assert int(out.code_ids.min()) >= 0 and int(out.code_ids.max()) < 24
    assert out.code_logits.shape == (4, 7, 24) and out.target.shape == out.predicted.shape == (4, 7, 32)
    assert not out.target.requires_grad and out.predicted.requires_grad
    # Gumbel sampling is reproducible with a generator; "argmax" is the plain codebook argmax.
    assert torch.equal(encoder.masked_forward(eeg, _gen(1)).code_ids, out.code_ids)
    argmax = _lmm(code_sampling="argmax")
    out = argmax.masked_forward(eeg, _gen(1))
    with torch.no_grad():
        expected = argmax.codebook(argmax.time.units(eeg)[:, out.masked]).argmax(dim=-1)
    assert torch.equal(out.code_ids, expected)


def test_momentum_target_is_state_not_parameters_and_ema_math():
    encoder = _lmm()
    names = {name for name, _ in encoder.named_parameters()}
    assert not any(name.startswith("target.") for name in names)
    assert {"mask_token", "codebook.weight"} <= names
    target_keys = [k for k in encoder.state_dict() if k.startswith("target.")]
    assert len(target_keys) == len(list(encoder.time.blocks.parameters()))
    online = dict(encoder.time.blocks.named_parameters())
    target = dict(encoder.target.named_buffers())
    for name in online:  # copied at construction
        assert torch.equal(online[name], target[name])
    with torch.no_grad():
        for param in online.values():
            param.add_(torch.randn_like(param))
    before = {name: t.clone() for name, t in target.items()}
    encoder.update_momentum()
    for name, param in online.items():
        torch.testing.assert_close(target[name], 0.99 * before[name] + 0.01 * param.detach())
    encoder.update_momentum(0.5)
    encoder.reset_momentum()
    for name, param in online.items():
        assert torch.equal(target[name], param.detach())
    encoder.train()
    assert encoder.training and not encoder.target.training
    with pytest.raises(ToolkitError, match=r"within \[0, 1\]"):
        encoder.update_momentum(1.5)


def test_pretraining_loss_parts_and_weights():
    encoder = _lmm(mse_weight=4.0, ce_weight=2.0)
    eeg = _eeg()
    loss, parts = encoder.pretraining_loss(eeg, _gen(2))
    assert loss.ndim == 0 and loss.requires_grad
    torch.testing.assert_close(loss.detach(), 4.0 * parts["mse"] + 2.0 * parts["ce"])
    out = encoder.masked_forward(eeg, _gen(2))
    ce = F.cross_entropy(out.code_logits.flatten(0, 1), out.code_ids.flatten(), label_smoothing=0.2)
    torch.testing.assert_close(parts["ce"], ce.detach())
    torch.testing.assert_close(parts["mse"], F.mse_loss(out.predicted, out.target).detach())
    assert 0.0 <= float(parts["code_accuracy"]) <= 1.0


def test_pretraining_loss_decreases_on_a_toy_signal():
    # Sinusoids of 4 frequencies with random phases per channel, plus noise; AdamW with an EMA step after each
    # optimiser step. Figures (this seed): total 14.0 -> 11.0 (mean of first/last 5 steps), MSE 1.98 -> 1.07; the
    # code cross-entropy stays near log(n_codes) this early (Gumbel-sampled targets from a young codebook).
    torch.manual_seed(0)
    t = torch.arange(40) / 100.0
    freqs = torch.tensor([6.0, 10.0, 14.0, 20.0])
    encoder = _lmm(dropout=0.0)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=2e-3)
    losses, mses = [], []
    gen = _gen(0)
    for _ in range(50):
        phase = torch.rand(16, 8, 1, generator=gen) * 6.283
        freq = freqs[torch.randint(0, 4, (16, 1, 1), generator=gen)]
        eeg = torch.sin(6.283 * freq * t + phase) + 0.1 * torch.randn(16, 8, 40, generator=gen)
        loss, parts = encoder.pretraining_loss(eeg, gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        encoder.update_momentum()
        losses.append(float(loss.detach()))
        mses.append(float(parts["mse"]))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses
    assert np.mean(mses[-5:]) < 0.8 * np.mean(mses[:5]), mses


def test_training_loss_hook_keeps_the_ema_in_step_and_drives_the_model_objective():
    from toolkit.training.config import TrainConfig
    from toolkit.training.losses import Objective

    encoder = _lmm().train()
    objective = Objective(TrainConfig(objective="model"), embed_dim=32)
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=0.5)
    batch = {"eeg": _eeg(), "labels": torch.zeros(4, dtype=torch.long), "subject_ids": None}
    target = dict(encoder.target.named_buffers())
    start = {name: t.clone() for name, t in target.items()}
    loss, embeds = objective(encoder, batch)
    assert loss.ndim == 0 and embeds is None
    for name, t in target.items():  # no step yet: no EMA update
        assert torch.equal(t, start[name])
    loss.backward()
    optimizer.step()
    stepped = {name: p.detach().clone() for name, p in encoder.time.blocks.named_parameters()}
    objective(encoder, batch)  # the next call applies the EMA step due after the optimiser step
    for name, t in target.items():
        torch.testing.assert_close(t, 0.99 * start[name] + 0.01 * stepped[name])
    after_one = {name: t.clone() for name, t in target.items()}
    objective(encoder, batch)  # no step in between: no second update
    for name, t in target.items():
        assert torch.equal(t, after_one[name])
    encoder.eval()  # validation: deterministic mask and noise, no EMA update
    with torch.no_grad():
        a, b = encoder.training_loss(batch), encoder.training_loss(batch)
    assert torch.equal(a["loss"], b["loss"]) and set(a) == {"loss", "mse", "ce", "code_accuracy"}


def test_masked_modelling_needs_the_option_and_valid_input():
    plain = _time()
    assert plain.target is None and plain.codebook is None
    with pytest.raises(ToolkitError, match="masked_modelling=True"):
        plain.pretraining_loss(_eeg())
    with pytest.raises(ToolkitError, match="masked_modelling=True"):
        plain.update_momentum()
    encoder = _lmm()
    with pytest.raises(ToolkitError, match="eeg has 8 channels x 39 samples"):
        encoder.pretraining_loss(_eeg(n_times=39))
    with pytest.raises(ToolkitError, match="batch mapping with an 'eeg' tensor"):
        encoder.training_loss(_eeg())


def test_lmm_checkpoint_round_trip(tmp_path):
    encoder = _lmm()
    encoder.update_momentum(0.0)
    with torch.no_grad():
        encoder.time.blocks[0].ffn_gate.fill_(0.3)  # online and target now differ
    folder = encoder.save_pretrained(tmp_path / "lmm")
    loaded = EEGEncoder.from_pretrained(folder)
    assert isinstance(loaded, BrainVisTimeEncoder) and loaded.config == encoder.config
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    encoder.eval()
    with torch.no_grad():
        a, _ = encoder.pretraining_loss(_eeg(), _gen(4))
        b, _ = loaded.pretraining_loss(_eeg(), _gen(4))
    assert torch.equal(a, b)


# -- frequency branch ----------------------------------------------------------------------------------------------
def test_frequency_features_match_numpy_and_are_differentiable():
    encoder = _freq()
    eeg = _eeg(3)
    reference = np.abs(np.fft.rfft(eeg.double().numpy(), axis=-1))[..., 1:21].transpose(0, 2, 1)
    np.testing.assert_allclose(encoder.spectrum(eeg).numpy(), reference, rtol=1e-5, atol=1e-5)
    odd = torch.randn(2, 3, 25, dtype=torch.float64, generator=_gen(1), requires_grad=True)
    assert magnitude_spectrum(odd, 12).shape == (2, 12, 3)  # bins 1..12 of 25 samples
    assert torch.autograd.gradcheck(lambda x: magnitude_spectrum(x, 12), (odd,))
    eeg.requires_grad_(True)
    encoder(eeg).sum().backward()
    assert torch.isfinite(eeg.grad).all() and eeg.grad.abs().sum() > 0


# -- unified encoder -----------------------------------------------------------------------------------------------
def test_unified_from_branches_concatenates_the_branch_features():
    time, freq = _time(seed=1).eval(), _freq(seed=2).eval()
    unified = BrainVisEncoder.from_branches(time, freq, n_classes=3).eval()
    assert unified.config.feature_dim == unified.config.embed_dim == 44 and unified.training is False
    eeg = _eeg()
    with torch.no_grad():
        features = unified.features(eeg)
        torch.testing.assert_close(features[:, :32], time(eeg))
        torch.testing.assert_close(features[:, 32:], freq(eeg))
        torch.testing.assert_close(unified(eeg), features)
    with pytest.raises(ToolkitError, match="takes d_model from the branches"):
        BrainVisEncoder.from_branches(time, freq, d_model=64)
    with pytest.raises(ToolkitError, match="same data geometry"):
        BrainVisEncoder.from_branches(time, _freq(n_times=44))
    with pytest.raises(ToolkitError, match="needs a 'brainvis-time' and a 'brainvis-freq'"):
        BrainVisEncoder.from_branches(freq, time)


def test_classification_head_and_training_loss():
    encoder = _unified(n_classes=5)
    eeg, labels = _eeg(), torch.tensor([0, 4, 2, 1])
    logits = encoder.classify(eeg)
    assert logits.shape == (4, 5)
    loss = encoder.training_loss({"eeg": eeg, "labels": labels})
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            encoder.training_loss({"eeg": eeg, "labels": labels}), F.cross_entropy(encoder.classify(eeg), labels)
        )
    assert loss.requires_grad
    with pytest.raises(ToolkitError, match=r"labels must lie in \[0, 5\)"):
        encoder.training_loss({"eeg": eeg, "labels": torch.tensor([0, 5, 1, 1])})
    with pytest.raises(ToolkitError, match="integer class labels"):
        encoder.training_loss({"eeg": eeg, "labels": torch.zeros(4)})
    with pytest.raises(ToolkitError, match="no classification head"):
        _unified().classify(eeg)


# -- alignment -----------------------------------------------------------------------------------------------------
def test_alignnet_shapes_loss_gradients_and_round_trip(tmp_path):
    torch.manual_seed(0)
    align = BrainVisAlignNet(_unified(n_classes=5), n_tokens=5, token_dim=6, widths=(16, 8))
    assert align.head.fc1.in_features == 44 + 5  # concat(features, logits)
    eeg = _eeg()
    pred = align(eeg)
    assert pred.shape == (4, 5, 6)
    label = torch.randn(4, 5, 6, generator=_gen(1))
    caption = torch.randn(4, 5, 6, generator=_gen(2))
    loss = brainvis_alignment_loss(pred, label, caption)
    expected = sum(
        (1 - F.cosine_similarity(pred.flatten(1), t.flatten(1)).mean()) + ((pred - t) ** 2).mean()
        for t in (label, caption)
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert align.encoder.time.unit_embedding.weight.grad.abs().sum() > 0  # the encoder trains with the head
    assert float(brainvis_alignment_loss(label, label)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ToolkitError, match="caption_embeds must have the shape of pred"):
        brainvis_alignment_loss(pred, label, caption[:, :4])
    align.eval()
    folder = align.save_pretrained(tmp_path / "align")
    assert json.loads((folder / "align_config.json").read_text())["widths"] == [16, 8]
    loaded = BrainVisAlignNet.from_pretrained(folder)
    with torch.no_grad():
        assert torch.equal(loaded(eeg), align(eeg))
    (folder / "align_head.safetensors").unlink()
    with pytest.raises(ToolkitError, match=r"align_head\.safetensors is missing"):
        BrainVisAlignNet.from_pretrained(folder)
    no_head = BrainVisAlignNet(_unified(), n_tokens=2, token_dim=3, widths=(8, 4))
    assert no_head.head.fc1.in_features == 44 and no_head(eeg).shape == (4, 2, 3)
    with pytest.raises(ToolkitError, match="widths must be two integers"):
        BrainVisAlignNet(_unified(), widths=(8,))
    with pytest.raises(ToolkitError, match="needs a 'brainvis' encoder"):
        BrainVisAlignNet(_time())
