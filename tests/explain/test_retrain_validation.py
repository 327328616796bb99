"""ATM's retraining protocol (``python -m toolkit explain retrain``) recovers the simulator's ground truth.

One small NICE per 100 ms window and per region, trained on a small simulated dataset. The best window must be one
where the simulator put image information (P1 ... P300, 0-500 ms), every such window must beat every window after
500 ms (which hold none and must stay near chance), and the best region must be one of the two posterior regions
that hold most of the information (parietal and occipital, about 40% each).
"""

from __future__ import annotations

import pytest
import torch

from toolkit.bench.explain_validation import RETRAIN_TEST_SIZES, retrain_met, retrain_validation

pytestmark = [pytest.mark.xdist_group("explain-retrain"), pytest.mark.slow]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return retrain_validation(tmp_path_factory.mktemp("retrain"), seed=0, sizes=RETRAIN_TEST_SIZES, epochs=10)
    finally:
        torch.set_num_threads(previous)


def test_best_window_lies_at_the_informative_latencies(report):
    sliding = report["comparison"]["sliding"]
    assert sliding["best_is_informative"] and sliding["best_share"] >= 0.1, sliding["rows"]
    assert sliding["best"] in ("100–200 ms", "200–300 ms", "300–400 ms"), sliding["rows"]  # P1/N170 ... P300
    late = [r for r in sliding["rows"] if r["window_s"][0] >= 0.5]
    assert len(late) == 5 and all(r["share"] < 0.01 for r in late)
    assert max(r["value"] for r in late) < 0.65, sliding["rows"]  # exact 2-way accuracy, chance 0.5
    assert sliding["best_margin"] >= 0.1, sliding["rows"]
    assert sliding["spearman"] > 0.5
    assert set(report["feature_weights"]) >= {"shape", "colour", "texture", "concept"}


def test_best_region_is_posterior(report):
    keep = report["comparison"]["region_keep"]
    shares = report["comparison"]["region_shares"]
    assert {name for name, share in shares.items() if share >= 0.25} == {"parietal", "occipital"}, shares
    assert keep["best_share"] >= 0.25, keep["rows"]
    best = max(r["value"] for r in keep["rows"])
    frontal = next(r for r in keep["rows"] if r["region"] == "frontal")
    assert frontal["value"] < best - 0.1, keep["rows"]
    assert retrain_met(report)


def test_the_retraining_ran_every_condition(report):
    assert report["n_conditions"] == 1 + 10 + 5  # full, ten 100 ms windows, five regions
    assert report["full"]["2-way"] > 0.75
    assert report["command"].startswith("python -m toolkit explain retrain --config ")
