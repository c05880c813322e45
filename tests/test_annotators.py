"""Annotators: the protocol, cached failure-tolerant annotation (1 and 2 processes), and the
classical teacher, which must order videos of hidden known quality well above chance."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import free_port
from ssvqa.annotators import AnnotationResult, Annotator, ClassicalAnnotator, ScoreCache, annotate
from ssvqa.annotators.classical import DEFAULT_WEIGHTS, FEATURES
from ssvqa.errors import VideoError

REPO = Path(__file__).resolve().parents[1]

# Hidden-quality set: synthetic sources, each clean and at every level of a few distortions of
# the simulator (``ssvqa.distortions``). Within a source, a higher level is the worse video.
DISTORTIONS = ("h264", "gaussian_blur", "noise", "downscale", "frame_rate")
SOURCES = {  # ffmpeg lavfi graphs; {w}x{h} the clip size, {qw}x{qh} a quarter of it
    "testsrc2": "testsrc2=size={w}x{h}:rate=10",
    "mandelbrot": "mandelbrot=size={w}x{h}:rate=10:start_scale=2",
    "cells": "life=size={qw}x{qh}:rate=10:mold=8:ratio=0.35:seed=7:death_color=#204030:life_color=#f0c060,"
    "scale={w}:{h}:flags=bicubic",
    "texture": "color=c=gray:size={qw}x{qh}:rate=10,noise=c0s=90:c0f=u,scale={w}:{h}:flags=bicubic,"
    "noise=c0s=25:c0f=u,gblur=sigma=0.6,scroll=h=0.012:v=0.006",
}


def make_hidden_quality_set(root: Path, size: str = "160x120", duration: float = 2.0, seed: int = 0) -> list[dict]:
    """Every source clean and at every level of ``DISTORTIONS``: rows with the hidden truth.

    Returns dicts with ``path``, ``source``, ``distortion`` (``"clean"`` for the reference) and
    ``level`` (0 clean, then 1 mildest .. n strongest, as in the simulator's catalogue).
    """
    from ssvqa.distortions import Variant, ladder, render_variants

    width, height = (int(v) for v in size.split("x"))
    sizes = {"w": width, "h": height, "qw": width // 4, "qh": height // 4}
    root.mkdir(parents=True, exist_ok=True)
    variants = [Variant(())] + [variant for name in DISTORTIONS for variant in ladder(name)]
    rows = []
    for source, graph in SOURCES.items():
        clip = root / f"{source}.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph.format(**sizes),
             "-t", str(duration), "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(clip)],
            check=True,
        )
        for variant, path in zip(variants, render_variants(clip, variants, root / source, seed=seed)):
            distortion, level = variant.steps[0] if variant.steps else ("clean", 0)
            rows.append({"path": str(path), "source": source, "distortion": distortion, "level": level})
    return rows


def pairwise_agreement(rows: list[dict], scores: dict[str, float], same_ladder: bool) -> tuple[float, int]:
    """Share of within-source pairs of different severity that the scores order like the truth.

    ``same_ladder``: only pairs on one distortion ladder (the clean version belongs to every
    ladder), where the truth is unambiguous; otherwise every within-source pair of different
    level (blur 2 vs noise 1 counts as "the level-1 video is better"). Ties count one half.
    """
    agree = total = 0.0
    for a, b in itertools.combinations(rows, 2):
        if a["source"] != b["source"] or a["level"] == b["level"]:
            continue
        if same_ladder and a["distortion"] != b["distortion"] and 0 not in (a["level"], b["level"]):
            continue
        total += 1
        score_a, score_b = scores[a["path"]], scores[b["path"]]
        agree += 0.5 if score_a == score_b else float((score_a > score_b) == (a["level"] < b["level"]))
    return agree / total, int(total)


@pytest.fixture(scope="module")
def hidden_quality(tmp_path_factory) -> list[dict]:
    return make_hidden_quality_set(tmp_path_factory.mktemp("hidden"))


@pytest.fixture(scope="module")
def hidden_features(hidden_quality) -> dict[str, dict[str, float]]:
    """path -> the classical teacher's features (measured once for the module's tests)."""
    teacher = ClassicalAnnotator()
    return {row["path"]: teacher.features(row["path"]) for row in hidden_quality}


class CountingAnnotator:
    """Wraps an annotator and records every batch it is asked to score (to test the cache)."""

    def __init__(self, inner, name: str | None = None):
        self.inner = inner
        self.name = name or inner.name
        self.fingerprint = getattr(inner, "fingerprint", "")
        self.batches: list[list[str]] = []

    def score(self, videos):
        self.batches.append([str(v) for v in videos])
        return self.inner.score(videos)

    @property
    def scored(self) -> list[str]:
        return [video for batch in self.batches for video in batch]


class SizeAnnotator:
    """A trivial teacher (file size), NaN for files whose name says so: protocol-level tests."""

    name = "size"

    def score(self, videos):
        return [math.nan if "nan" in Path(v).name else float(Path(v).stat().st_size) for v in videos]


# ----------------------------------------------------------------------------- protocol


def test_classical_annotator_follows_the_protocol():
    assert isinstance(ClassicalAnnotator(), Annotator)
    assert isinstance(SizeAnnotator(), Annotator)


def test_classical_weights_replace_the_defaults_and_change_the_fingerprint():
    subset = ClassicalAnnotator(weights={"sharpness": 1.0})
    assert subset.weights["sharpness"] == 1.0 and subset.weights["noise"] == 0.0
    assert ClassicalAnnotator().weights == {f: DEFAULT_WEIGHTS.get(f, 0.0) for f in FEATURES}
    assert subset.fingerprint != ClassicalAnnotator().fingerprint
    assert ClassicalAnnotator().fingerprint == ClassicalAnnotator().fingerprint
    with pytest.raises(ValueError, match="unknown feature"):
        ClassicalAnnotator(weights={"sharpnes": 1.0})
    with pytest.raises(ValueError, match="at least one"):
        ClassicalAnnotator(weights={"sharpness": 0.0})


# ----------------------------------------------------------------------------- classical teacher


def test_features_are_finite_and_named(video_factory):
    video = video_factory("clip.mp4", size="160x120", rate=10, duration=1)
    features = ClassicalAnnotator().features(video)
    assert list(features) == list(FEATURES)
    assert all(math.isfinite(value) for value in features.values())
    score = ClassicalAnnotator().score([video])[0]
    assert 0.0 < score < 100.0
    assert score == pytest.approx(ClassicalAnnotator().combine(features))


def test_each_measure_moves_the_way_its_distortion_says(hidden_quality, hidden_features):
    """The measure meant for a distortion moves monotonically along its ladder, on most sources."""
    expectations = {  # distortion -> (feature, +1 if it grows with severity)
        "gaussian_blur": ("sharpness", -1),
        "noise": ("noise", +1),
        "h264": ("bits_per_pixel", -1),
        "downscale": ("sharpness", -1),
        "frame_rate": ("duplicate_frames", +1),
    }
    for distortion, (feature, direction) in expectations.items():
        monotone = 0
        for source in SOURCES:
            ladder = sorted(
                (r for r in hidden_quality if r["source"] == source and r["distortion"] in ("clean", distortion)),
                key=lambda r: r["level"],
            )
            values = [direction * hidden_features[r["path"]][feature] for r in ladder]
            monotone += all(b > a for a, b in zip(values, values[1:]))
        assert monotone >= len(SOURCES) - 1, (distortion, feature, monotone)


def test_classical_teacher_orders_hidden_quality_well_above_chance(hidden_quality, hidden_features):
    teacher = ClassicalAnnotator()
    scores = {path: teacher.combine(features) for path, features in hidden_features.items()}
    assert teacher.score([hidden_quality[0]["path"]]) == [scores[hidden_quality[0]["path"]]]
    on_ladder, ladder_pairs = pairwise_agreement(hidden_quality, scores, same_ladder=True)
    overall, all_pairs = pairwise_agreement(hidden_quality, scores, same_ladder=False)
    print(f"classical teacher: same-ladder agreement {on_ladder:.3f} ({ladder_pairs} pairs), "
          f"all within-source pairs {overall:.3f} ({all_pairs} pairs); chance 0.5")
    assert on_ladder > 0.75
    assert overall > 0.65


# ----------------------------------------------------------------------------- annotate()

GOOD = ["landscape_720p30", "portrait", "small_10fps", "one_frame", "ten_bit", "vfr"]
BAD = {"empty": "0-byte", "not_video": "not a readable video", "truncated": "not a readable video", "audio_only": "no video stream"}


def test_odd_videos_are_annotated_and_bad_ones_skipped_with_reasons(odd_videos, tmp_path):
    missing = tmp_path / "missing.mp4"
    videos = [odd_videos[name] for name in GOOD + sorted(BAD)] + [missing]
    counting = CountingAnnotator(ClassicalAnnotator())
    result = annotate(videos, counting, batch_size=4, progress=False)
    assert set(result.scores) == {str(odd_videos[name]) for name in GOOD}
    assert all(0.0 < score < 100.0 for score in result.scores.values())
    assert set(result.skipped) == {str(odd_videos[name]) for name in BAD} | {str(missing)}
    for name, reason in BAD.items():
        assert reason in result.skipped[str(odd_videos[name])]
    assert "does not exist" in result.skipped[str(missing)]
    assert str(missing) not in result.hashes and len(result.hashes) == len(videos) - 1
    # a batch with a bad video was retried one video at a time, so its good videos were kept
    assert any(len(batch) == 4 for batch in counting.batches)
    assert any(len(batch) == 1 for batch in counting.batches)
    assert result.num_scored == len(videos) - 1 and result.num_cached == 0


def test_classical_teacher_raises_a_video_error_naming_the_file(odd_videos):
    with pytest.raises(VideoError) as caught:
        ClassicalAnnotator().score([odd_videos["small_10fps"], odd_videos["truncated"]])
    assert str(odd_videos["truncated"]) in str(caught.value)


def test_second_annotation_of_a_folder_scores_nothing(tmp_path, video_factory, odd_videos):
    videos = [video_factory(f"v{i}.mp4", source=source, size="128x96", duration=0.5)
              for i, source in enumerate(["testsrc2", "mandelbrot", "smptebars"])]
    videos.append(odd_videos["empty"])
    cache = tmp_path / "cache"
    first_teacher = CountingAnnotator(ClassicalAnnotator())
    first = annotate(videos, first_teacher, cache_dir=cache, progress=False)
    assert set(first_teacher.scored) == {str(v) for v in videos}
    assert first.num_cached == 0 and len(first.scores) == 3 and len(first.skipped) == 1

    again = CountingAnnotator(ClassicalAnnotator())
    second = annotate(videos, again, cache_dir=cache, progress=False)
    assert again.scored == []  # scores and the failure came from the cache
    assert second.scores == first.scores and second.skipped == first.skipped
    assert second.num_scored == 0 and second.num_cached == 4

    # the cache is keyed by content: a copy under another name is not scored again
    copy = tmp_path / "renamed.mp4"
    shutil.copy(videos[0], copy)
    third_teacher = CountingAnnotator(ClassicalAnnotator())
    third = annotate([*videos, copy], third_teacher, cache_dir=cache, progress=False)
    assert third_teacher.scored == [] and third.scores[str(copy)] == first.scores[str(videos[0])]

    # another configuration (fingerprint) of the same teacher has its own cache
    other = CountingAnnotator(ClassicalAnnotator(weights={"sharpness": 1.0}))
    annotate(videos, other, cache_dir=cache, progress=False)
    assert set(other.scored) == {str(v) for v in videos}


def test_duplicate_content_is_scored_once_and_non_finite_scores_are_skipped(tmp_path, video_factory):
    video = video_factory("a.mp4", size="64x48", duration=0.3)
    twin = tmp_path / "twin.mp4"
    shutil.copy(video, twin)
    bad = tmp_path / "nan.mp4"  # SizeAnnotator returns NaN for it
    shutil.copy(video_factory("b.mp4", size="64x48", duration=0.4), bad)
    counting = CountingAnnotator(SizeAnnotator())
    result = annotate([video, twin, video, bad], counting, cache_dir=tmp_path / "c", progress=False)
    assert counting.scored == [str(video), str(bad)]
    assert result.scores == {str(video): video.stat().st_size, str(twin): video.stat().st_size}
    assert "non-finite" in result.skipped[str(bad)]


def test_cache_ignores_a_line_cut_short_and_merges_files_of_several_processes(tmp_path):
    cache = ScoreCache(tmp_path, "teacher", "abc")
    cache.append([{"hash": "h1", "score": 1.0}])
    other = cache.folder / "scores-otherhost-1.jsonl"
    other.write_text(json.dumps({"hash": "h2", "error": "0-byte file"}) + "\n" + '{"hash": "h3", "sco')
    records = cache.load()
    assert set(records) == {"h1", "h2"}
    assert records["h2"]["error"] == "0-byte file"


def test_annotation_result_keys_follow_input_order(tmp_path, video_factory):
    videos = [video_factory(f"{name}.mp4", size="64x48", duration=0.2 + 0.1 * i) for i, name in enumerate("cab")]
    result = annotate(videos, SizeAnnotator(), batch_size=2, progress=False)
    assert isinstance(result, AnnotationResult)
    assert list(result.scores) == [str(v) for v in videos]


# ----------------------------------------------------------------------------- two processes

TWO_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch.distributed
    from accelerate import Accelerator
    import ssvqa
    from ssvqa.annotators import ClassicalAnnotator, annotate

    class Counting(ClassicalAnnotator):
        scored = []
        def score(self, videos):
            self.scored.extend(str(v) for v in videos)
            return super().score(videos)

    videos, cache_dir, out_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    state = Accelerator(cpu=True)  # on a CPU machine; a GPU run would use Accelerator()
    teacher = Counting()
    result = annotate(videos, teacher, cache_dir=cache_dir, batch_size=2, accelerator=state, progress=False)
    with open(f"{out_dir}/rank{state.process_index}.json", "w") as handle:
        json.dump({"scores": result.scores, "skipped": result.skipped, "scored": teacher.scored,
                   "num_scored": result.num_scored, "world": state.num_processes}, handle)
    torch.distributed.barrier()  # meet before teardown, or gloo may wait forever on a rank that left
    torch.distributed.destroy_process_group()
    """
)


