"""k-way retrieval metrics: ranks, exact and sampled k-way accuracy, intervals, tables and bad input."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.retrieval import (
    RetrievalResult,
    draw_distractors,
    evaluate_retrieval,
    kway_exact,
    kway_sampled,
    ranks,
    render_result,
    render_summary,
    similarity,
    summarize_subjects,
    summary_to_dict,
)
from toolkit.retrieval.kway import _better_mask, _sampled_from_better

from .test_protocol import make_card

# Hand-made case: one-hot gallery, raw dot product, so score[q, j] = queries[q, j].
GALLERY = np.eye(5)
QUERIES = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0],  # target 0: best                              -> rank 0
        [0.0, 0.5, 0.9, 0.0, 0.0],  # target 1: item 2 above                       -> rank 1
        [0.2, 0.2, 0.1, 0.3, 0.3],  # target 2: every other item above            -> rank 4
        [0.0, 0.0, 0.0, 0.5, 0.5],  # target 3: tied with item 4 (counts against) -> rank 1
        [0.4, 0.1, 0.3, 0.2, 0.35],  # target 4: item 0 above                      -> rank 1
    ]
)
HAND_RANKS = [0, 1, 4, 1, 1]


def noisy_pair(n: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((n, dim))
    return gallery + noise * rng.standard_normal((n, dim)), gallery


def evaluate(queries, gallery, targets=None, **kwargs):
    kwargs.setdefault("normalize", True)
    kwargs.setdefault("n_boot", 200)
    kwargs.setdefault("protocol", make_card())
    return evaluate_retrieval(queries, gallery, targets, **kwargs)


# ============================================================================================ scores, ranks
def test_hand_computed_ranks_with_conservative_ties():
    assert ranks(QUERIES, GALLERY, normalize=False).tolist() == HAND_RANKS
    assert ranks(QUERIES, GALLERY, np.arange(5), normalize=False).tolist() == HAND_RANKS


def test_constant_scores_get_the_worst_rank():
    gallery = np.ones((6, 3))
    assert ranks(np.ones((6, 3)), gallery, normalize=True).tolist() == [5] * 6


def test_similarity_cosine_and_dot():
    queries = np.array([[3.0, 4.0]])
    gallery = np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(similarity(queries, gallery, normalize=False), [[3.0, 8.0]])
    np.testing.assert_allclose(similarity(queries, gallery, normalize=True), [[0.6, 0.8]])


def test_normalize_changes_the_ranking_when_norms_differ():
    gallery = np.array([[1.0, 0.0], [10.0, 1.0]])  # the wrong item is long and nearly aligned
    queries = np.array([[1.0, 0.0]])
    assert ranks(queries, gallery, [0], normalize=True).tolist() == [0]
    assert ranks(queries, gallery, [0], normalize=False).tolist() == [1]


def test_positive_logit_scale_leaves_ranks_unchanged():
    queries, gallery = noisy_pair(30, 8, 1.0, seed=1)
    base = ranks(queries, gallery, normalize=False)
    np.testing.assert_array_equal(ranks(queries * 37.5, gallery, normalize=False), base)
    np.testing.assert_array_equal(ranks(queries * 0.01, gallery, normalize=True), ranks(queries, gallery,
                                                                                         normalize=True))


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    queries, gallery = noisy_pair(12, 6, 0.5, seed=2)
    expected = ranks(queries, gallery, normalize=True)
    got = ranks(torch.tensor(queries, dtype=torch.float32), torch.tensor(gallery), torch.arange(12),
                normalize=True)
    np.testing.assert_array_equal(got, expected)
    bf16 = ranks(torch.tensor(gallery).to(torch.bfloat16), torch.tensor(gallery).to(torch.bfloat16),
                 normalize=True)
    assert bf16.tolist() == [0] * 12


# ================================================================================================ exact k-way
def test_exact_kway_hand_values():
    # N = 5 (4 others). rank 1, 2-way: the one distractor avoids the better item with probability 3/4.
    r = np.array(HAND_RANKS)
    np.testing.assert_allclose(kway_exact(r, 5, k=2), [1.0, 0.75, 0.0, 0.75, 0.75])
    # rank 1, 3-way top-1: both distractors from the 3 worse items: C(3,2)/C(4,2) = 1/2.
    np.testing.assert_allclose(kway_exact(np.array([1]), 5, k=3), [0.5])
    # rank 2, 3-way top-2: fail only if both better items are drawn: 1 - 1/C(4,2) = 5/6.
    np.testing.assert_allclose(kway_exact(np.array([2]), 5, k=3, top=2), [5 / 6])


def test_exact_kway_matches_brute_force_enumeration():
    n = 7
    others = n - 1
    for k in range(2, n + 1):
        for m in range(1, k):
            for r in range(others + 1):
                better = set(range(r))  # which others beat the true item does not matter, only how many
                subsets = list(itertools.combinations(range(others), k - 1))
                brute = np.mean([len(better.intersection(s)) < m for s in subsets])
                got = kway_exact(np.array([r]), n, k=k, top=m)[0]
                assert got == pytest.approx(brute, abs=1e-12), (k, m, r)


def test_k_equals_gallery_size_is_full_gallery_accuracy():
    queries, gallery = noisy_pair(40, 8, 1.2, seed=3)
    res = evaluate(queries, gallery, ks=(2, 40), top=(1, 5))
    for m in (1, 5):
        full = res.full(m)
        score = res.score(40, m)
        assert score.exact == full.value
        assert score.sampled_mean == full.value
        assert score.sampled_interval == (full.value, full.value)
        assert np.all(score.draws == full.value)
        assert full.value == np.mean(res.ranks < m)


def test_evaluate_on_hand_case():
    res = evaluate(QUERIES, GALLERY, normalize=False, ks=(2, 5), top=(1, 2), n_draws=10)
    assert res.ranks.tolist() == HAND_RANKS
    assert res.score(2).exact == pytest.approx(3.25 / 5)
    assert res.score(5, 1).exact == pytest.approx(1 / 5)
    assert res.score(5, 2).exact == pytest.approx(4 / 5)
    assert res.full(1).value == pytest.approx(0.2)
    assert res.median_rank == 2.0  # 1-based: ranks 1, 2, 5, 2, 2
    assert res.mean_rank == pytest.approx((1 + 2 + 5 + 2 + 2) / 5)
    assert res.mrr == pytest.approx((1 + 0.5 + 0.2 + 0.5 + 0.5) / 5)
    assert [s.label for s in res.kway] == ["2-way top-1", "5-way top-1", "5-way top-2"]
    assert [s.label for s in res.full_gallery] == ["full top-1", "full top-5"]  # top-10 > gallery size


# ============================================================================================== sampled draws
def test_sampled_draws_equal_explicit_distractor_sets():
    queries, gallery = noisy_pair(9, 5, 1.0, seed=4)
    targets = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])
    scores = similarity(queries, gallery, normalize=True)
    sets = draw_distractors(targets, 9, n_draws=7, seed=11)
    assert sets.shape == (9, 7, 8)
    for k, m in ((2, 1), (4, 1), (4, 2), (9, 3)):
        drawn = sets[:, :, : k - 1]
        true = scores[np.arange(9), targets][:, None, None]
        n_above = (np.take_along_axis(scores[:, None, :], drawn, axis=-1) >= true).sum(axis=-1)
        expected = (n_above < m).mean(axis=0)
        got = kway_sampled(queries, gallery, targets, normalize=True, ks=(k,), top=(m,), n_draws=7, seed=11)
        np.testing.assert_allclose(got[0, 0], expected)


def test_distractor_sets_are_uniform_and_exclude_the_target():
    sets = draw_distractors(np.array([2]), 6, n_draws=6000, seed=0)
    assert (sets != 2).all()
    assert all(len(set(row)) == 5 for row in sets[0, :50])  # an ordering of the 5 others, no repeats
    counts = np.bincount(sets[0, :, :2].ravel(), minlength=6)  # 3-way sets: 2 of 5 others, 2400 each expected
    assert counts[2] == 0
    assert np.all(np.abs(counts[[0, 1, 3, 4, 5]] - 2400) < 200)


def test_sampled_converges_to_exact():
    queries, gallery = noisy_pair(40, 8, 1.5, seed=5)
    r = ranks(queries, gallery, normalize=True)
    draws = kway_sampled(queries, gallery, normalize=True, ks=(2, 10), top=(1,), n_draws=4000, seed=1)
    for i, k in enumerate((2, 10)):
        exact = kway_exact(r, 40, k=k).mean()
        few, many = draws[i, 0, :10].mean(), draws[i, 0].mean()
        assert abs(many - exact) < 0.006
        assert abs(many - exact) <= abs(few - exact) + 0.006
        assert draws[i, 0].std() > 0  # real sampling noise at this size


def test_determinism_by_seed_and_difference_across_seeds():
    queries, gallery = noisy_pair(50, 8, 1.5, seed=6)
    a = evaluate(queries, gallery, ks=(2, 10), seed=3)
    b = evaluate(queries, gallery, ks=(2, 10), seed=3)
    c = evaluate(queries, gallery, ks=(2, 10), seed=4)
    assert a.to_dict(detail=True) == b.to_dict(detail=True)
    assert not np.array_equal(a.score(10).draws, c.score(10).draws)
    assert a.score(10).exact_ci != c.score(10).exact_ci  # bootstrap reseeded too
    assert a.score(10).exact == c.score(10).exact  # the exact value has no randomness


def test_draws_do_not_depend_on_other_ks_or_chunking():
    queries, gallery = noisy_pair(30, 8, 1.5, seed=7)
    alone = kway_sampled(queries, gallery, normalize=True, ks=(10,), top=(1,), n_draws=20, seed=2)
    among = kway_sampled(queries, gallery, normalize=True, ks=(2, 10, 30), top=(1,), n_draws=20, seed=2)
    np.testing.assert_array_equal(alone[0], among[1])
    better = _better_mask(similarity(queries, gallery, normalize=True), np.arange(30))
    chunked = _sampled_from_better(better, (10,), (1,), 20, 2, chunk_elements=1)
    np.testing.assert_array_equal(chunked, alone)


def test_same_seed_gives_same_distractors_for_different_encoders():
    # Common random numbers: a better encoder never loses a draw that a worse one wins on the same sets.
    queries, gallery = noisy_pair(30, 8, 2.0, seed=8)
    worse = kway_sampled(queries, gallery, normalize=True, ks=(4,), n_draws=50, seed=9)
    perfect = kway_sampled(gallery, gallery, normalize=True, ks=(4,), n_draws=50, seed=9)
    assert np.all(perfect >= worse)
    np.testing.assert_array_equal(draw_distractors(np.arange(30), 30, n_draws=3, seed=9),
                                  draw_distractors(np.arange(30), 30, n_draws=3, seed=9))


# ========================================================================================== end-to-end cases
def test_perfect_embeddings_score_100_percent():
    _, gallery = noisy_pair(60, 16, 0.0, seed=9)
    res = evaluate(gallery.copy(), gallery, ks=(2, 4, 10, 50), n_draws=20)
    for score in res.kway:
        assert score.exact == 1.0 and score.sampled_mean == 1.0 and score.exact_ci == (1.0, 1.0)
    assert all(item.value == 1.0 for item in res.full_gallery)
    assert res.median_rank == 1.0 and res.mrr == 1.0


def test_random_embeddings_score_at_chance():
    rng = np.random.default_rng(10)
    queries, gallery = rng.standard_normal((200, 32)), rng.standard_normal((200, 32))
    res = evaluate(queries, gallery, n_draws=50, n_boot=500, seed=1)
    assert [s.k for s in res.kway if s.top == 1] == [2, 4, 10, 50, 100, 200]
    for score in res.kway:
        lo, hi = score.exact_ci
        assert lo <= score.chance <= hi, score.label
        assert lo <= score.exact <= hi
        assert score.sampled_interval[0] <= score.sampled_mean <= score.sampled_interval[1]
    assert 60 < res.median_rank < 140


def test_text_gallery_classification_with_shared_targets():
    # 5 concepts described by text prompts, 4 single trials per concept (queries share targets).
    rng = np.random.default_rng(11)
    text_embeds = rng.standard_normal((5, 12))
    targets = np.repeat(np.arange(5), 4)
    trials = text_embeds[targets] + 0.3 * rng.standard_normal((20, 12))
    card = make_card(gallery="text prompts 'This picture is {concept}', 5 concepts", gallery_kind="text",
                     repetitions_averaged=1)
    res = evaluate(trials, text_embeds, targets, ks=(2, 5), top=(1,), protocol=card)
    assert res.task == "classification" and res.to_dict()["task"] == "classification"
    assert res.n_queries == 20 and res.n_targets == 5 and res.gallery_size == 5
    np.testing.assert_array_equal(res.ranks, ranks(trials, text_embeds, targets, normalize=True))
    assert res.score(5).exact == np.mean(res.ranks == 0)
    assert "CI over targets" in render_result(res)
    assert res.protocol.gallery_size == 5 and res.protocol.embedding_normalize is True


def test_shared_targets_bootstrap_resamples_whole_targets():
    # Two targets, one always right (10 trials) and one always wrong (10 trials): resampling whole targets can
    # only give 0, 1/2 or 1, whereas resampling trials would give many values in between.
    gallery = np.array([[1.0, 0.0], [0.0, 1.0]])
    targets = np.repeat([0, 1], 10)
    queries = np.array([[1.0, 0.0]] * 20)
    res = evaluate(queries, gallery, targets, ks=(2,), top=(1,), n_draws=5, n_boot=400)
    assert res.score(2).exact == 0.5
    assert res.score(2).exact_ci == (0.0, 1.0)


def test_result_dict_is_json_and_round_trips():
    queries, gallery = noisy_pair(30, 8, 1.0, seed=12)
    res = evaluate(queries, gallery, ks=(2, 4, 10), n_draws=10)
    data = json.loads(json.dumps(res.to_dict(detail=True)))
    assert data["protocol"]["distractor_seed"] == 0 and data["protocol"]["n_draws"] == 10
    assert len(data["ranks_zero_based"]) == 30 and len(data["kway"][0]["draws"]) == 10
    back = RetrievalResult.from_dict(data)
    assert back == res
    np.testing.assert_array_equal(back.ranks, res.ranks)
    assert "ranks_zero_based" not in res.to_dict()
    with pytest.raises(ToolkitError, match="lacks the key"):
        RetrievalResult.from_dict({k: v for k, v in data.items() if k != "kway"})


def test_result_table_columns_and_values():
    queries, gallery = noisy_pair(30, 8, 1.0, seed=13)
    res = evaluate(queries, gallery, ks=(2, 10), n_draws=10)
    table = res.table()
    assert list(table.columns) == ["kind", "k", "top", "chance", "value", "ci_low", "ci_high", "sampled_mean",
                                   "sampled_low", "sampled_high"]
    assert table.loc["10-way top-5", "value"] == res.score(10, 5).exact
    assert table.loc["full top-1", "value"] == res.full(1).value
    assert table.loc["median rank", "value"] == res.median_rank
    assert (table["ci_low"].dropna() <= table.loc[table["ci_low"].notna(), "value"] + 1e-12).all()
    text = res.to_text()
    assert "10-way top-5" in text and "median rank (1 = best)" in text


def test_per_subject_summary():
    results = {}
    for i, sub in enumerate(("sub-01", "sub-02", "sub-03")):
        queries, gallery = noisy_pair(40, 8, 0.8 + 0.4 * i, seed=20 + i)
        results[sub] = evaluate(queries, gallery, ks=(2, 10, 40), n_draws=10,
                                protocol=make_card(subjects=(sub,), training_seed=i, config_hash=f"h{i}"))
    summary = summarize_subjects(results)
    assert list(summary.index) == ["sub-01", "sub-02", "sub-03", "mean", "std", "ci_low", "ci_high"]
    values = [results[s].score(10).exact for s in results]
    assert summary.at["mean", "10-way top-1"] == pytest.approx(np.mean(values))
    assert summary.at["std", "10-way top-1"] == pytest.approx(np.std(values, ddof=1))
    assert summary.at["ci_low", "10-way top-1"] < np.mean(values) < summary.at["ci_high", "10-way top-1"]
    assert summary.at["sub-02", "median rank"] == results["sub-02"].median_rank
    assert summary.attrs["protocol"]["subjects"] == ["sub-01", "sub-02", "sub-03"]
    assert "training seeds per subject" in summary.attrs["protocol"]["notes"]
    sampled = summarize_subjects(results, value="sampled")
    assert sampled.at["sub-01", "2-way top-1"] == results["sub-01"].score(2).sampled_mean
    data = json.loads(json.dumps(summary_to_dict(summary)))
    assert data["mean"]["10-way top-1"] == pytest.approx(np.mean(values))
    assert set(data["subjects"]) == {"sub-01", "sub-02", "sub-03"}
    md = render_summary(summary)
    assert "| mean ± std |" in md and f"{100 * np.mean(values):.2f} ± " in md
    assert "95% CI (t)" in render_summary(summary, fmt="text")
    single = summarize_subjects({"sub-01": results["sub-01"]})
    assert np.isnan(single.at["std", "2-way top-1"])
    assert summary_to_dict(single)["std"]["2-way top-1"] is None


def test_summary_refuses_mixed_protocols_and_wrong_keys():
    queries, gallery = noisy_pair(20, 8, 1.0, seed=30)
    a = evaluate(queries, gallery, ks=(2,), n_draws=5, protocol=make_card(subjects=("sub-01",)))
    b = evaluate(queries, gallery, ks=(2,), n_draws=5, protocol=make_card(subjects=("sub-02",), n_channels=17))
    c = evaluate(queries, gallery, ks=(2, 4), n_draws=5, protocol=make_card(subjects=("sub-02",)))
    with pytest.raises(ToolkitError, match=r"different protocols.*n_channels"):
        summarize_subjects({"sub-01": a, "sub-02": b})
    with pytest.raises(ToolkitError, match="different metrics"):
        summarize_subjects({"sub-01": a, "sub-02": c})
    with pytest.raises(ToolkitError, match="key each result by the subject"):
        summarize_subjects({"sub-05": a})
    with pytest.raises(ToolkitError, match="non-empty mapping"):
        summarize_subjects({})
    with pytest.raises(ToolkitError, match="RetrievalResult"):
        summarize_subjects({"sub-01": a.to_dict()})


# ================================================================================================= bad input
Q5 = np.ones((5, 4))
G5 = np.eye(5, 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate(np.ones((5, 4)), np.ones((5, 3))), "embedding size 4.*has 3"),
        (lambda: evaluate(np.ones((0, 4)), G5), "'eeg_embeds' is empty"),
        (lambda: evaluate(Q5, np.ones((5, 0))), "'gallery_embeds' is empty"),
        (lambda: evaluate(np.full((5, 4), np.nan), G5), "NaN or Inf"),
        (lambda: evaluate(Q5, np.where(np.eye(5, 4) > 0, np.inf, 0.0)), "'gallery_embeds' contains NaN or Inf"),
        (lambda: evaluate(np.ones((5, 4), dtype=int), G5), "dtype int"),
        (lambda: evaluate(np.ones((5, 4), dtype=bool), G5), "dtype bool"),
        (lambda: evaluate(np.array(["a"] * 5), G5), "dtype <U1"),
        (lambda: evaluate(np.ones(4), G5), "2-D"),
        (lambda: evaluate(Q5, G5, [0, 1, 2, 3, 5]), "valid indices 0 to 4"),
        (lambda: evaluate(Q5, G5, [0, 1, 2, 3, -1]), "valid indices 0 to 4"),
        (lambda: evaluate(Q5, G5, [0.0, 1.0, 2.0, 3.0, 4.0]), "'targets' has dtype float64"),
        (lambda: evaluate(Q5, G5, [0, 1, 2]), r"shape \(5,\)"),
        (lambda: evaluate(np.ones((6, 4)), G5), "pass 'targets'"),
        (lambda: evaluate(Q5, G5, ks=(6,)), "6-way.*only 5 items"),
        (lambda: evaluate(Q5, G5, ks=(1,)), "'ks' must be >= 2"),
        (lambda: evaluate(Q5, G5, ks=(2, 2)), "twice"),
        (lambda: evaluate(Q5, G5, ks=()), "'ks' is empty"),
        (lambda: evaluate(Q5, G5, ks=(2, 4), top=(5,)), "top-5 is not defined"),
        (lambda: evaluate(Q5, G5, top=(0,)), "'top' must be >= 1"),
        (lambda: evaluate(Q5, G5, n_draws=0), "'n_draws' must be >= 1"),
        (lambda: evaluate(Q5, G5, n_draws=2.5), "'n_draws' must be an integer"),
        (lambda: evaluate(Q5, G5, seed=-1), "'seed' must be >= 0"),
        (lambda: evaluate(Q5, G5, seed=None), "'seed' must be an integer"),
        (lambda: evaluate(Q5, G5, n_boot=0), "'n_boot' must be >= 1"),
        (lambda: evaluate(Q5, G5, confidence=95), "'confidence'"),
        (lambda: evaluate(Q5, G5, normalize=None), "'normalize' must be True or False"),
        (lambda: evaluate(Q5, G5, normalize="yes"), "'normalize' must be True or False"),
        (lambda: evaluate(np.zeros((5, 4)), G5), "all-zero row"),
        (lambda: evaluate(Q5, G5, protocol={"dataset": "x"}), "ProtocolCard"),
        (lambda: evaluate(Q5, G5, protocol=make_card(encoder="")), "missing essential.*encoder"),
        (lambda: evaluate(Q5, G5, protocol=make_card(distractor_seed=5)), "distractor_seed=5.*seed"),
        (lambda: evaluate(Q5, G5, protocol=make_card(embedding_normalize=False)), "embedding_normalize"),
        (lambda: evaluate(Q5, G5, protocol=make_card(gallery_size=200)), "gallery_size=200"),
        (lambda: evaluate(np.ones((1, 4)), np.ones((1, 4))), "at least 2 items"),
        (lambda: kway_exact(np.array([0, 1]), 5, k=4, top=4), "top-m needs m < k"),
        (lambda: kway_exact(np.array([0, 1]), 5, k=6), "only 5 items"),
        (lambda: kway_exact(np.array([0, 5]), 5, k=2), "between 0 and 4"),
        (lambda: kway_exact(np.array([0.0]), 5, k=2), "integer array"),
        (lambda: kway_sampled(Q5, G5, normalize=True, n_draws=0), "'n_draws' must be >= 1"),
        (lambda: similarity(Q5, G5, normalize=1), "'normalize' must be True or False"),
        (lambda: draw_distractors(None, 5, n_draws=2, seed=0), "1-D array"),
        (lambda: render_result("not a result"), "RetrievalResult"),
    ],
)
def test_bad_input_raises_one_clear_error(call, message):
    with pytest.raises(ToolkitError, match=message):
        call()
