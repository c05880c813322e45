"""Time the Bradley–Terry MAP solve per test video (target: ≤ 1 ms/video, batched).

Compares, in the same run and on the same random problems:

* ``batched``    — :func:`ssvqa.bradley_terry.score_against_anchors` on all N videos at once;
* ``per-video``  — the same Newton solver called once per video (no batching);
* ``scipy``      — a bare baseline: ``scipy.optimize.minimize`` (L-BFGS-B, analytic gradient)
  per video, what one would write without this module.

Run: ``python bench/bench_map.py [--videos 1000] [--anchors 5]``. Times are the best of a few
repeats (the machine may be shared); the ratios compare runs made in the same process.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.optimize

from ssvqa.bradley_terry import anchor_matrix, map_scores, preference_matrices, score_against_anchors
from timing import best_of


def scipy_score(C: np.ndarray) -> float:
    """Score of the last item by L-BFGS on the MAP objective (baseline)."""

    def negative(s):
        d = s[:, None] - s[None, :]
        sig = 1.0 / (1.0 + np.exp(-d))
        f = (C * np.log(sig)).sum() - 0.5 * s @ s
        g = (C * (1 - sig)).sum(1) - (C.T * sig).sum(1) - s
        return -f, -g

    s = scipy.optimize.minimize(negative, np.zeros(len(C)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    return 100.0 * (s[-1] - s.min()) / (s.max() - s.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--anchors", type=int, default=5)
    parser.add_argument("--baseline-videos", type=int, default=200, help="videos timed for the slow baselines")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    K, N = args.anchors, args.videos
    truth = np.linspace(-2, 2, K)
    noisy = 1 / (1 + np.exp(-(truth[None, :] - truth[:, None]))) + rng.normal(0, 0.05, (K, K))
    block = anchor_matrix(np.clip(noisy, 0, 1))
    test_truth = rng.normal(0, 1.5, N)
    p = np.clip(1 / (1 + np.exp(-(test_truth[:, None] - truth[None, :]))) + rng.normal(0, 0.05, (N, K)), 0, 1)

    batched_s = best_of(lambda: score_against_anchors(block, p, calibration="minmax"), repeats=5)
    scores = score_against_anchors(block, p, calibration="minmax")  # the reference solves min–max too

    m = min(args.baseline_videos, N)
    C = preference_matrices(block, p[:m])
    loop_s = best_of(lambda: [map_scores(C[n]) for n in range(m)], repeats=3) / m * N
    scipy_s = best_of(lambda: [scipy_score(C[n]) for n in range(m)], repeats=3) / m * N
    reference = np.array([scipy_score(C[n]) for n in range(m)])
    agreement = np.abs(reference - scores[:m]).max()

    per_ms = lambda seconds: 1000.0 * seconds / N  # noqa: E731
    print(f"MAP solve, K={K} anchors, N={N} videos (per-video times, best of repeats)")
    print(f"  batched Newton   {per_ms(batched_s):8.4f} ms/video   total {batched_s * 1000:8.2f} ms")
    print(f"  per-video Newton {per_ms(loop_s):8.4f} ms/video   ({loop_s / batched_s:6.1f}x the batched time)")
    print(f"  scipy L-BFGS     {per_ms(scipy_s):8.4f} ms/video   ({scipy_s / batched_s:6.1f}x the batched time; bare baseline)")
    print(f"  max |score - scipy score| over {m} videos: {agreement:.2e} (0-100 scale)")
    print(f"  target <= 1 ms/video batched: {'met' if per_ms(batched_s) <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
