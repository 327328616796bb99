"""captum wrappers: exact attributions on a toy linear encoder, registry encoders, state restored, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from toolkit import ToolkitError
from toolkit.explain import (
    METHODS,
    TARGETS,
    MarginTarget,
    SimilarityTarget,
    attribute,
    channel_auroc,
    channel_scores,
    deeplift_problems,
    make_feature_mask,
    make_target,
)

from .conftest import CH_NAMES, N_CHANS, N_TIMES, READ_CHANNEL, TIMES, DenseReader, read_mask

RETRIEVAL = dict(index=np.arange(6), normalize=False)


def _outside(attr: np.ndarray) -> float:
    return float(np.abs(attr[:, ~read_mask()]).max())


@pytest.mark.parametrize("method", ["ig", "saliency", "occlusion", "feature_ablation"])
def test_toy_attribution_sits_where_the_model_reads(method, toy, eeg, gallery):
    # occlusion windows aligned with the read window (5 samples, stride 5); see below for the default window
    # feature ablation of every element separately (its default ablates whole channels)
    extra = {
        "occlusion": {"sliding_window_shapes": (1, 5), "strides": (1, 5)},
        "feature_ablation": {"feature_mask": np.arange(N_CHANS * N_TIMES).reshape(N_CHANS, N_TIMES),
                             "perturbations_per_eval": 100},
    }.get(method, {})
    attr = attribute(toy, eeg, method=method, image_embeds=gallery, **RETRIEVAL, **extra)
    assert attr.shape == eeg.shape and attr.dtype == np.float32
    assert _outside(attr) == 0.0  # nothing outside channel 2, samples 10-19 ...
    assert np.abs(attr[:, read_mask()]).sum() > 0  # ... and something inside
    mask = np.zeros(N_CHANS, dtype=bool)
    mask[READ_CHANNEL] = True
    assert channel_auroc(channel_scores(attr), mask) == 1.0


def test_integrated_gradients_is_exact_on_a_linear_model(toy, eeg, gallery):
    attr = attribute(toy, eeg, method="ig", image_embeds=gallery, n_steps=8, **RETRIEVAL)
    x = torch.as_tensor(eeg)
    with torch.no_grad():
        emb, emb0 = toy(x), toy(torch.zeros_like(x))
    g = torch.as_tensor(gallery)
    expected = (emb * g).sum(1) - (emb0 * g).sum(1)  # completeness: sum of attributions = f(x) - f(baseline)
    np.testing.assert_allclose(attr.reshape(6, -1).sum(1), expected.numpy(), rtol=1e-4, atol=1e-5)
    # x * w on the read window exactly
    w = toy.proj.weight.detach().numpy().T @ gallery.T  # (10, 6): weight of each sample for each trial's target
    np.testing.assert_allclose(attr[:, READ_CHANNEL, 10:20], eeg[:, READ_CHANNEL, 10:20] * w.T, rtol=1e-4, atol=1e-6)


def test_baselines_mean_and_custom(toy, eeg, gallery):
    mean = eeg.mean(0)
    a_mean = attribute(toy, eeg, method="ig", image_embeds=gallery, baselines="mean", n_steps=4, **RETRIEVAL)
    a_custom = attribute(toy, eeg, method="ig", image_embeds=gallery, baselines=mean, n_steps=4, **RETRIEVAL)
    np.testing.assert_allclose(a_mean, a_custom, atol=1e-6)
    per_trial = attribute(toy, eeg, method="ig", image_embeds=gallery, baselines=eeg, n_steps=4, **RETRIEVAL)
    assert np.abs(per_trial).max() == 0.0  # baseline = input: nothing to attribute


def test_feature_ablation_default_ablates_channels(toy, eeg, gallery):
    attr = attribute(toy, eeg, method="feature_ablation", image_embeds=gallery, **RETRIEVAL)
    assert np.abs(np.delete(attr, READ_CHANNEL, axis=1)).max() == 0.0
    assert np.ptp(attr[:, READ_CHANNEL], axis=1).max() == 0.0 and np.abs(attr[:, READ_CHANNEL]).min() > 0


def test_feature_ablation_with_group_window_mask(toy, eeg, gallery):
    fmask = make_feature_mask(CH_NAMES, TIMES, groups={"occipital": ["Oz", "O1", "O2"], "rest": CH_NAMES[:2]},
                              windows=[(0.0, 0.1), (0.1, 0.2)])
    attr = attribute(toy, eeg, method="feature_ablation", image_embeds=gallery, feature_mask=fmask, **RETRIEVAL)
    cell = fmask.mask == fmask.labels.index("occipital @ 100–200 ms")
    assert np.abs(attr[:, cell]).min() > 0 and np.abs(attr[:, ~cell]).max() == 0
    # every element of a feature holds the same value
    assert np.ptp(attr[0][cell]) == 0


def test_occlusion_default_window_spreads_only_by_its_width(toy, eeg, gallery):
    attr = attribute(toy, eeg, method="occlusion", image_embeds=gallery, **RETRIEVAL)  # (1, 5) window, stride 2
    assert np.abs(np.delete(attr, READ_CHANNEL, axis=1)).max() == 0.0
    reach = np.zeros(N_TIMES, dtype=bool)
    reach[10 - 4 : 20 + 4] = True  # a 5-sample window touching the read samples covers at most 4 more
    assert np.abs(attr[:, READ_CHANNEL, ~reach]).max() == 0.0
    assert np.abs(attr[:, READ_CHANNEL, 10:20]).min() > 0


def test_deeplift_on_supported_model_and_refusal_on_functional_ones(dense, eeg, gallery):
    args = (torch.arange(6),)
    assert deeplift_problems(make_target("similarity", dense, image_embeds=gallery, normalize=False),
                             torch.as_tensor(eeg), args) == []
    attr = attribute(dense, eeg, method="deeplift", image_embeds=gallery, **RETRIEVAL)
    assert _outside(attr) == 0.0
    dist = np.random.default_rng(3).standard_normal((4, N_CHANS, N_TIMES)).astype(np.float32)
    shap = attribute(dense, eeg, method="deeplift_shap", image_embeds=gallery, baselines=dist, **RETRIEVAL)
    assert shap.shape == eeg.shape and _outside(shap) == 0.0
    # cosine similarity normalises the embedding: a non-linearity DeepLift cannot see
    with pytest.raises(ToolkitError, match=r"normalize.*method='ig'"):
        attribute(dense, eeg, method="deeplift", image_embeds=gallery, index=np.arange(6), normalize=True)


class _TwiceReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(N_TIMES, 4)
        self.act = nn.ReLU()

    def forward(self, eeg):
        return self.act(self.act(self.lin(eeg[:, 0])))


def test_deeplift_refuses_reused_layers(eeg, gallery):
    with pytest.raises(ToolkitError, match=r"more than once.*act \(ReLU, x2\)"):
        attribute(_TwiceReLU(), eeg, method="deeplift", image_embeds=gallery[:, :4], **RETRIEVAL)


def test_registry_encoders(tiny_encoder, eeg):
    gallery = np.random.default_rng(2).standard_normal((6, 16)).astype(np.float32)
    tiny_encoder.train()
    flags = [p.requires_grad for p in tiny_encoder.parameters()]
    attr = attribute(tiny_encoder, eeg, method="ig", target="margin", image_embeds=gallery, index=np.arange(6),
                     normalize=True, subject_ids=np.array([1, 2, 1, 2, 1, 2]), n_steps=16)
    assert attr.shape == eeg.shape and np.isfinite(attr).all() and np.abs(attr).sum() > 0
    assert tiny_encoder.training and [p.requires_grad for p in tiny_encoder.parameters()] == flags
    with pytest.raises(ToolkitError, match="elu"):  # functional ELU/GELU inside TSConv and the projector
        attribute(tiny_encoder, eeg, method="deeplift", image_embeds=gallery, index=np.arange(6), normalize=False)
    approx = attribute(tiny_encoder, eeg[:2], method="deeplift", image_embeds=gallery, index=[0, 1],
                       normalize=False, strict=False)
    assert np.isfinite(approx).all()


def test_ig_completeness_on_atm(tiny_encoder, eeg):
    gallery = np.random.default_rng(2).standard_normal((6, 16)).astype(np.float32)
    target = SimilarityTarget(tiny_encoder, gallery, normalize=True)
    attr = attribute(tiny_encoder, eeg[:2], method="ig", target=target, index=[0, 1], n_steps=64)
    x = torch.as_tensor(eeg[:2])
    with torch.no_grad():
        delta = target(x, torch.tensor([0, 1])) - target(torch.zeros_like(x), torch.tensor([0, 1]))
    np.testing.assert_allclose(attr.reshape(2, -1).sum(1), delta.numpy(), rtol=0.05, atol=1e-3)


def test_margin_target_values(toy, eeg, gallery):
    target = MarginTarget(toy, gallery, normalize=False)
    with torch.no_grad():
        sims = toy(torch.as_tensor(eeg)) @ torch.as_tensor(gallery).T
        value = target(torch.as_tensor(eeg), torch.arange(6))
    others = sims.clone()
    others[torch.arange(6), torch.arange(6)] = -torch.inf
    np.testing.assert_allclose(value, sims.diagonal() - others.max(1).values, rtol=1e-6)
    soft = MarginTarget(toy, gallery, normalize=False, reduce="logsumexp", temperature=0.01)
    with torch.no_grad():
        np.testing.assert_allclose(soft(torch.as_tensor(eeg), torch.arange(6)), value, atol=0.05)
    rebound = target.rebind(DenseReader())
    assert rebound.model is not toy and target.model is toy
    assert torch.equal(rebound.image_embeds, target.image_embeds)


def test_logit_target_for_classifiers(eeg):
    clf = nn.Sequential(nn.Flatten(), nn.Linear(N_CHANS * N_TIMES, 3))
    attr = attribute(clf, eeg, method="saliency", target="logit", index=2, abs=False)
    expected = clf[1].weight[2].detach().numpy().reshape(N_CHANS, N_TIMES)
    np.testing.assert_allclose(attr[0], expected, rtol=1e-6)
    with pytest.raises(ToolkitError, match="class index"):
        attribute(clf, eeg, method="ig", target="logit")
    with pytest.raises(ToolkitError, match="3 classes"):
        attribute(clf, eeg, method="ig", target="logit", index=5)


def test_logit_target_with_a_separate_head(toy, eeg):
    head = nn.Linear(6, 3)
    attr = attribute(toy, eeg, method="saliency", target=make_target("logit", toy, head=head), index=1, abs=False)
    expected = (head.weight[1].detach() @ toy.proj.weight.detach()).numpy()  # d logit_1 / d x on the read window
    np.testing.assert_allclose(attr[0, READ_CHANNEL, 10:20], expected, rtol=1e-5)
    assert _outside(attr) == 0.0
    rebound = make_target("logit", toy, head=head).rebind(DenseReader())
    assert rebound.head is head


class _NoGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(N_TIMES, 6)

    def forward(self, eeg):
        with torch.no_grad():
            return self.lin(eeg[:, 0])


class _Numpy(nn.Module):
    def forward(self, eeg):
        return eeg.detach().numpy()[:, 0, :6]


def test_bad_inputs(toy, eeg, gallery):
    with pytest.raises(ToolkitError, match="known methods: " + ", ".join(METHODS)):
        attribute(toy, eeg, method="gradcam", image_embeds=gallery, **RETRIEVAL)
    with pytest.raises(ToolkitError, match="known targets: " + ", ".join(TARGETS)):
        attribute(toy, eeg, target="probability", image_embeds=gallery, **RETRIEVAL)
    with pytest.raises(ToolkitError, match=r"baselines has shape \(3, 8, 50\) but eeg is \(6, 8, 50\)"):
        attribute(toy, eeg, image_embeds=gallery, baselines=np.zeros((3, N_CHANS, N_TIMES)), **RETRIEVAL)
    with pytest.raises(ToolkitError, match="baselines has shape"):
        attribute(toy, eeg, image_embeds=gallery, baselines=np.zeros((N_CHANS, 7)), **RETRIEVAL)
    with pytest.raises(ToolkitError, match="takes no baselines"):
        attribute(toy, eeg, method="saliency", image_embeds=gallery, baselines="zeros", **RETRIEVAL)
    with pytest.raises(ToolkitError, match="baseline distribution"):
        attribute(toy, eeg, method="deeplift_shap", image_embeds=gallery, **RETRIEVAL)
    with pytest.raises(ToolkitError, match="with one trial"):
        attribute(toy, eeg[:1], image_embeds=gallery, baselines="mean", index=0, normalize=False)
    with pytest.raises(ToolkitError, match="does not take n_stepz; its options are"):
        attribute(toy, eeg, image_embeds=gallery, n_stepz=3, **RETRIEVAL)
    with pytest.raises(ToolkitError, match=r"normalize=True .* normalize=False"):
        attribute(toy, eeg, image_embeds=gallery, index=np.arange(6))
    with pytest.raises(ToolkitError, match="needs index="):
        attribute(toy, eeg, image_embeds=gallery, normalize=True)
    with pytest.raises(ToolkitError, match="gallery has 6 items"):
        attribute(toy, eeg, image_embeds=gallery, index=np.arange(6) + 1, normalize=True)
    with pytest.raises(ToolkitError, match="add a batch dimension"):
        attribute(toy, eeg[0], image_embeds=gallery, index=0, normalize=True)
    with pytest.raises(ToolkitError, match="feature_mask must be an integer array"):
        attribute(toy, eeg, method="feature_ablation", image_embeds=gallery, feature_mask=np.zeros(3), **RETRIEVAL)


def test_models_without_gradients(eeg, gallery):
    model = _NoGrad()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ToolkitError, match=r"no gradient.*frozen.*no_grad.*occlusion, feature_ablation"):
        attribute(model, eeg, method="ig", image_embeds=gallery, **RETRIEVAL)
    # perturbation methods still work on it
    assert attribute(model, eeg, method="occlusion", image_embeds=gallery, **RETRIEVAL).shape == eeg.shape
    with pytest.raises(ToolkitError, match="no gradient") as info:
        attribute(_NoGrad(), eeg, method="saliency", image_embeds=gallery, **RETRIEVAL)
    assert "frozen" not in str(info.value)  # trainable parameters: only the no_grad is at fault
    with pytest.raises(ToolkitError, match=r"returned a ndarray, not a torch\.Tensor"):
        attribute(_Numpy(), eeg, method="occlusion", image_embeds=gallery, **RETRIEVAL)
    with pytest.raises(ToolkitError, match=r"must be a torch\.nn\.Module"):
        attribute(lambda x: x, eeg, image_embeds=gallery, **RETRIEVAL)
