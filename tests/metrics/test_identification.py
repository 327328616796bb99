"""Two-way identification and correlation distance."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.metrics import (
    correlation_distance,
    identification_from_correlation,
    pearson_matrix,
    two_way_identification,
)


def test_equal_features_identify_perfectly():
    feats = np.random.default_rng(0).standard_normal((20, 50))
    assert two_way_identification(feats, feats) == 1.0
    np.testing.assert_array_equal(two_way_identification(feats, feats, per_item=True), np.ones(20))


def test_random_features_are_at_chance():
    rng = np.random.default_rng(1)
    score = two_way_identification(rng.standard_normal((300, 64)), rng.standard_normal((300, 64)))
    assert abs(score - 0.5) < 0.05


def test_hand_computed_correlation_matrix():
    # r[i, j] = corr(GT_i, rec_j). Column 0: 0.1 and 0.4 < 0.9 -> 1; column 1: 0.2 < 0.3 but 0.8 > 0.3 -> 1/2;
    # column 2: 0.5 and 0.6 < 0.7 -> 1.
    r = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.6], [0.4, 0.8, 0.7]])
    np.testing.assert_allclose(identification_from_correlation(r, per_item=True), [1.0, 0.5, 1.0])
    assert identification_from_correlation(r) == pytest.approx(2.5 / 3)


def test_hand_computed_features_with_ties():
    # One-hot vectors: corr(e_i, e_i) = 1 and corr(e_i, e_j) = -0.5. Reconstructions 0 and 1 are swapped: their
    # own correlation (-0.5) ties with one other ground truth and loses to the other -> 0; reconstruction 2 -> 1.
    gt = np.eye(3)
    rec = gt[[1, 0, 2]]
    np.testing.assert_allclose(pearson_matrix(gt, rec), np.where(np.eye(3)[:, [1, 0, 2]] == 1, 1.0, -0.5))
    np.testing.assert_allclose(two_way_identification(gt, rec, per_item=True), [0.0, 0.0, 1.0])
    assert two_way_identification(gt, rec) == pytest.approx(1 / 3)


def test_pearson_matrix_matches_numpy_across_chunks():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 20000)).astype(np.float32)  # more columns than one chunk
    b = rng.standard_normal((4, 20000)).astype(np.float32) + 0.3 * a[:4]
    expected = np.corrcoef(a.astype(np.float64), b.astype(np.float64))[:5, 5:]
    np.testing.assert_allclose(pearson_matrix(a, b), expected, atol=1e-10)


def test_correlation_distance_matches_scipy_and_is_zero_for_identical():
    from scipy.spatial.distance import correlation

    rng = np.random.default_rng(3)
    gt = rng.standard_normal((6, 2, 4, 4))  # feature maps are flattened per item
    rec = gt + rng.standard_normal(gt.shape)
    expected = [correlation(g.ravel(), r.ravel()) for g, r in zip(gt, rec)]
    np.testing.assert_allclose(correlation_distance(gt, rec, per_pair=True), expected, atol=1e-12)
    assert correlation_distance(gt, rec) == pytest.approx(np.mean(expected))
    assert correlation_distance(gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert correlation_distance(gt, -gt) == pytest.approx(2.0)


def test_constant_features(caplog):
    gt = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [3.0, 1.0, 2.0]])
    rec = gt.copy()
    dist = correlation_distance(gt, rec, per_pair=True)
    assert np.isnan(dist[1]) and dist[0] == pytest.approx(0.0)
    assert correlation_distance(gt, rec) == pytest.approx(0.0)
    # The constant item cannot be identified (NaN comparisons fail); the others still can.
    np.testing.assert_allclose(two_way_identification(gt, rec, per_item=True), [0.5, 0.0, 0.5])
    assert "undefined" in caplog.text


def test_torch_features_are_accepted():
    torch = pytest.importorskip("torch")
    feats = torch.randn(4, 8)
    assert two_way_identification(feats, feats) == 1.0


@pytest.mark.parametrize(
    ("gt", "rec", "match"),
    [
        (np.zeros((3, 4)), np.zeros((2, 4)), "3 ground truths but 2 reconstructions"),
        (np.ones((3, 4)), np.ones((3, 5)), "4 features per item"),
        (np.ones((1, 4)), np.ones((1, 4)), "at least 2"),
        (np.full((3, 4), np.nan), np.ones((3, 4)), "NaN or Inf"),
        (np.ones(4), np.ones(4), "shape"),
        (np.ones((0, 4)), np.ones((0, 4)), "empty"),
        (np.array([["a", "b"], ["c", "d"]]), np.ones((2, 2)), "dtype"),
    ],
)
def test_bad_features(gt, rec, match):
    with pytest.raises(ToolkitError, match=match):
        two_way_identification(gt, rec)


def test_bad_correlation_matrix():
    with pytest.raises(ToolkitError, match="square"):
        identification_from_correlation(np.ones((2, 3)))
