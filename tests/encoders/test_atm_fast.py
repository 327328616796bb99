"""The fast paths (folded inference copy, pool-first TSConv) agree with the literal reference transcription."""

from __future__ import annotations

import copy

import pytest
import torch

from toolkit import ToolkitError
from toolkit.encoders import EEGEncoder, FusedEncoder, create_encoder
from toolkit.encoders._parity import reference_forward

TOL = 1e-5
TINY_TSCONV = dict(n_filters=4, temporal_kernel=5, pool_kernel=9, pool_stride=3)
TINY_ATM = dict(n_chans=8, n_times=50, sfreq=50.0, embed_dim=16, n_heads=2, d_ff=32, n_subjects=3, **TINY_TSCONV)

CASES = {
    "atm-s-things-eeg": ("atm-s", {}),
    "atm-s-things-meg": ("atm-s", dict(n_chans=271, n_times=201, sfreq=200.0, n_subjects=4)),
    "atm-s-no-pe-all-tokens": ("atm-s", dict(TINY_ATM, positional_encoding="none", token_slice="all")),
    "atm-s-2-layers-per-trial": ("atm-s", dict(TINY_ATM, n_layers=2, subject_fallback="trial")),
    "atm-s-d-model-odd-heads": ("atm-s", dict(TINY_ATM, d_model=41, n_heads=3)),
    "nice-things-eeg": ("nice", {}),
    "nice-tiny-uneven-stride": ("nice", dict(n_chans=8, n_times=53, embed_dim=16, **TINY_TSCONV)),
}


def _encoder(name: str, config: dict, seed: int = 0) -> EEGEncoder:
    """A seeded encoder with non-trivial BatchNorm statistics and affines (so folding is really tested)."""
    torch.manual_seed(seed)
    encoder = create_encoder(name, **config)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for bn in (encoder.tsconv.bn1, encoder.tsconv.bn2):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.weight.copy_(1 + 0.3 * torch.randn(n, generator=gen))
            bn.bias.copy_(0.2 * torch.randn(n, generator=gen))
        for module in encoder.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))
    return encoder.eval()


