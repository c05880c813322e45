"""How well predicted scores agree with human mean opinion scores (MOS): SRCC, PLCC, KRCC, RMSE.

The numbers VQA papers report, computed the way they compute them:

* **SRCC** (Spearman) and **KRCC** (Kendall tau-b) need no fitting: they only look at the order.
* **PLCC** (Pearson) and **RMSE** are reported *after* the monotonic 4-parameter logistic mapping
  recommended by VQEG (Phase I/II reports), fitted from predictions to MOS:

      f(x) = (β1 − β2) / (1 + exp(−(x − β3) / |β4|)) + β2

  so that a model is not punished for a non-linear but monotonic relation to MOS. The fit may
  also be decreasing, so PLCC after it is never negative: a model that ranks backwards shows up
  in a negative SRCC/KRCC and ``plcc_raw`` (Pearson on the raw predictions).

The fit uses ``scipy.optimize.curve_fit`` started at β = (max MOS, min MOS, mean prediction, std
of predictions) -- a scale-aware version of the ``[max(y), min(y), mean(x), 0.5]`` start common in
public VQA code, which stalls when predictions live on 0–100. When the fit fails (no
convergence, a non-finite result, or fewer than five points) a straight line is fitted instead
(``fit = "linear"`` in the report), so a report always has numbers; PLCC after a linear fit equals
|raw PLCC|.

The ``evaluate`` metric in ``ssvqa/metrics/vqa_correlation`` calls :func:`correlation_report`, so
both give the same numbers: ``evaluate.load(VQA_CORRELATION_METRIC)``.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import scipy.optimize
import scipy.stats

from ssvqa.io import atomic_write_text

VQA_CORRELATION_METRIC = str(Path(__file__).parent / "metrics" / "vqa_correlation")
"""Local folder of the ``evaluate`` metric: ``evaluate.load(VQA_CORRELATION_METRIC)`` (offline)."""


def logistic_4(x, beta1, beta2, beta3, beta4):
    """VQEG's monotonic logistic: ``(β1 − β2) / (1 + exp(−(x − β3) / |β4|)) + β2``."""
    z = -(np.asarray(x, dtype=np.float64) - beta3) / max(abs(beta4), 1e-12)
    # exp overflows to inf for very negative arguments: the expression then tends to β2, fine,
    # but silence the warning rather than let it alarm a reader of the logs.
    with np.errstate(over="ignore"):
        return (beta1 - beta2) / (1.0 + np.exp(z)) + beta2


def fit_logistic(pred, mos) -> tuple[np.ndarray, str]:
    """Fit the map prediction → MOS. Returns ``(params, kind)``.

    ``kind`` is ``"logistic"`` (params = β1..β4 of :func:`logistic_4`) or, when that fit fails,
    ``"linear"`` (params = slope, intercept).
    """
    x, y = _as_pair(pred, mos)
    if len(x) >= 5 and np.ptp(x) > 0:
        start = [y.max(), y.min(), x.mean(), x.std() or 1.0]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
                params, _ = scipy.optimize.curve_fit(logistic_4, x, y, p0=start, maxfev=20000)
            if np.all(np.isfinite(params)) and np.all(np.isfinite(logistic_4(x, *params))):
                return params, "logistic"
        except (RuntimeError, ValueError):
            pass
    if np.ptp(x) == 0:
        return np.array([0.0, y.mean()]), "linear"
    return np.polyfit(x, y, 1), "linear"


def apply_fit(pred, params, kind: str) -> np.ndarray:
    """Predictions mapped onto the MOS scale by a fit from :func:`fit_logistic`."""
    x = np.asarray(pred, dtype=np.float64)
    return logistic_4(x, *params) if kind == "logistic" else np.polyval(params, x)


def correlation_report(pred, mos) -> dict:
    """SRCC, KRCC, PLCC (after the logistic fit), raw PLCC and RMSE (after the fit) in one dict.

    Keys: ``srcc, krcc, plcc, plcc_raw, rmse, n, fit, fit_params`` (``fit`` is ``"logistic"`` or
    ``"linear"``; ``rmse`` is on the MOS scale). Correlations of constant inputs are NaN (they are
    undefined), never an exception. JSON-serialisable.

    >>> r = correlation_report([1, 2, 3, 4, 5, 6], [1.1, 1.9, 3.2, 3.9, 5.1, 6.0])
    >>> (round(r["srcc"], 6), round(r["krcc"], 6), r["n"], r["fit"])
    (1.0, 1.0, 6, 'logistic')
    """
    x, y = _as_pair(pred, mos)
    params, kind = fit_logistic(x, y)
    fitted = apply_fit(x, params, kind)
    return {
        "srcc": _statistic(scipy.stats.spearmanr, x, y),
        "krcc": _statistic(scipy.stats.kendalltau, x, y),
        "plcc": _statistic(scipy.stats.pearsonr, fitted, y),
        "plcc_raw": _statistic(scipy.stats.pearsonr, x, y),
        "rmse": float(np.sqrt(np.mean((fitted - y) ** 2))),
        "n": int(len(x)),
        "fit": kind,
        "fit_params": [float(p) for p in params],
    }


