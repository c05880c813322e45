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

import math
import warnings
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.stats

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
