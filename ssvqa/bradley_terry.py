"""From pairwise comparisons to absolute 0–100 scores: Bradley–Terry MAP against anchor videos.

This module is the *math* of scoring, free of any model: it turns preference probabilities into
scores and picks the anchor videos. The class that asks a ranker for those probabilities builds on
it.

The procedure (the paper's released code, after Compare2Score)
--------------------------------------------------------------
1. Choose K anchor videos with known scores spread over the quality range (:func:`select_anchors`).
2. For every ordered pair of anchors, and for a test video against every anchor, the ranker sees
   (first, second) and answers with logits over the five levels; the preference
   ``p = Σ_k w_k softmax(z / T)_k`` (weights 0, .25, .5, .75, 1) is its probability that the
   *second* video is the better one (:func:`preference_from_logits`).
3. These fill a preference matrix ``C`` over the K anchors plus the test video (index K, last).
4. The Bradley–Terry maximum a posteriori scores with a standard normal prior,

       ŝ = argmax_s  Σ_ij C_ij log σ(s_i − s_j) − ½ Σ_i s_i²,

   are found *exactly* by Newton's method (:func:`bt_map`).
5. ŝ_test becomes a 0–100 score by a monotone calibration (:func:`calibrate`,
   :func:`score_against_anchors`), by default a logistic fitted to the anchors (below); the
   paper's min–max rule is kept as ``calibration="minmax"``.

Convention of the preference matrix
-----------------------------------
``C[i, j]`` = P(item i is better than item j); the diagonal is ignored (treated as 0). Ideally
``C[i, j] + C[j, i] = 1``, but nothing relies on it: a pair that was never compared has
``C[i, j] = C[j, i] = 0`` and simply contributes nothing.

A comparison shown as (first = a, second = b) gives ``p`` = P(b better than a), so it fills
``C[b, a] = p`` and ``C[a, b] = 1 − p``. For the test video against anchor k:

* anchor first, test second (the paper's order): ``C[test, k] = p``, ``C[k, test] = 1 − p``;
* test first, anchor second: ``C[k, test] = p``, ``C[test, k] = 1 − p``;
* both orders asked (mirrored, to cancel any position bias of the model): the two estimates of
  P(test better than anchor k) are averaged, ``(p_anchor_first + 1 − p_test_first) / 2``.

Why Newton
----------
With ``σ' = σ(1 − σ)`` the gradient and Hessian are closed-form:

    g_k = Σ_j [C_kj σ(s_j − s_k) − C_jk σ(s_k − s_j)] − s_k
    H   = −(L + I),  L = graph Laplacian of  A_kl = (C_kl + C_lk) σ'(s_k − s_l)

``L`` is positive semi-definite (A ≥ 0), so ``H ≤ −I``: the objective is strictly concave with a
unique maximiser, and Newton's method converges to machine precision in a handful of steps (a
backtracking line search keeps every step an ascent step). A fixed count of Adam steps, as some
released code does, stops at an arbitrary distance from the optimum instead.

How the 0–100 score reads across videos: the calibration
--------------------------------------------------------
Every test video gets its own K+1 solution (the test video pulls a little on the anchors). In that
solution the anchors have latent scores ŝ_1..ŝ_K and known scores y_1..y_K, and the calibration
maps ŝ_test through a curve fitted to those K points.

``calibration="logistic"`` (the default)::

    score = 100 · σ(a · ŝ_test + b),    a > 0,

where (a, b) is the least-squares line through the K points (ŝ_k, logit(ỹ_k)), with
ỹ_k = clip(y_k / 100, ε, 1 − ε), ε = :data:`CALIBRATION_EPSILON` (1 %), so anchors known as 0 or
100 pull towards 1 or 99 instead of infinity. The fit is exact for K = 2 and a plain two-parameter
regression for any larger K. The curve is strictly increasing and never reaches 0 or 100, so a
video better than the best anchor scores above that anchor (not a clamped 100), and distinct latent
scores give distinct 0–100 scores. Because the BT prior keeps the latent scores within a few units,
``a · ŝ`` stays far from the range where σ rounds to exactly 0 or 1 in float64.

*Fallback.* When the fit has no usable positive slope — the anchors' latent scores are all equal
(the ranker expresses no preference), all known scores are equal, or the ranker orders the anchors
against their known scores (slope ≤ 0) — the curve is ``a = 1`` (one latent unit = one unit of
logit score; BT latent differences are log-odds) through the point (mean ŝ_k, logit(mean ỹ_k)).
It is still strictly increasing, so scores still rank the videos; a trained ranker never needs it.

``calibration="minmax"`` (the paper's released code)::

    score = 100 · (ŝ_test − min ŝ) / (max ŝ − min ŝ)

min and max over the video's own K+1 solution. The anchors span the quality range, so min and max
are nearly always the worst and best anchors: 0 = at or below the worst anchor, 100 = at or above
the best one. Scores saturate outside the anchors' range (and then tie). When all K+1 solutions
are equal (no preference information at all) the score is 50, not NaN. Use it to compare with the
paper's figures.

Length: over 400 lines, mostly the derivation above and doctest examples. The code is the MAP
solver, the anchor selection and the calibrations.
"""

