"""QualityScorer, `ssvqa score` and `ssvqa evaluate` with a tiny (untrained) ranker.

An untrained model cannot score well, so nothing here checks score *quality*: only that the
anchor block is computed once and reloaded, scores are 0–100, batching across videos changes
nothing, bad files are reported and the rest scored, and the commands write what they promise.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import ssvqa.modeling
from ssvqa.cli import main as cli_main
from ssvqa.errors import SsvqaError, VideoError
from ssvqa.commands.score import expand_inputs
from ssvqa.scorer import ANCHORS_FILE, QualityScorer
from ssvqa.testing import save_tiny_model
from conftest import make_video

SOURCES = ("smptebars", "testsrc2", "mandelbrot", "rgbtestsrc", "yuvtestsrc", "pal75bars")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model folder, three anchor videos with scores, and six test videos (one size, 1 s)."""
    root = tmp_path_factory.mktemp("scorer")
    model = save_tiny_model(root / "model")
    anchors = [(make_video(root / "anchors" / f"a{i}.mp4", size="112x84", source=s), 20.0 * (i + 1)) for i, s in enumerate(SOURCES[:3])]
    tests = [make_video(root / "videos" / f"v{i}.mp4", size="112x84", source=s, rate=5 + i) for i, s in enumerate(SOURCES)]
    return {"root": root, "model": model, "anchors": anchors, "videos": tests}


@pytest.fixture
def compare_calls(monkeypatch):
    """A spy on ssvqa.modeling.compare: records how many pairs each call got, then runs the real one."""
    real = ssvqa.modeling.compare
    calls: list[int] = []

    def spy(model, processor, videos_a, videos_b, **kwargs):
        calls.append(len(videos_a))
        return real(model, processor, videos_a, videos_b, **kwargs)

    monkeypatch.setattr(ssvqa.modeling, "compare", spy)
    return calls


def test_anchor_block_once_then_reloaded_without_comparisons(world, tmp_path, compare_calls):
    scorer = QualityScorer.from_pretrained(world["model"], world["anchors"], batch_size=4)
    assert sum(compare_calls) == 3 * 2 == scorer.comparisons  # K(K-1) ordered anchor pairs
    assert np.isnan(np.diag(scorer.anchor_block)).all()
    off = scorer.anchor_block[~np.eye(3, dtype=bool)]
    assert ((off > 0) & (off < 1)).all()

    saved = scorer.save_anchors(tmp_path / "ranker")
    record = json.loads(saved.read_text())
    assert [a["score"] for a in record["anchors"]] == [20.0, 40.0, 60.0]
    assert all(not a["video"].startswith("/") and (saved.parent / a["video"]).is_file() for a in record["anchors"])

    compare_calls.clear()
    reloaded = QualityScorer.from_pretrained(world["model"], saved, batch_size=4)
    assert compare_calls == [] and reloaded.comparisons == 0
    np.testing.assert_array_equal(reloaded.anchor_block, scorer.anchor_block)
    videos = world["videos"][:2]
    assert reloaded.score(videos) == pytest.approx(scorer.score(videos), abs=1e-9)
    # Reloading under another frame count recomputes the block (its answers would not match).
    with pytest.warns(UserWarning, match="num_frames"):
        other = QualityScorer.from_pretrained(world["model"], saved, num_frames=4)
    assert other.comparisons == 6


def test_anchors_json_next_to_the_model_is_found(world, tmp_path, compare_calls):
    import shutil

    folder = shutil.copytree(world["model"], tmp_path / "model")
    with pytest.raises(SsvqaError, match="build_anchors"):
        QualityScorer.from_pretrained(folder)
    QualityScorer.from_pretrained(folder, world["anchors"]).save_anchors()  # default: the model folder
    assert (folder / ANCHORS_FILE).is_file()
    compare_calls.clear()
    scorer = QualityScorer.from_pretrained(folder)
    assert compare_calls == []
    assert all(folder in p.parents for p in scorer.anchor_videos)


def test_anchor_paths_may_not_leave_their_folder(world, tmp_path):
    bad = tmp_path / ANCHORS_FILE
    bad.write_text(json.dumps({"anchors": [{"video": "../x.mp4", "score": 1}, {"video": "y.mp4", "score": 2}]}))
    with pytest.raises(VideoError, match="outside"):
        QualityScorer.from_pretrained(world["model"], bad)