def scatter_plot(pred, mos, path: str | Path, title: str = "") -> Path:
    """Scatter of predictions against MOS with the fitted curve; writes a PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window (CI, servers)
    import matplotlib.pyplot as plt

    x, y = _as_pair(pred, mos)
    report = correlation_report(x, y)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    try:
        ax.scatter(x, y, s=10, alpha=0.6, label="videos")
        grid = np.linspace(x.min(), x.max(), 200)
        ax.plot(grid, apply_fit(grid, report["fit_params"], report["fit"]), color="C3", label=f"{report['fit']} fit")
        ax.set_xlabel("predicted score")
        ax.set_ylabel("MOS")
        subtitle = f"SRCC {report['srcc']:.3f}  PLCC {report['plcc']:.3f}  n={report['n']}"
        ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=9)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def format_table(rows: list[dict], float_digits: int = 4) -> str:
    """A plain-text table of report rows (columns in order of first appearance), for printing.

    >>> print(format_table([{"benchmark": "KoNViD-1k", "srcc": 0.81234}, {"benchmark": "LSVQ", "srcc": 0.8, "n": 7}]))
    benchmark  srcc    n
    ---------  ------  -
    KoNViD-1k  0.8123
    LSVQ       0.8000  7
    """
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    cells = [[_cell(row.get(col), float_digits) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)
    return "\n".join(line.rstrip() for line in lines)


# --- scoring a benchmark ---------------------------------------------------------------------------


@dataclass
class BenchmarkResult:
    """One scored set: :func:`correlation_report` plus ``benchmark``, ``failed`` and ``comparisons``
    (``report``), each video's score, and why each failed video has none."""

    report: dict
    scores: dict[str, float]
    errors: dict[str, str]


def evaluate_scorer(
    scorer,
    videos,
    name: str,
    output_dir: str | Path | None = None,
    *,
    exclude: Iterable[str] = (),
    settings: dict | None = None,
    progress: bool = False,
    title: str | None = None,
) -> BenchmarkResult:
    """Score every video of a scored set with a :class:`~ssvqa.scorer.QualityScorer` and correlate
    the scores with MOS: what ``ssvqa evaluate`` and every round do.

    ``videos`` has ``video`` and ``mos`` columns (:func:`ssvqa.benchmarks.load_scored`); videos in
    ``exclude`` (anchors taken from the set itself) are left out. Videos that cannot be scored are
    left out of the correlation and listed in ``errors``. With ``output_dir`` it writes
    ``report.json`` (with ``settings``), ``scores.csv`` (video, score, mos) and ``scatter.png``.
    Raises :class:`~ssvqa.errors.SsvqaError` when fewer than two videos could be scored. Under
    ``accelerate launch`` every process calls it (the scorer splits the comparisons); pass
    ``output_dir`` on the main process only.
    """
    from ssvqa.errors import SsvqaError

    excluded = set(exclude)
    rows = [(video, mos) for video, mos in zip(videos["video"], videos["mos"]) if video not in excluded]
    scores, errors = scorer.score_with_errors([video for video, _ in rows], progress=progress)
    scored = [(video, scores[video], mos) for video, mos in rows if video in scores]
    if len(scored) < 2:
        raise SsvqaError(f"{name}: only {len(scored)} video(s) scored; need at least 2 to correlate")
    pred, mos = [s for _, s, _ in scored], [m for _, _, m in scored]
    report = {"benchmark": name, **correlation_report(pred, mos), "failed": errors, "comparisons": scorer.comparisons}
    if settings:
        report["settings"] = settings
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
        with (out / "scores.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video", "score", "mos"])
            writer.writerows([video, f"{score:.4f}", m] for video, score, m in scored)
        scatter_plot(pred, mos, out / "scatter.png", title=title or name)
    return BenchmarkResult(report, {video: score for video, score, _ in scored}, errors)


def ladder_srcc(label_file: str | Path, scores: dict[str, float]) -> float | None:
    """Mean SRCC within each content of a label file with a ``content`` column (graded versions
    of one source, as :func:`ssvqa.corpus.make_graded_pool` writes): do a clip's scores fall as
    its distortion grows? None without that column or without a content of 3+ scored versions."""
    with open(label_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "content" not in rows[0]:
        return None
    by_name = {Path(video).name: score for video, score in scores.items()}  # the label file names files in its folder
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row["name"] in by_name:
            groups.setdefault(row["content"], []).append((by_name[row["name"]], float(row["mos"])))
    # a clip whose scores (or qualities) are all equal has no rank correlation: it is left out
    values = [scipy.stats.spearmanr(*zip(*group)).statistic for group in groups.values()
              if len(group) >= 3 and len({s for s, _ in group}) > 1 and len({q for _, q in group}) > 1]
    return float(sum(values) / len(values)) if values else None


# --- internals -----------------------------------------------------------------------------------


def _as_pair(pred, mos) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(mos, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"predictions and MOS differ in length: {x.size} vs {y.size}")
    if x.size < 2:
        raise ValueError(f"need at least 2 videos to correlate, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("predictions and MOS must be finite (found NaN or inf)")
    return x, y


def _statistic(fn, x, y) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan  # correlation with a constant is undefined
    return float(fn(x, y).statistic)


def _cell(value, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)