def _inputs(encoder: EEGEncoder, batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    cfg = encoder.config
    eeg = torch.randn(batch, cfg.n_chans, cfg.n_times, generator=gen)
    n_subjects = getattr(cfg, "n_subjects", 4)
    ids = torch.arange(batch) % (n_subjects + 1)  # includes an unknown id once batch > n_subjects
    return eeg, ids


@pytest.mark.parametrize("case", list(CASES))
def test_fused_and_layer_paths_match_reference_transcription(case):
    name, config = CASES[case]
    encoder = _encoder(name, config)
    eeg, ids = _inputs(encoder)
    with torch.no_grad():
        literal = reference_forward(encoder, eeg, ids)
        encoder.fast_inference = False
        layers = encoder(eeg, ids)
        assert encoder._fused_cache is None
        encoder.fast_inference = True
        fused = encoder(eeg, ids)
        assert encoder._fused_cache is not None
    assert (layers - literal).abs().max() <= TOL
    assert (fused - literal).abs().max() <= TOL


def test_fused_path_accepts_a_dc_offset():
    # Raw EEG with a large offset: the folded box average sums exact windows (no cumulative-sum cancellation).
    encoder = _encoder("nice", CASES["nice-tiny-uneven-stride"][1])
    eeg, _ = _inputs(encoder)
    eeg = eeg + 1000.0
    with torch.no_grad():
        literal = reference_forward(encoder, eeg)
        fused = encoder(eeg)
    assert (fused - literal).abs().max() <= 1e-4  # outputs are O(1) after LayerNorm; inputs are O(1000)


def test_train_mode_matches_reference_transcription_with_gradients():
    config = dict(TINY_ATM, dropout=0.0, tsconv_dropout=0.0, proj_dropout=0.0, subject_fallback="trial")
    fast = _encoder("atm-s", config).train()
    literal = copy.deepcopy(fast)
    eeg, ids = _inputs(fast, batch=5)
    target = torch.randn(5, fast.config.embed_dim, generator=torch.Generator().manual_seed(3))
    out_fast = fast(eeg, ids)
    out_literal = reference_forward(literal, eeg, ids)
    torch.testing.assert_close(out_fast, out_literal, rtol=0, atol=TOL)
    (out_fast * target).sum().backward()
    (out_literal * target).sum().backward()
    # Relative to the largest gradient: biases in front of a BatchNorm have a zero gradient up to rounding.
    scale = max(p.grad.abs().max().item() for p in literal.parameters())
    for (name, p_fast), p_literal in zip(fast.named_parameters(), literal.parameters()):
        assert p_fast.grad is not None, name
        err = (p_fast.grad - p_literal.grad).abs().max().item()
        assert err <= 1e-5 * scale, f"{name}: gradient differs by {err:.2e} (scale {scale:.1f})"
    for b_fast, b_literal in zip(fast.buffers(), literal.buffers()):  # BatchNorm running statistics
        torch.testing.assert_close(b_fast, b_literal, rtol=1e-5, atol=1e-6)


def test_fused_cache_follows_weight_changes():
    encoder = _encoder("atm-s", TINY_ATM)
    eeg, ids = _inputs(encoder)

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            encoder.fast_inference = True
            fused = encoder(eeg, ids)
            encoder.fast_inference = False
            layers = encoder(eeg, ids)
        return fused, layers

    before, _ = both()
    with torch.no_grad():  # an in-place edit in eval mode
        encoder.projector.linear.bias.add_(0.5)
    fused, layers = both()
    assert (fused - before).abs().max() > 1e-3
    torch.testing.assert_close(fused, layers, rtol=0, atol=TOL)

    other = _encoder("atm-s", TINY_ATM, seed=7)  # load_state_dict
    encoder.load_state_dict(other.state_dict())
    fused, layers = both()
    torch.testing.assert_close(fused, layers, rtol=0, atol=TOL)

    encoder.train()  # a training step, then back to eval
    assert encoder._fused_cache is None
    encoder(eeg, ids).pow(2).sum().backward()
    with torch.no_grad():  # a plain SGD step (in place, as optimisers update)
        for param in encoder.parameters():
            if param.grad is not None:
                param.sub_(0.01 * param.grad)
    encoder.eval()
    fused, layers = both()
    torch.testing.assert_close(fused, layers, rtol=0, atol=TOL)


def test_gradients_in_eval_mode_use_the_layer_path():
    encoder = _encoder("atm-s", TINY_ATM)
    eeg, ids = _inputs(encoder)
    eeg.requires_grad_(True)
    out = encoder(eeg, ids)  # eval mode, autograd on: attribution w.r.t. the input
    assert out.requires_grad and encoder._fused_cache is None
    out.sum().backward()
    assert eeg.grad is not None and eeg.grad.abs().sum() > 0
    encoder.requires_grad_(False)
    with torch.inference_mode():
        encoder(eeg.detach(), ids)
    assert encoder._fused_cache is not None


def test_fuse_returns_a_standalone_snapshot():
    encoder = _encoder("atm-s", TINY_ATM)
    eeg, ids = _inputs(encoder)
    fused = encoder.fuse()
    assert isinstance(fused, FusedEncoder) and not list(fused.parameters())
    with torch.no_grad():
        expected = reference_forward(encoder, eeg, ids)
    out = fused(eeg, ids)
    assert not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=0, atol=TOL)
    with torch.no_grad():
        encoder.projector.norm.bias.add_(1.0)
    torch.testing.assert_close(fused(eeg, ids), out, rtol=0, atol=0)  # a snapshot, not a view
    with pytest.raises(ToolkitError, match="expects 8 channels x 50 samples"):
        fused(eeg[:, :4], ids)