def test_batched_scores_equal_one_by_one_and_cross_video_batches(world, compare_calls):
    scorer = QualityScorer.from_pretrained(world["model"], world["anchors"], batch_size=4)
    videos = world["videos"]
    compare_calls.clear()
    together = scorer.score(videos)
    # All N·K pairs went to compare, in chunks of whole batches mixing videos (K=3, batch 4: 4 videos).
    assert compare_calls == [4 * 3, 2 * 3]
    assert all(0.0 <= s <= 100.0 for s in together)
    one_by_one = [scorer.score([v])[0] for v in videos]
    assert together == pytest.approx(one_by_one, abs=1e-6)
    # Several chunks give the same scores, whether each is decoded ahead (in a background thread
    # while the previous one runs) or inline between chunks.
    scorer.chunk_videos = 5
    for ahead in (True, False):
        scorer.decode_ahead = ahead
        assert scorer.score(videos) == pytest.approx(together, abs=1e-6)
        scores, errors = scorer.score_with_errors([*videos[:5], world["root"] / "nope.mp4", videos[5]])
        assert list(scores.values()) == pytest.approx(together, abs=1e-6) and list(errors) == [str(world["root"] / "nope.mp4")]
    scorer.decode_ahead = None
    # The paper's min–max rule on the same answers: only the mapping to 0–100 differs.
    scorer.calibration = "minmax"
    minmax = scorer.score(videos)
    assert all(0.0 <= s <= 100.0 for s in minmax) and minmax != pytest.approx(together, abs=1e-6)
    with pytest.raises(ValueError, match="calibration"):
        QualityScorer.from_pretrained(world["model"], world["anchors"], calibration="clamp")


def test_decoding_ahead_is_chosen_only_when_it_leaves_the_model_its_cores(monkeypatch):
    """Decoding in a background thread pays only where it takes no core from the model."""
    from ssvqa.scorer import decode_ahead_default

    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert decode_ahead_default(model) is False  # torch already uses both cores
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert decode_ahead_default(model) is True  # a core is free for decoding
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    meta = torch.nn.Linear(2, 2, device="meta")  # stands for a model on an accelerator: not the CPU
    assert decode_ahead_default(meta) is True


def test_mirrored_asks_both_orders(world, compare_calls):
    scorer = QualityScorer.from_pretrained(world["model"], world["anchors"], mirrored=True)
    compare_calls.clear()
    mirrored = scorer.score(world["videos"][:2])
    assert compare_calls == [2 * 3 * 2]
    assert all(0.0 <= s <= 100.0 for s in mirrored)


def test_bad_videos_reported_and_the_rest_scored(world, odd_videos):
    scorer = QualityScorer.from_pretrained(world["model"], world["anchors"])
    good = world["videos"][0]
    missing = world["root"] / "nope.mp4"
    scores, errors = scorer.score_with_errors([good, odd_videos["empty"], odd_videos["not_video"], missing])
    assert list(scores) == [str(good)]
    assert set(errors) == {str(odd_videos["empty"]), str(odd_videos["not_video"]), str(missing)}
    assert "0-byte" in errors[str(odd_videos["empty"])] and "does not exist" in errors[str(missing)]
    with pytest.raises(VideoError, match="0-byte"):
        scorer.score([good, odd_videos["empty"]])