def test_two_processes_under_accelerate_launch_give_the_single_process_result(tmp_path, video_factory, odd_videos):
    videos = [str(video_factory(f"v{i}.mp4", source=source, size="96x72", duration=0.5))
              for i, source in enumerate(["testsrc2", "mandelbrot", "smptebars", "rgbtestsrc", "testsrc"])]
    videos.append(str(odd_videos["not_video"]))
    script = tmp_path / "annotate_two.py"
    script.write_text(TWO_PROCESS_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(script), json.dumps(videos), str(tmp_path / "cache"), str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(command, check=True, cwd=REPO, env=env, timeout=300)

    ranks = [json.loads((out / f"rank{k}.json").read_text()) for k in range(2)]
    assert all(rank["world"] == 2 for rank in ranks)
    single = annotate(videos, ClassicalAnnotator(), progress=False)
    for rank in ranks:  # every process holds the whole, single-process result
        assert rank["scores"] == pytest.approx(single.scores) and rank["skipped"] == single.skipped
        assert rank["num_scored"] == len(videos)
    # each process scored its own strided share, and nothing twice
    assert sorted(ranks[0]["scored"] + ranks[1]["scored"]) == sorted(videos)
    assert set(ranks[0]["scored"]) == set(videos[0::2]) and set(ranks[1]["scored"]) == set(videos[1::2])
    # one cache file per process; a later single-process run finds everything cached
    cache_files = list((tmp_path / "cache").rglob("scores-*.jsonl"))
    assert len(cache_files) == 2
    counting = CountingAnnotator(ClassicalAnnotator())
    cached = annotate(videos, counting, cache_dir=tmp_path / "cache", progress=False)
    assert counting.scored == [] and cached.scores == pytest.approx(single.scores)
