"""Bradley–Terry MAP scoring and anchor selection (the math of ssvqa.bradley_terry; no model)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch

from ssvqa.bradley_terry import (
    anchor_matrix,
    bt_map,
    calibrate,
    map_scores,
    preference_from_logits,
    preference_matrices,
    score_against_anchors,
    select_anchors,
)


# The paper's min–max rule: the tests of the MAP math below compare with it directly.
minmax_scores = partial(score_against_anchors, calibration="minmax")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def synthetic_matrix(true_scores):
    """C_ij = σ(s_i − s_j): the preferences a perfect Bradley–Terry judge would give."""
    s = np.asarray(true_scores, dtype=float)
    C = sigmoid(s[:, None] - s[None, :])
    np.fill_diagonal(C, 0.0)
    return C


def objective(C, s):
    """The MAP objective written out independently of the module, for checks."""
    diff = s[:, None] - s[None, :]
    mask = ~np.eye(len(s), dtype=bool)
    return float((C * np.log(sigmoid(diff)))[mask].sum() - 0.5 * s @ s)


def numerical_gradient(C, s, h=1e-6):
    grad = np.zeros_like(s)
    for i in range(len(s)):
        e = np.zeros_like(s)
        e[i] = h
        grad[i] = (objective(C, s + e) - objective(C, s - e)) / (2 * h)
    return grad


@pytest.mark.parametrize("seed", range(5))
def test_recovers_the_order_of_known_scores(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(scale=2.0, size=9)
    s = bt_map(synthetic_matrix(truth))
    assert scipy.stats.spearmanr(s, truth).statistic == pytest.approx(1.0)
    scores = map_scores(synthetic_matrix(truth))
    assert scores.min() == 0.0 and scores.max() == 100.0
    assert np.argmin(scores) == np.argmin(truth) and np.argmax(scores) == np.argmax(truth)


@pytest.mark.parametrize("seed", range(3))
def test_solution_is_the_optimum(seed):
    rng = np.random.default_rng(100 + seed)
    # a noisy, not exactly Bradley–Terry matrix, so the optimum is not a closed form
    C = rng.uniform(0.0, 1.0, size=(7, 7))
    np.fill_diagonal(C, 0.0)
    s = bt_map(C)
    assert np.linalg.norm(numerical_gradient(C, s)) < 1e-6
    # an independent solver (scipy L-BFGS on the same objective) lands on the same point
    ref = scipy.optimize.minimize(lambda x: -objective(C, x), np.zeros(7), method="L-BFGS-B", options={"gtol": 1e-12}).x
    np.testing.assert_allclose(s, ref, atol=1e-5)
    # and every small move lowers the objective
    for _ in range(20):
        assert objective(C, s + 1e-3 * rng.normal(size=7)) < objective(C, s)


def test_deterministic():
    rng = np.random.default_rng(7)
    C = rng.uniform(size=(4, 6, 6))
    np.testing.assert_array_equal(bt_map(C), bt_map(C.copy()))
    p = rng.uniform(size=(50, 5))
    block = anchor_matrix(rng.uniform(size=(5, 5)))
    np.testing.assert_array_equal(minmax_scores(block, p), minmax_scores(block, p))


def test_batched_solve_equals_one_video_at_a_time():
    rng = np.random.default_rng(3)
    K, N = 5, 40
    block = anchor_matrix(np.where(np.eye(K, dtype=bool), np.nan, rng.uniform(size=(K, K))))
    p = rng.uniform(size=(N, K))
    batched = minmax_scores(block, p)
    for n in range(N):
        # build video n's (K+1)×(K+1) matrix by hand: test last, anchor first in each comparison
        C = np.zeros((K + 1, K + 1))
        C[:K, :K] = block
        C[K, :K] = p[n]
        C[:K, K] = 1.0 - p[n]
        assert batched[n] == pytest.approx(map_scores(C)[-1], abs=1e-9)


def test_better_video_gets_higher_score():
    # Anchors with a clear order; test videos that beat more of them must score higher.
    truth = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    block = synthetic_matrix(truth)
    tests = np.array([-1.5, -0.5, 0.5, 1.5])
    p = sigmoid(tests[:, None] - truth[None, :])  # anchor first, test second: P(test better)
    scores = minmax_scores(block, p)
    assert np.all(np.diff(scores) > 0)
    assert np.all((scores > 0) & (scores < 100))


def test_comparison_order_and_mirroring():
    rng = np.random.default_rng(11)
    block = anchor_matrix(rng.uniform(size=(4, 4)))
    p = rng.uniform(size=(6, 4))
    # The same information given as "test first" answers (P(anchor better) = 1 - p).
    np.testing.assert_allclose(
        minmax_scores(block, p), minmax_scores(block, 1.0 - p, anchor_first=False), atol=1e-9
    )
    # Mirrored answers are averaged: a consistent mirror changes nothing, an opposite one cancels.
    np.testing.assert_allclose(minmax_scores(block, p, p_mirrored=1.0 - p), minmax_scores(block, p), atol=1e-9)
    averaged = preference_matrices(block, p, p_mirrored=p)
    np.testing.assert_allclose(averaged[:, -1, :4], 0.5)
    np.testing.assert_allclose(averaged[:, :4, -1], 0.5)


def test_anchor_matrix_convention():
    # (first=0, second=1): the model says the second is better with 0.8
    C = anchor_matrix([[np.nan, 0.8], [np.nan, np.nan]])
    assert C[1, 0] == pytest.approx(0.8) and C[0, 1] == pytest.approx(0.2)
    s = bt_map(C)
    assert s[1] > s[0]
    # both orders present are averaged; a pair never compared carries no information (zeros)
    C = anchor_matrix([[np.nan, 0.8, np.nan], [0.4, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    assert C[1, 0] == pytest.approx((0.8 + 0.6) / 2) and C[0, 1] == pytest.approx((0.2 + 0.4) / 2)
    assert C[2, 0] == C[0, 2] == C[1, 2] == 0.0


def test_no_information_gives_equal_scores_not_nan():
    half = np.full((6, 6), 0.5)
    np.testing.assert_array_equal(map_scores(half), np.full(6, 50.0))
    np.testing.assert_array_equal(bt_map(half), np.zeros(6))
    assert np.all(map_scores(np.zeros((3, 3))) == 50.0)
    block = np.full((5, 5), 0.5)
    np.fill_diagonal(block, 0.0)
    assert np.all(minmax_scores(block, np.full((3, 5), 0.5)) == 50.0)


def test_single_anchor_and_extreme_preferences():
    block = np.zeros((1, 1))
    scores = minmax_scores(block, [[0.9], [0.1], [0.5]])
    assert scores.tolist() == [100.0, 0.0, 50.0]
    # certainty (p = 1 against every anchor) stays finite thanks to the prior
    s = bt_map(preference_matrices(anchor_matrix(np.full((3, 3), 0.5)), np.ones((1, 3)))[0])
    assert np.all(np.isfinite(s)) and s[-1] == s.max()


def test_rejects_values_that_are_not_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        bt_map([[0.0, 1.2], [0.1, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        minmax_scores(np.zeros((2, 2)), [[np.nan, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        minmax_scores(np.zeros((2, 2)), [[0.5, 0.5, 0.5]])


def test_preference_from_logits():
    # a confident answer is its level's weight; ties between levels average their weights
    np.testing.assert_allclose(preference_from_logits(np.eye(5) * 60.0), [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-12)
    assert preference_from_logits([0.0, 0.0, 0.0, 30.0, 30.0]) == pytest.approx(0.875)
    # a high temperature flattens the answer towards the mean weight 0.5
    z = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert abs(preference_from_logits(z, temperature=1e4) - 0.5) < 1e-3
    assert preference_from_logits(z) > preference_from_logits(z, temperature=5.0) > 0.5
    # batches and torch tensors of low precision
    logits = torch.randn(3, 4, 5, dtype=torch.bfloat16)
    out = preference_from_logits(logits)
    assert out.shape == (3, 4) and out.dtype == np.float64
    np.testing.assert_allclose(out, preference_from_logits(logits.float().numpy()))
    with pytest.raises(ValueError, match="5 level logits"):
        preference_from_logits(np.zeros(4))


def test_select_anchors_spreads_over_the_range():
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, size=200)
    idx = select_anchors(mos, k=5)
    assert len(set(idx.tolist())) == 5
    assert np.all(np.diff(mos[idx]) > 0)  # sorted worst to best
    edges = np.linspace(mos.min(), mos.max(), 6)
    # one anchor per interval, each near its centre
    for b, i in enumerate(idx):
        assert edges[b] <= mos[i] <= edges[b + 1]
        assert abs(mos[i] - (edges[b] + edges[b + 1]) / 2) < 0.1


def test_select_anchors_prefers_rater_agreement():
    mos = np.array([1.0, 1.2, 1.4, 3.0, 3.1, 4.8, 5.0])
    std = np.array([0.9, 0.2, 0.8, 0.5, 0.4, 0.7, 0.3])
    assert select_anchors(mos, std, k=3).tolist() == [1, 4, 6]


def test_select_anchors_skips_empty_intervals_and_still_returns_k():
    mos = np.array([0.0, 1.0, 2.0, 3.0, 97.0, 100.0])  # nothing in the middle intervals
    idx = select_anchors(mos, k=4)
    assert len(set(idx.tolist())) == 4
    assert 0 in idx.tolist() or 1 in idx.tolist()
    assert 4 in idx.tolist() or 5 in idx.tolist()
    with pytest.raises(ValueError, match="cannot choose"):
        select_anchors(mos, k=7)
    assert select_anchors([3.0, 3.0, 3.0], k=2).tolist() == [0, 1]


# --- the 0–100 calibration ----------------------------------------------------------------------

ANCHOR_TRUTH = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])


def scores_of(tests, anchor_scores, truth=ANCHOR_TRUTH, **kwargs):
    """Scores of test videos with latent quality ``tests`` against perfect-judge anchors."""
    p = sigmoid(np.asarray(tests, dtype=float)[:, None] - truth[None, :])
    return score_against_anchors(synthetic_matrix(truth), p, anchor_scores=anchor_scores, **kwargs)


def test_calibration_is_strictly_monotone():
    rng = np.random.default_rng(5)
    for K in (2, 3, 5, 9):
        anchor_latent = np.sort(rng.normal(size=K))
        known = np.sort(rng.uniform(0, 100, size=K))
        latent = np.linspace(-6, 6, 2001)
        scores = calibrate(latent, anchor_latent, known)
        assert np.all(np.diff(scores) > 0)
        assert np.all((scores > 0) & (scores < 100))


def test_scores_extrapolate_beyond_the_anchors_without_ties():
    known = [10.0, 30.0, 50.0, 70.0, 90.0]
    tests = np.array([-4.0, -3.0, -2.5, -1.5, 0.5, 2.5, 3.0, 4.0])
    scores = scores_of(tests, known)
    assert np.all(np.diff(scores) > 0)  # better videos score higher, distinct videos never tie
    above = scores[tests > ANCHOR_TRUTH.max()]
    below = scores[tests < ANCHOR_TRUTH.min()]
    assert np.all((above > known[-1]) & (above < 100.0))
    assert np.all((below < known[0]) & (below > 0.0))
    # The paper's rule clamps all of them, so they tie at 0 and 100.
    minmax = scores_of(tests, known, calibration="minmax")
    assert np.all(minmax[tests > ANCHOR_TRUTH.max()] == 100.0) and np.all(minmax[tests < ANCHOR_TRUTH.min()] == 0.0)


def test_anchors_map_near_their_known_scores():
    # Known scores that a logistic of the true quality explains: the fit reproduces them.
    known = 100.0 * sigmoid(ANCHOR_TRUTH)
    np.testing.assert_allclose(scores_of(ANCHOR_TRUTH, known), known, atol=1.0)
    # Evenly spaced known scores (no logistic explains them exactly): order kept, each close.
    even = np.array([10.0, 30.0, 50.0, 70.0, 90.0])
    scores = scores_of(ANCHOR_TRUTH, even)
    assert np.all(np.diff(scores) > 0)
    np.testing.assert_allclose(scores, even, atol=10.0)
    # Two anchors: the fit is exact.
    np.testing.assert_allclose(calibrate([-1.0, 1.0], [-1.0, 1.0], [20.0, 80.0]), [20.0, 80.0])


def test_degenerate_calibrations_fall_back_to_a_monotone_curve():
    known = [10.0, 30.0, 50.0, 70.0, 90.0]
    # No preference information at all: every video at the anchors' mean known score, no NaN.
    block = np.full((5, 5), 0.5)
    np.fill_diagonal(block, 0.0)
    flat = score_against_anchors(block, np.full((3, 5), 0.5), anchor_scores=known)
    np.testing.assert_allclose(flat, 50.0)
    # A ranker that orders the anchors against their known scores: still strictly increasing.
    reversed_scores = scores_of([-3.0, 0.5, 3.0], known[::-1])
    assert np.all(np.diff(reversed_scores) > 0) and np.all((reversed_scores > 0) & (reversed_scores < 100))
    # All known scores equal: the curve passes through that score.
    same = calibrate([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [40.0, 40.0, 40.0])
    assert np.all(np.diff(same) > 0) and same[1] == pytest.approx(40.0)


def test_calibration_arguments_are_checked():
    with pytest.raises(ValueError, match="calibration must be one of"):
        score_against_anchors(np.zeros((2, 2)), [[0.5, 0.5]], calibration="linear")
    with pytest.raises(ValueError, match="anchor_scores"):
        score_against_anchors(np.zeros((2, 2)), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="at least 2 anchors"):
        calibrate([0.0], [0.0], [50.0])