def test_build_anchors_spreads_over_the_range():
    rows = [(f"v{i}.mp4", float(m), 0.1) for i, m in enumerate([5, 6, 30, 50, 52, 70, 95])]
    anchors = QualityScorer.build_anchors(rows, k=3)
    assert [s for _, s in anchors] == sorted(s for _, s in anchors)
    thirds = [int((score - 5) // 30.0001) for _, score in anchors]  # one anchor per third of 5..95
    assert thirds == [0, 1, 2]
    # Rows of a benchmark dataset work too; the raters' agreement (mos_std) decides within a third.
    rows = [{"video": f"v{i}.mp4", "mos": m, "mos_std": sd} for i, (m, sd) in enumerate([(5, 0.1), (30, 0.9), (60, 0.5), (95, 0.5)])]
    assert [v for v, _ in QualityScorer.build_anchors(rows, k=3)] == ["v0.mp4", "v2.mp4", "v3.mp4"]


def test_score_command(world, odd_videos, tmp_path, capsys):
    QualityScorer.from_pretrained(world["model"], world["anchors"]).save_anchors(tmp_path / "anchors")
    anchors = str(tmp_path / "anchors" / ANCHORS_FILE)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{world['videos'][1]}\n# a comment\n")
    output = tmp_path / "scores.json"
    base = ["score", "--model", str(world["model"]), "--anchors", anchors, "--no-progress"]
    code = cli_main([*base, str(world["videos"][0]), str(listing), str(odd_videos["empty"]), "-o", str(output)])
    out, err = capsys.readouterr()
    assert code == 0
    assert world["videos"][0].name in out and world["videos"][1].name in out
    assert "empty.mp4" in err and "0-byte" in err
    written = json.loads(output.read_text())
    assert len(written["scores"]) == 2 and list(written["errors"]) == [str(odd_videos["empty"])]

    assert cli_main([*base, str(world["videos"][0]), str(odd_videos["empty"]), "--strict"]) == 1
    assert cli_main([*base, str(odd_videos["empty"]), str(odd_videos["not_video"])]) == 1
    capsys.readouterr()
    # No anchors anywhere: a clear error, non-zero exit.
    assert cli_main(["score", "--model", str(world["model"]), str(world["videos"][0])]) == 1
    assert "build_anchors" in capsys.readouterr().err


def test_expand_inputs_folders_and_lists(world, tmp_path):
    listing = tmp_path / "videos.txt"
    listing.write_text("../missing.mp4\n")
    found = expand_inputs([str(world["root"] / "videos"), str(listing)])
    assert found[:-1] == [str(v) for v in world["videos"]] and found[-1].endswith("missing.mp4")


def test_evaluate_command_on_a_labelled_folder(world, tmp_path, capsys):
    bench = tmp_path / "bench"
    bench.mkdir()
    lines = ["name,mos"]
    for i, video in enumerate(world["videos"]):
        (bench / video.name).write_bytes(video.read_bytes())
        lines.append(f"{video.name},{1 + 0.5 * i}")
    (bench / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "results"
    code = cli_main([
        "evaluate", "--model", str(world["model"]), "--root", str(bench), "--labels", "labels.csv",
        "--anchors-from-benchmark", "2", "-o", str(out), "--no-progress",
    ])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == len(world["videos"]) - 2  # the two anchors are left out
    assert {"srcc", "plcc", "krcc", "rmse", "settings"} <= set(report)
    assert report["settings"]["anchors_from_benchmark"] is True
    assert (out / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert "srcc" in capsys.readouterr().out

    # Under `accelerate launch` with 2 CPU processes: both compare, the main one writes the same report.
    import subprocess
    import sys

    from conftest import free_port

    two = tmp_path / "results-2"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
              "-m", "ssvqa.cli", "evaluate", "--model", str(world["model"]), "--root", str(bench), "--labels", "labels.csv",
              "--anchors-from-benchmark", "2", "-o", str(two), "--no-progress"]
    done = subprocess.run(launch, env=dict(os.environ, OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="true"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("srcc") == 1  # one process printed the table
    parallel = json.loads((two / "report.json").read_text())
    assert parallel["n"] == report["n"]
    for key in ("srcc", "plcc", "krcc"):
        assert parallel[key] == pytest.approx(report[key], abs=1e-6)
    with open(out / "scores.csv") as alone, open(two / "scores.csv") as split:
        assert [row.split(",")[0] for row in alone] == [row.split(",")[0] for row in split]


# --- quality over time -------------------------------------------------------------------------


def _sharpness(frames) -> float:
    """Mean absolute horizontal gradient of the grey frames: blur lowers it."""
    grey = frames.float().mean(dim=1)
    return float((grey[..., 1:] - grey[..., :-1]).abs().mean())


def _sharpness_compare(model, processor, videos_a, videos_b, **kwargs):
    """A deterministic stand-in for the ranker at the scorer's compare seam: P(second better) grows
    with the sharpness gap, as mass on 'superior' vs 'inferior'. The tiny test model is untrained,
    so this is what lets a test check that the segment plumbing carries a real quality signal."""
    import torch

    gap = torch.tensor([_sharpness(b) - _sharpness(a) for a, b in zip(videos_a, videos_b)], dtype=torch.float64)
    p = torch.sigmoid(gap / 2.0)
    zeros = torch.zeros_like(p)
    return torch.stack([1 - p, zeros, zeros, zeros, p], dim=1)


@pytest.fixture(scope="module")
def half_blurred(tmp_path_factory):
    """A 6 s clip whose second half is the heaviest Gaussian blur of ssvqa.distortions, and anchors
    made from the same source at every blur level (reference 100 ... heaviest 0)."""
    import subprocess

    from ssvqa.distortions import Variant, ladder, render_variants

    root = tmp_path_factory.mktemp("segments")
    source = make_video(root / "source.mp4", size="160x120", rate=10, duration=6, source="testsrc2")
    blurs = ladder("gaussian_blur")
    rendered = render_variants(source, [Variant(()), *blurs], root / "variants")
    reference, heaviest = rendered[0], rendered[-1]
    video = root / "half_blurred.mp4"
    subprocess.run([
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(reference), "-i", str(heaviest),
        "-filter_complex", "[0:v]trim=0:3,setpts=PTS-STARTPTS[a];[1:v]trim=3:6,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]",
        "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(video),
    ], check=True)
    step = 100.0 / len(blurs)
    anchors = [(path, 100.0 - step * i) for i, path in enumerate(rendered)]
    return {"video": video, "anchors": anchors, "reference": reference}


def test_segments_follow_quality_over_time(world, half_blurred, monkeypatch, compare_calls):
    monkeypatch.setattr(ssvqa.modeling, "compare", _sharpness_compare)
    scorer = QualityScorer.from_pretrained(world["model"], half_blurred["anchors"], batch_size=8)
    video, clean = str(half_blurred["video"]), str(half_blurred["reference"])
    results, errors = scorer.score_details([video, clean], segments=1.0)
    assert not errors
    parts = results[video].segments
    assert [(round(p.start, 1), round(p.end, 1)) for p in parts] == [(i, i + 1) for i in range(6)]
    first, second = [p.score for p in parts[:3]], [p.score for p in parts[3:]]
    assert min(first) > max(second) + 30, (first, second)
    # The clean clip stays high throughout; each video's score and preferences are those of score().
    assert min(p.score for p in results[clean].segments) > max(second) + 30
    assert [results[v].score for v in (video, clean)] == pytest.approx(scorer.score([video, clean]), abs=1e-9)
    assert len(results[video].preferences) == len(half_blurred["anchors"])


def test_segments_share_batches_with_the_videos(world, compare_calls):
    """One pass per chunk: the whole video and its segments go to compare together."""
    scorer = QualityScorer.from_pretrained(world["model"], world["anchors"], batch_size=4)
    compare_calls.clear()
    video = world["videos"][0]  # 1 s long: two 0.5 s segments
    results, _ = scorer.score_details([video], segments=0.5)
    assert len(results[str(video)].segments) == 2
    assert compare_calls == [3 * 3]
    # float32 logits: here the video's comparisons share a batch with its segments, there they run alone, and
    # matrix products of other shapes round differently (3e-7 on a score of 42 on one CPU): float32's precision
    assert results[str(video)].score == pytest.approx(scorer.score([video])[0], rel=1e-6)


def test_score_command_with_segments(world, tmp_path, capsys):
    QualityScorer.from_pretrained(world["model"], world["anchors"]).save_anchors(tmp_path / "anchors")
    plot, output = tmp_path / "curve.png", tmp_path / "scores.csv"
    code = cli_main([
        "score", "--model", str(world["model"]), "--anchors", str(tmp_path / "anchors" / ANCHORS_FILE), "--no-progress",
        str(world["videos"][0]), "--segments", "0.5", "--plot", str(plot), "-o", str(output),
    ])
    assert code == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = output.read_text().splitlines()
    assert rows[0] == "video,start,end,score,error" and len(rows) == 1 + 1 + 2
