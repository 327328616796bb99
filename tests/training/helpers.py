"""Shared constants and helpers of the training tests."""

from __future__ import annotations

import torch

# A tiny ATM-S: 32-wide tokens, 2 heads, 8 TSConv filters (flatten 64); subject table of 3 rows (sub-01, sub-02).
TINY_ATM = {
    "d_model": 32,
    "n_heads": 2,
    "d_ff": 32,
    "n_filters": 8,
    "temporal_kernel": 5,
    "pool_kernel": 5,
    "pool_stride": 3,
    "n_subjects": 3,
}
EMBED_DIM = 16


def weights_equal(a: torch.nn.Module | dict, b: torch.nn.Module | dict) -> bool:
    """Exact equality of two state dicts (same keys, bit-identical tensors)."""
    sa = a.state_dict() if isinstance(a, torch.nn.Module) else a
    sb = b.state_dict() if isinstance(b, torch.nn.Module) else b
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def interrupted_and_straight(cfg, tmp_path):
    """Train ``cfg`` straight through, and again interrupted after epoch 2 then resumed; return both results and
    the interrupted run's directory."""
    import pytest

    from toolkit.training import train

    straight = train(cfg.replace(out=str(tmp_path / "straight")))

    def interrupt_after_two(trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    run = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(cfg.replace(out=str(run)), callbacks=[interrupt_after_two])
    from toolkit.training.checkpoint import load_checkpoint

    state, meta = load_checkpoint(run / "last")
    assert state["epoch"] == 2 and meta["epoch"] == 2
    resumed = train(cfg.replace(out=str(run), resume=True))
    return straight, resumed, run