from __future__ import annotations

import warnings

import numpy as np

from ssvqa.labels import LEVEL_WEIGHTS

GRADIENT_TOLERANCE = 1e-10
MAX_NEWTON_STEPS = 100
_ARMIJO = 1e-4  # sufficient-increase constant of the backtracking line search
_MAX_HALVINGS = 50


def preference_from_logits(level_logits, temperature: float = 1.0) -> np.ndarray:
    """P(second video is better) from logits over the five levels: ``Σ_k w_k softmax(z/T)_k``.

    ``level_logits`` has shape ``(..., 5)`` in the order of :data:`ssvqa.labels.LEVELS` (numpy
    array, list, or torch tensor of any float dtype); the result has shape ``(...)``, float64.

    >>> float(preference_from_logits([0.0, 0.0, 9.0, 0.0, 0.0]).round(3))
    0.5
    >>> float(preference_from_logits([0.0, 0.0, 0.0, 0.0, 50.0]))
    1.0
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if hasattr(level_logits, "detach"):  # a torch tensor (bf16 has no numpy dtype: go through float)
        level_logits = level_logits.detach().float().cpu().numpy()
    z = np.asarray(level_logits, dtype=np.float64) / temperature
    if z.shape[-1] != len(LEVEL_WEIGHTS):
        raise ValueError(f"expected {len(LEVEL_WEIGHTS)} level logits in the last axis, got shape {z.shape}")
    z = z - z.max(axis=-1, keepdims=True)  # stable softmax
    probs = np.exp(z)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ np.asarray(LEVEL_WEIGHTS, dtype=np.float64)


def anchor_matrix(p_second_better) -> np.ndarray:
    """The K×K anchor block of ``C`` from the ranker's answers on ordered anchor pairs.

    ``p_second_better[a, b]`` is the ranker's P(second better) for the comparison shown as
    (first = anchor a, second = anchor b); NaN marks a comparison not made (the diagonal is
    ignored). Both orders of a pair are averaged when both exist; a pair with neither stays 0 in
    both directions (no information).

    >>> anchor_matrix([[np.nan, 0.9], [0.2, np.nan]])
    array([[0.  , 0.15],
           [0.85, 0.  ]])
    """
    p = np.array(p_second_better, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"expected a square K×K matrix, got shape {p.shape}")
    np.fill_diagonal(p, np.nan)
    _check_probabilities(p[~np.isnan(p)], "p_second_better")
    # Two estimates of C[i, j] = P(i better than j): the pair (j first, i second) gives p[j, i];
    # the pair (i first, j second) gives 1 - p[i, j].
    estimates = np.stack([p.T, 1.0 - p])
    counts = (~np.isnan(estimates)).sum(axis=0)
    C = np.where(counts > 0, np.nansum(estimates, axis=0) / np.maximum(counts, 1), 0.0)
    np.fill_diagonal(C, 0.0)
    return C


def bt_map(C, *, tol: float = GRADIENT_TOLERANCE, max_steps: int = MAX_NEWTON_STEPS) -> np.ndarray:
    """Exact Bradley–Terry MAP scores ŝ for preference matrices ``C`` of shape ``(..., M, M)``.

    Maximises ``Σ_ij C_ij log σ(s_i − s_j) − ½ Σ_i s_i²`` for every leading index at once
    (batched damped Newton, float64) and stops when each problem's gradient norm is below
    ``tol``. Returns ŝ with shape ``(..., M)``.

    >>> s = bt_map([[0.0, 0.9], [0.1, 0.0]])
    >>> bool(s[0] > 0 > s[1]) and bool(np.isclose(s.sum(), 0.0))
    True
    """
    C = np.array(C, dtype=np.float64)
    if C.ndim < 2 or C.shape[-1] != C.shape[-2]:
        raise ValueError(f"expected preference matrices of shape (..., M, M), got {C.shape}")
    _check_probabilities(C, "C")
    batch_shape, M = C.shape[:-2], C.shape[-1]
    C = C.reshape(-1, M, M)
    C[:, np.arange(M), np.arange(M)] = 0.0
    s = np.zeros(C.shape[:2])
    grad = _gradient(C, s)
    active = np.linalg.norm(grad, axis=1) >= tol
    for _ in range(max_steps):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        Ca, sa, ga = C[idx], s[idx], grad[idx]
        step = np.linalg.solve(_negative_hessian(Ca, sa), ga[..., None])[..., 0]
        s[idx] = _line_search(Ca, sa, ga, step)
        grad[idx] = _gradient(Ca, s[idx])
        active[idx] = np.linalg.norm(grad[idx], axis=1) >= tol
    else:
        if active.any():
            worst = float(np.linalg.norm(grad, axis=1).max())
            warnings.warn(
                f"Bradley–Terry MAP: {int(active.sum())} problem(s) not converged after {max_steps} "
                f"Newton steps (largest gradient norm {worst:.2e}); returning the last iterate",
                RuntimeWarning,
                stacklevel=2,
            )
    return s.reshape(*batch_shape, M)


def map_scores(C) -> np.ndarray:
    """Bradley–Terry MAP scores of every item, min–max scaled to 0–100 within each problem.

    ``C`` has shape ``(..., M, M)``; the result ``(..., M)``. When a problem's scores are all
    equal (e.g. every preference 0.5) every item gets 50.
    """
    return _to_0_100(bt_map(C))


def preference_matrices(anchor_block, p_test_over_anchors, *, anchor_first: bool = True, p_mirrored=None) -> np.ndarray:
    """The ``(N, K+1, K+1)`` preference matrices of N test videos, test video at index K.

    ``anchor_block`` is the stored K×K part (:func:`anchor_matrix`). ``p_test_over_anchors[n, k]``
    is the ranker's raw P(second better) for video n against anchor k, shown in the order that
    ``anchor_first`` names (True: anchor first, test second; False: test first, anchor second).
    ``p_mirrored``, when given, holds the answers of the other order; the two are averaged (see
    the module doc).
    """
    A = np.asarray(anchor_block, dtype=np.float64)
    K = A.shape[0]
    if A.shape != (K, K):
        raise ValueError(f"anchor block must be K×K, got shape {A.shape}")
    p = np.atleast_2d(np.asarray(p_test_over_anchors, dtype=np.float64))
    if p.shape[1] != K:
        raise ValueError(f"expected p_test_over_anchors of shape (N, {K}), got {p.shape}")
    _check_probabilities(p, "p_test_over_anchors")
    # P(test better than anchor k) from the order actually shown.
    test_better = p if anchor_first else 1.0 - p
    if p_mirrored is not None:
        q = np.atleast_2d(np.asarray(p_mirrored, dtype=np.float64))
        if q.shape != p.shape:
            raise ValueError(f"p_mirrored must have the shape of p_test_over_anchors {p.shape}, got {q.shape}")
        _check_probabilities(q, "p_mirrored")
        test_better = (test_better + (1.0 - q if anchor_first else q)) / 2.0
    N = p.shape[0]
    C = np.zeros((N, K + 1, K + 1))
    C[:, :K, :K] = A
    C[:, K, :K] = test_better
    C[:, :K, K] = 1.0 - test_better
    return C


CALIBRATIONS = ("logistic", "minmax")
CALIBRATION_EPSILON = 0.01


def calibrate(latent, anchor_latent, anchor_scores) -> np.ndarray:
    """0–100 scores of latent scores by the logistic calibration of the module doc.

    ``latent`` has shape ``(N,)`` and ``anchor_latent`` ``(N, K)``: row n holds the anchors' latent
    scores of the problem that ``latent[n]`` comes from (one K+1 solution per video), or ``(K,)``
    when every latent score shares one solution. ``anchor_scores`` are the anchors' known 0–100
    scores, ``(K,)``. Strictly increasing in ``latent`` for each row.

    >>> calibrate([-1.0, 0.0, 1.0, 2.0], [-1.0, 1.0], [20.0, 80.0]).round(1)  # exact fit, then beyond
    array([20. , 50. , 80. , 94.1])
    """
    x = np.atleast_2d(np.asarray(anchor_latent, dtype=np.float64))
    latent = np.asarray(latent, dtype=np.float64).ravel()
    y = np.asarray(anchor_scores, dtype=np.float64).ravel()
    K = y.size
    if K < 2 or x.shape[-1] != K:
        raise ValueError(f"need at least 2 anchors with one latent score each, got {x.shape[-1]} latent and {K} known scores")
    if x.shape[0] == 1:
        x = np.broadcast_to(x, (latent.size, K))
    if x.shape[0] != latent.size:
        raise ValueError(f"anchor_latent has {x.shape[0]} rows for {latent.size} latent scores")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(latent).all()):
        raise ValueError("latent and anchor scores must be finite")
    target = np.clip(y / 100.0, CALIBRATION_EPSILON, 1.0 - CALIBRATION_EPSILON)
    z = np.log(target / (1.0 - target))  # logit of the known scores, shape (K,)
    xc = x - x.mean(axis=1, keepdims=True)
    sxx = (xc * xc).sum(axis=1)
    sxz = xc @ (z - z.mean())
    # A slope needs spread in the latent scores and a positive covariance; else the fallback a = 1.
    usable = (sxx > 1e-12 * np.maximum(1.0, (x * x).sum(axis=1))) & (sxz > 0)
    slope = np.where(usable, sxz / np.where(usable, sxx, 1.0), 1.0)
    centre = np.where(usable, z.mean(), _logit(target.mean()))
    logits = slope * (latent - x.mean(axis=1)) + centre
    return 100.0 * _sigmoid(logits)


def score_against_anchors(
    anchor_block,
    p_test_over_anchors,
    anchor_first: bool = True,
    *,
    p_mirrored=None,
    anchor_scores=None,
    calibration: str = "logistic",
) -> np.ndarray:
    """0–100 scores of N test videos from their comparisons with the K anchors, ``(N,)``.

    Each video's MAP problem is independent given the stored anchor block, so all N are solved in
    one batched Newton run (about 1000 videos in a few milliseconds; ``bench/bench_map.py``).
    Arguments as in :func:`preference_matrices`; ``calibration`` is ``"logistic"`` (default: needs
    the anchors' known ``anchor_scores``, extrapolates beyond them without clamping) or
    ``"minmax"`` (the paper's rule); see the module doc.

    >>> block = anchor_matrix([[np.nan, 0.9], [0.1, np.nan]])  # anchor 1 beats anchor 0
    >>> p = [[0.7, 0.3], [0.99, 0.9]]  # a video between the anchors, then one above both
    >>> score_against_anchors(block, p, anchor_scores=[20, 80]).round(1)
    array([50. , 98.5])
    >>> score_against_anchors(block, p, calibration="minmax").round(1)
    array([ 50., 100.])
    """
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    C = preference_matrices(anchor_block, p_test_over_anchors, anchor_first=anchor_first, p_mirrored=p_mirrored)
    s = bt_map(C)
    if calibration == "minmax":
        return _to_0_100(s)[:, -1]
    if anchor_scores is None:
        raise ValueError('calibration="logistic" needs the anchors\' known scores: pass anchor_scores=')
    return calibrate(s[:, -1], s[:, :-1], anchor_scores)


def select_anchors(mos, std=None, k: int = 5) -> np.ndarray:
    """Indices of ``k`` anchor videos spread over the quality range, sorted by MOS (worst first).

    The MOS range [min, max] is split into ``k`` equal intervals; each interval gives the video
    raters agreed on most (least ``std``; ties and the no-``std`` case: the one nearest the
    interval's centre). Empty intervals (gaps in the MOS distribution) are skipped, and the
    missing anchors are then filled from the remaining videos one at a time, each time the video
    farthest in MOS from every anchor chosen so far, so the set stays spread out and has exactly
    ``k`` members.

    >>> select_anchors([10, 11, 50, 52, 90], k=3).tolist()  # centres 23.3, 50, 76.7
    [1, 2, 4]
    >>> select_anchors([10, 11, 50, 52, 90], std=[0.1, 0.9, 0.5, 0.2, 0.3], k=3).tolist()
    [0, 3, 4]
    """
    mos = np.asarray(mos, dtype=np.float64).ravel()
    n = mos.size
    if not 1 <= k <= n:
        raise ValueError(f"cannot choose {k} anchors from {n} videos")
    if not np.isfinite(mos).all():
        raise ValueError("mos contains NaN or infinite values")
    if std is not None:
        std = np.asarray(std, dtype=np.float64).ravel()
        if std.shape != mos.shape or not np.isfinite(std).all():
            raise ValueError("std must be finite and have one value per video")
    low, high = mos.min(), mos.max()
    width = (high - low) / k
    if width == 0:  # every MOS equal: no range to spread over
        order = np.argsort(std, kind="stable") if std is not None else np.arange(n)
        return np.sort(order[:k])
    # Interval of each video; the top edge belongs to the last interval.
    bins = np.minimum(((mos - low) / width).astype(int), k - 1)
    chosen: list[int] = []
    for b in range(k):
        members = np.flatnonzero(bins == b)
        if members.size == 0:
            continue
        centre = low + (b + 0.5) * width
        distance = np.abs(mos[members] - centre)
        primary = std[members] if std is not None else distance
        chosen.append(int(members[np.lexsort((members, distance, primary))[0]]))
    while len(chosen) < k:
        rest = np.setdiff1d(np.arange(n), chosen)
        gap = np.abs(mos[rest, None] - mos[chosen][None, :]).min(axis=1)
        chosen.append(int(rest[np.argmax(gap)]))
    chosen_arr = np.array(chosen)
    return chosen_arr[np.argsort(mos[chosen_arr], kind="stable")]


# --- internals -----------------------------------------------------------------------------------


def _check_probabilities(values: np.ndarray, name: str) -> None:
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got range [{values.min()}, {values.max()}]")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow warnings for large differences.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _objective(C: np.ndarray, s: np.ndarray) -> np.ndarray:
    diff = s[:, :, None] - s[:, None, :]
    log_sigma = -np.logaddexp(0.0, -diff)
    return (C * log_sigma).sum(axis=(1, 2)) - 0.5 * (s * s).sum(axis=1)


def _gradient(C: np.ndarray, s: np.ndarray) -> np.ndarray:
    S = _sigmoid(s[:, :, None] - s[:, None, :])  # S[k, j] = σ(s_k − s_j)
    CT = np.swapaxes(C, 1, 2)
    return (C * (1.0 - S) - CT * S).sum(axis=2) - s


def _negative_hessian(C: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``L + I`` (symmetric positive definite), the negated Hessian."""
    S = _sigmoid(s[:, :, None] - s[:, None, :])
    A = (C + np.swapaxes(C, 1, 2)) * S * (1.0 - S)
    M = s.shape[1]
    A[:, np.arange(M), np.arange(M)] = 0.0
    L = -A
    L[:, np.arange(M), np.arange(M)] = A.sum(axis=2) + 1.0
    return L


def _line_search(C: np.ndarray, s: np.ndarray, grad: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Backtracking (Armijo) along the Newton step, per problem; returns the new iterates."""
    f0 = _objective(C, s)
    rounding = 64 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(f0))
    slope = (grad * step).sum(axis=1)  # > 0: the Newton step of a concave problem ascends
    t = np.ones(len(s))
    pending = np.ones(len(s), dtype=bool)
    new = s.copy()
    for _ in range(_MAX_HALVINGS):
        cand = s[pending] + t[pending, None] * step[pending]
        gain = _objective(C[pending], cand) - f0[pending]
        # Near the optimum the gain of a Newton step drops below the rounding error of the
        # objective itself; such a step is accepted (quadratic convergence then needs no help).
        ok = (gain >= _ARMIJO * t[pending] * slope[pending]) | (np.abs(gain) <= rounding[pending])
        idx = np.flatnonzero(pending)
        new[idx[ok]] = cand[ok]
        pending[idx[ok]] = False
        if not pending.any():
            break
        t[pending] *= 0.5
    # Steps still pending are below rounding level (the gradient is ~0 already): take the tiny
    # step anyway, it cannot hurt, and the gradient test decides convergence.
    new[pending] = s[pending] + t[pending, None] * step[pending]
    return new


def _logit(p):
    return np.log(p / (1.0 - p))


def _to_0_100(s: np.ndarray) -> np.ndarray:
    low = s.min(axis=-1, keepdims=True)
    span = s.max(axis=-1, keepdims=True) - low
    # Spans at rounding level mean "no preference at all": 50, not 0/0.
    flat = span <= 1e-12 * np.maximum(1.0, np.abs(s).max(axis=-1, keepdims=True))
    # (s - low) / span is exactly 1 at the maximum, so the best item scores exactly 100.
    return np.where(flat, 50.0, 100.0 * ((s - low) / np.where(flat, 1.0, span)))


__all__ = [
    "CALIBRATIONS",
    "anchor_matrix",
    "calibrate",
    "bt_map",
    "map_scores",
    "preference_from_logits",
    "score_against_anchors",
    "select_anchors",
    "preference_matrices",
]
