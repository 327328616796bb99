"""Sanity checks: cascading randomisation decorrelates maps, label randomisation, similarity measures."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.explain import (
    SimilarityTarget,
    cascading_randomization,
    label_randomization,
    map_similarity,
    randomization_order,
)

from .conftest import DenseReader

KW = dict(method="ig", index=np.arange(6), normalize=False, n_steps=8, progress=False)


def test_similarity_measures(eeg):
    same = map_similarity(eeg, eeg)
    for values in same.values():
        np.testing.assert_allclose(values, 1.0)
    flipped = map_similarity(eeg, -eeg)
    np.testing.assert_allclose(flipped["spearman"], -1.0)
    np.testing.assert_allclose(flipped["spearman_abs"], 1.0)
    noise = map_similarity(eeg, np.random.default_rng(9).standard_normal(eeg.shape))
    assert np.abs(noise["spearman"]).max() < 0.2 and noise["ssim"].max() < 0.3
    assert np.isnan(map_similarity(eeg, np.zeros_like(eeg))["spearman"]).all()
    with pytest.raises(ToolkitError, match="same trials"):
        map_similarity(eeg, eeg[:2])


def test_cascade_order_runs_from_output_to_input(dense, tiny_encoder):
    assert randomization_order(dense) == ["out", "hidden"]
    order = randomization_order(tiny_encoder)
    assert order[:3] == ["projector.norm", "projector.residual", "projector.linear"]
    assert order.index("tsconv.pointwise") < order.index("tsconv.temporal")  # used without calling the layer
    if tiny_encoder.name == "atm-s":
        assert order[-2:] == ["value_embedding", ""]  # "" = the shared subject token, held by the model


def test_cascading_randomisation_decorrelates_monotonically(eeg, gallery):
    dense = DenseReader(masked=False)  # reads the whole input, so its maps have structure everywhere
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    kw = {**KW, "method": "saliency"}
    kw.pop("n_steps")
    result = cascading_randomization(dense, eeg, image_embeds=gallery, keep_maps=True, **kw)
    assert [s["layer"] for s in result.steps] == ["out", "hidden"]
    for measure in ("spearman_abs", "ssim"):
        curve = result.curve(measure)
        assert curve[0] < 0.5 and curve[1] < curve[0] and curve[1] < 0.1  # falls at every step
    assert len(result.maps) == 3 and result.steps[1]["randomized"] == ["out", "hidden"]
    for k, v in dense.state_dict().items():  # the model itself is untouched
        assert np.array_equal(v.numpy(), before[k].numpy())
    again = cascading_randomization(dense, eeg, image_embeds=gallery, **kw)
    assert again.to_dict() == result.to_dict()  # seeded


def test_integrated_gradients_keeps_the_input_after_randomisation(eeg, gallery):
    # Adebayo et al.: gradient x input maps keep the input's own structure when the model is randomised, so the
    # signed maps decorrelate while their magnitudes stay similar.
    result = cascading_randomization(DenseReader(masked=False), eeg, image_embeds=gallery, **KW)
    assert abs(result.curve("spearman")[-1]) < 0.1
    assert result.curve("spearman_abs")[-1] > 0.3


def test_cascade_with_target_object_and_explicit_layers(dense, eeg, gallery):
    target = SimilarityTarget(dense, gallery, normalize=False)
    result = cascading_randomization(dense, eeg, target=target, layers=["hidden"], method="saliency",
                                     index=np.arange(6), progress=False)
    assert len(result.steps) == 1 and result.steps[0]["layer"] == "hidden"
    with pytest.raises(ToolkitError, match=r"hold no parameters.*'hidden', 'out'"):
        cascading_randomization(dense, eeg, target=target, layers=["act"], index=np.arange(6))


def test_label_randomisation_compares_two_models(dense, eeg, gallery):
    other = DenseReader(seed=5, masked=False)  # stands in for a model that learned nothing about the window
    report = label_randomization(dense, other, eeg, image_embeds=gallery, **KW)
    assert set(report) >= {"spearman", "spearman_abs", "ssim", "per_trial"}
    assert report["spearman_abs"] < 0.9
    same = label_randomization(dense, DenseReader(seed=0), eeg, image_embeds=gallery, **KW)
    assert same["spearman"] == pytest.approx(1.0)
    with pytest.raises(ToolkitError, match="model itself"):
        label_randomization(dense, dense, eeg, image_embeds=gallery, **KW)
