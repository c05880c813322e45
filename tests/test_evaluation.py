"""Correlation metrics, the VQEG logistic fit, plots, tables, and the offline `evaluate` metric."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import scipy.stats

from ssvqa.evaluation import (
    VQA_CORRELATION_METRIC,
    correlation_report,
    fit_logistic,
    format_table,
    logistic_4,
    scatter_plot,
)


def nonlinear_data(n=300, noise=0.05, seed=0):
    """MOS on 1–5 that follows predictions on 0–100 through a logistic, plus rater noise."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 100, n)
    mos = logistic_4(pred, 4.8, 1.2, 55.0, 9.0) + rng.normal(0, noise, n)
    return pred, mos


def test_rank_correlations_match_their_definitions():
    rng = np.random.default_rng(1)
    pred, mos = rng.normal(size=50), rng.normal(size=50)
    report = correlation_report(pred, mos)
    assert report["srcc"] == pytest.approx(scipy.stats.spearmanr(pred, mos).statistic)
    assert report["krcc"] == pytest.approx(scipy.stats.kendalltau(pred, mos).statistic)
    assert report["plcc_raw"] == pytest.approx(np.corrcoef(pred, mos)[0, 1])
    # perfectly monotonic but curved: ranks are perfect, raw Pearson is not
    x = np.linspace(0, 5, 40)
    report = correlation_report(x, np.exp(x))
    assert report["srcc"] == pytest.approx(1.0) and report["krcc"] == pytest.approx(1.0)
    assert report["plcc_raw"] < 0.95


def test_logistic_fit_recovers_a_known_curve():
    pred, mos = nonlinear_data()
    params, kind = fit_logistic(pred, mos)
    assert kind == "logistic"
    b1, b2, b3, b4 = params
    assert b1 == pytest.approx(4.8, abs=0.1) and b2 == pytest.approx(1.2, abs=0.1)
    assert b3 == pytest.approx(55.0, abs=1.5) and abs(b4) == pytest.approx(9.0, abs=1.0)
    report = correlation_report(pred, mos)
    # the fit straightens the relation: PLCC after it beats raw PLCC, RMSE is the rater noise
    assert report["plcc"] > 0.99 > report["plcc_raw"]
    assert report["rmse"] == pytest.approx(0.05, abs=0.01)
    assert report["fit_params"] == pytest.approx(list(params))


def test_fit_falls_back_to_a_line_and_never_raises():
    report = correlation_report([1.0, 2.0, 3.0], [2.0, 1.0, 4.0])  # too few points for 4 parameters
    assert report["fit"] == "linear"
    assert report["plcc"] == pytest.approx(abs(report["plcc_raw"]))
    constant = correlation_report([5.0] * 10, np.arange(10.0))
    assert constant["fit"] == "linear" and math.isnan(constant["srcc"]) and math.isnan(constant["plcc"])
    assert constant["rmse"] == pytest.approx(np.std(np.arange(10.0)))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="differ in length"):
        correlation_report([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        correlation_report([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2"):
        correlation_report([1], [1])


def test_scatter_plot_writes_a_png(tmp_path):
    pred, mos = nonlinear_data(n=60)
    path = scatter_plot(pred, mos, tmp_path / "plots" / "konvid.png", title="KoNViD-1k")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_format_table_aligns_columns():
    rows = [{"benchmark": "KoNViD-1k", "srcc": 0.812345, "n": 1200}, {"benchmark": "LIVE-VQC", "plcc": float("nan")}]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["benchmark", "srcc", "n", "plcc"]
    assert lines[2].split() == ["KoNViD-1k", "0.8123", "1200"]
    assert lines[3].split() == ["LIVE-VQC", "nan"]
    # every column starts at the same offset in every line
    start = lines[0].index("srcc")
    assert lines[2][start:].startswith("0.8123")


def test_evaluate_metric_loads_offline_and_agrees(tmp_path, monkeypatch):
    import evaluate

    # Local metric folders need no network; guard that nothing tries (no Hub mock is needed).
    attempts = []

    def no_network(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    monkeypatch.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path / "modules")  # keep ~/.cache clean

    metric = evaluate.load(VQA_CORRELATION_METRIC, keep_in_memory=True, cache_dir=str(tmp_path / "metrics"))
    pred, mos = nonlinear_data(n=80, noise=0.2, seed=4)
    result = metric.compute(predictions=pred.tolist(), references=mos.tolist())
    expected = correlation_report(pred, mos)
    assert result.keys() == expected.keys()
    for key in ("srcc", "krcc", "plcc", "plcc_raw", "rmse"):
        assert result[key] == pytest.approx(expected[key], rel=1e-12)
    # the script file itself loads too, and batches added incrementally give the same answer
    metric = evaluate.load(VQA_CORRELATION_METRIC + "/vqa_correlation.py", keep_in_memory=True, cache_dir=str(tmp_path / "metrics"))
    metric.add_batch(predictions=pred[:40].tolist(), references=mos[:40].tolist())
    metric.add_batch(predictions=pred[40:].tolist(), references=mos[40:].tolist())
    assert metric.compute()["srcc"] == pytest.approx(expected["srcc"], rel=1e-12)
    assert attempts == []
