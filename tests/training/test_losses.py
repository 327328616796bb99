"""Each loss against a hand computation (numpy), the logit-scale parametrisations and the objective hooks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from toolkit import ToolkitError
from toolkit.training import (
    Objective,
    TrainConfig,
    atm_mix_loss,
    classification_loss,
    clip_loss,
    mse_loss,
    recon_mix_loss,
)


def _data(seed: int = 0, batch: int = 5, dim: int = 7):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, dim)) * 3).astype(np.float64), rng.standard_normal((batch, dim)) * 2


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def _hand_clip(a: np.ndarray, b: np.ndarray, scale: float, normalize: bool) -> float:
    if normalize:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = scale * a @ b.T
    diag = np.arange(len(a))
    rows = -_log_softmax(logits, axis=1)[diag, diag].mean()  # EEG -> image
    cols = -_log_softmax(logits, axis=0)[diag, diag].mean()  # image -> EEG
    return (rows + cols) / 2


@pytest.mark.parametrize("normalize", [False, True])
def test_clip_loss_matches_hand_computation(normalize):
    a, b = _data()
    scale = math.log(1 / 0.07)
    got = clip_loss(torch.tensor(a), torch.tensor(b), torch.tensor(scale, dtype=torch.float64), normalize=normalize)
    assert float(got) == pytest.approx(_hand_clip(a, b, scale, normalize), rel=1e-10)


def test_clip_loss_never_normalises_behind_the_callers_back():
    a, b = _data(1)
    raw = float(clip_loss(torch.tensor(a), torch.tensor(b), 2.0, normalize=False))
    cosine = float(clip_loss(torch.tensor(a), torch.tensor(b), 2.0, normalize=True))
    assert raw != pytest.approx(cosine)
    assert raw == pytest.approx(_hand_clip(a, b, 2.0, False), rel=1e-10)


def test_atm_mix_is_099_image_plus_001_text():
    a, b = _data(2)
    _, t = _data(3)
    got = atm_mix_loss(torch.tensor(a), torch.tensor(b), torch.tensor(t), 2.659, normalize=False)
    want = 0.99 * _hand_clip(a, b, 2.659, False) + 0.01 * _hand_clip(a, t, 2.659, False)
    assert float(got) == pytest.approx(want, rel=1e-10)


def test_recon_mix_is_9_mse_plus_1_clip_on_raw_embeddings():
    a, b = _data(4)
    got = recon_mix_loss(torch.tensor(a), torch.tensor(b), 2.659, normalize=False)
    want = 9 * np.mean((a - b) ** 2) + 1 * _hand_clip(a, b, 2.659, False)
    assert float(got) == pytest.approx(want, rel=1e-10)


def test_mse_and_classification_match_hand_computation():
    a, b = _data(5)
    assert float(mse_loss(torch.tensor(a), torch.tensor(b))) == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)
    logits = a[:, :4]
    labels = np.array([0, 3, 1, 1, 2])
    want = -_log_softmax(logits, axis=1)[np.arange(5), labels].mean()
    got = classification_loss(torch.tensor(logits), torch.tensor(labels))
    assert float(got) == pytest.approx(want, rel=1e-10)


def test_shape_mismatch_is_a_toolkit_error():
    with pytest.raises(ToolkitError, match="same shape"):
        clip_loss(torch.zeros(3, 4), torch.zeros(3, 5), 1.0, normalize=True)


@pytest.mark.parametrize(
    ("parametrization", "value", "expected"),
    [("raw", math.log(1 / 0.07), math.log(1 / 0.07)), ("raw", 500.0, 500.0), ("exp", math.log(1 / 0.07), 1 / 0.07),
     ("exp", 10.0, 100.0)],
)
def test_logit_scale_parametrisations(parametrization, value, expected):
    # raw: the parameter is the multiplier itself, unclamped (ATM); exp: exp of it, clamped at 100 (open_clip).
    objective = Objective(TrainConfig(logit_scale=parametrization, logit_scale_init=value), embed_dim=4)
    assert float(objective.scale().detach()) == pytest.approx(expected, rel=1e-6)


def test_objective_uses_its_scale_and_normalisation():
    a, b = _data(6)
    cfg = TrainConfig(objective="clip", logit_scale="exp", logit_scale_init=1.0, loss_normalize=True)
    objective = Objective(cfg, embed_dim=7).double()

    class Identity(torch.nn.Module):
        def forward(self, eeg, subject_ids=None):
            return eeg

    batch = {"eeg": torch.tensor(a), "image_embeds": torch.tensor(b), "labels": torch.zeros(5), "subject_ids": None}
    loss, embeds = objective(Identity(), batch)
    assert float(loss.detach()) == pytest.approx(_hand_clip(a, b, math.e, True), rel=1e-10)
    assert torch.equal(embeds, torch.tensor(a))


def test_model_objective_calls_training_loss_and_checks_its_output():
    calls = []

    class Masked(torch.nn.Module):
        def __init__(self, out):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))
            self.out = out

        def training_loss(self, batch):
            calls.append(batch["eeg"].shape)
            return self.out(self.w)

    objective = Objective(TrainConfig(objective="model"), embed_dim=4)
    batch = {"eeg": torch.zeros(2, 3, 4)}
    loss, embeds = objective(Masked(lambda w: {"loss": w * 3, "aux": 1}), batch)
    assert float(loss.detach()) == 3.0 and embeds is None and calls == [(2, 3, 4)]
    with pytest.raises(ToolkitError, match="scalar tensor"):
        objective(Masked(lambda w: w.expand(2)), batch)
    with pytest.raises(ToolkitError, match="training_loss"):
        objective(torch.nn.Linear(2, 2), batch)


def test_classification_objective_owns_a_head():
    objective = Objective(TrainConfig(objective="classification", val_unit="images"), embed_dim=6, n_classes=3)
    assert objective.head is not None and objective.head.out_features == 3 and objective.logit_scale is None
    with pytest.raises(ToolkitError, match="at least 2 classes"):
        Objective(TrainConfig(objective="classification", val_unit="images"), embed_dim=6, n_classes=1)
