"""Pseudo-label pairs end to end: teachers (classical, tiny LMM, tiny ranker), the builder (skipped
inputs, round trip, split by video, score cache, agreement with hidden quality, CLI), and relabelling.

Videos: 3 synthetic sources x (pristine, blur 2/4, noise 2/4) at 160x120, 1 s, rendered with
``ssvqa.distortions``; the hidden quality of a video is known when it is compared with a video of
the same source that it dominates (pristine beats everything, a lower level of the same
distortion beats a higher one), or with the same distortion at another level on another source.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import datasets
import pytest

from ssvqa.pairs.pseudo import build_pseudo_pairs
from ssvqa.annotators import ClassicalAnnotator, annotate
from ssvqa.errors import VideoError
from ssvqa.labels import LEVELS, SIMILAR

SOURCES = ("testsrc2", "mandelbrot", "rgbtestsrc")
VARIANTS = ("pristine", "gaussian_blur-2", "gaussian_blur-4", "noise-2", "noise-4")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """``corpus/<source>/<variant>.mp4`` plus a 0-byte ``corpus/empty.mp4``."""
    from conftest import make_video
    from ssvqa.distortions import Variant, render_variants

    root = tmp_path_factory.mktemp("corpus")
    raw = tmp_path_factory.mktemp("raw")
    for source in SOURCES:
        clip = make_video(raw / f"{source}.mp4", size="160x120", rate=10, duration=1, source=source)
        render_variants(clip, [Variant.parse(v) if v != "pristine" else Variant(()) for v in VARIANTS], root / source, seed=1)
    (root / "empty.mp4").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pseudo") / "pairs"
    report = build_pseudo_pairs(corpus, out, teachers=["classical"], max_pairs_per_video=4, test_fraction=0.3, seed=0, progress=False)
    return out, report


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from ssvqa.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def load(folder: Path, tmp_path: Path) -> datasets.DatasetDict:
    """``load_dataset`` with a fresh cache: datasets caches a local folder by name, not content."""
    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))


def hidden_order(name_a: str, name_b: str) -> int | None:
    """+1 when the second video is truly better, -1 when worse, None when unknown."""
    (source_a, variant_a), (source_b, variant_b) = (Path(n).parts[-2:] for n in (name_a, name_b))
    variant_a, variant_b = Path(variant_a).stem, Path(variant_b).stem
    if variant_a == variant_b:
        return None
    if source_a == source_b and "pristine" in (variant_a, variant_b):
        return 1 if variant_b == "pristine" else -1
    kind_a, _, level_a = variant_a.rpartition("-")
    kind_b, _, level_b = variant_b.rpartition("-")
    if kind_a == kind_b and kind_a:  # same distortion, another level (any source)
        return 1 if int(level_b) < int(level_a) else -1
    return None


def test_builder_skips_bad_inputs_round_trips_and_splits_by_video(built, corpus, tmp_path):
    out, report = built
    print(report)
    manifest = [json.loads(line) for path in out.glob("skipped-*.jsonl") for line in path.read_text().splitlines()]
    assert [item["input"] for item in manifest] == ["empty.mp4"]
    assert "0-byte" in manifest[0]["reason"] or "empty" in manifest[0]["reason"]
    assert report.videos == len(SOURCES) * len(VARIANTS)

    loaded = load(out, tmp_path)
    assert set(loaded) == {"train", "test"}
    assert sum(len(split) for split in loaded.values()) == report.num_pairs > 0
    videos = {}
    for split, dataset in loaded.items():
        raw = dataset.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
        videos[split] = set()
        for row in raw:
            assert row["origin"] == "pseudo"
            provenance = json.loads(row["provenance"])
            assert set(provenance["teachers"]) == {"classical"}
            assert row["prob"] == pytest.approx(0.5 * (1 + math.erf(provenance["z"] / math.sqrt(2))), abs=1e-6)
            assert (row["prob"] > 0.5) == (provenance["score_b"] > provenance["score_a"])
            assert provenance["sha256_a"] != provenance["sha256_b"]
            assert row["video_a"]["bytes"] and row["video_b"]["bytes"]
            videos[split] |= {provenance["sha256_a"], provenance["sha256_b"]}
    assert videos["train"] and videos["test"] and not videos["train"] & videos["test"]

    card = (out / "README.md").read_text()
    assert "classical" in card and "dropped for teacher disagreement" in card and "empty.mp4" in card


def test_pseudo_labels_agree_with_hidden_quality(built, tmp_path):
    """The figure to report: how often the pseudo label's direction matches the hidden truth."""
    out, _ = built
    agree = total = similar = 0
    for dataset in load(out, tmp_path).values():
        for row in dataset.select_columns(["label", "provenance"]):
            provenance = json.loads(row["provenance"])
            truth = hidden_order(provenance["source_a"], provenance["source_b"])
            if truth is None:
                continue
            if row["label"] == SIMILAR:
                similar += 1
                continue
            total += 1
            agree += (1 if row["label"] > SIMILAR else -1) == truth
    print(f"pseudo-label agreement with hidden quality: {agree}/{total} decisive pairs ({similar} similar)")
    assert total >= 5 and agree / total >= 0.7


def test_rerun_scores_nothing_and_cli_reuses_the_cache(built, corpus, tmp_path, capsys):
    out, first = built
    from accelerate import PartialState

    # One process under an accelerator: it is the main process, so it writes the same dataset.
    again = build_pseudo_pairs(corpus, out, teachers=["classical"], max_pairs_per_video=4, test_fraction=0.3, seed=0,
                               progress=False, accelerator=PartialState(cpu=True))
    # The 0-byte file is tried once too (its failure is cached, like a score).
    assert first.teachers["classical"] == {"scored": len(SOURCES) * len(VARIANTS), "failed": 1, "cached": 0}
    assert again.teachers["classical"] == {"scored": 0, "failed": 0, "cached": len(SOURCES) * len(VARIANTS) + 1}
    assert again.num_pairs == first.num_pairs and again.counts == first.counts

    from ssvqa.cli import main

    other = tmp_path / "cli-pairs"
    code = main(["build-pseudo-pairs", str(corpus), "-o", str(other), "--work-dir", str(out / ".work"),
                 "--test-fraction", "0.3", "--similar", "0.3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "0 videos scored now" in printed and "empty.mp4" in printed
    assert json.loads((other / "README.md").read_text().split("```json")[1].split("```")[0])["thresholds"]["similar"] == 0.3


def test_lmm_annotator_scores_a_batch_with_a_portrait_video(tiny_model, video_factory):
    from ssvqa.annotators.lmm import LMMLevelAnnotator

    landscape = video_factory("landscape.mp4", size="160x120", rate=10, duration=1)
    portrait = video_factory("portrait.mp4", size="90x160", rate=10, duration=1, source="mandelbrot")
    bars = video_factory("bars.mp4", size="160x120", rate=10, duration=1, source="smptebars")
    teacher = LMMLevelAnnotator(tiny_model, num_frames=4, max_pixels=112 * 112, batch_size=3)
    batch = teacher.score([landscape, portrait, bars])
    assert len(batch) == 3 and all(0.0 <= s <= 100.0 for s in batch)
    assert len(set(batch)) > 1  # the scores depend on the video
    # Left padding and logits_to_keep=1 read the right position: alone == in a padded batch.
    assert teacher.score([portrait])[0] == pytest.approx(batch[1], abs=1e-3)
    # The cache key follows the model: another model (same settings) gets another fingerprint.
    assert teacher.fingerprint != LMMLevelAnnotator(tiny_model.with_name("other"), num_frames=4, max_pixels=112 * 112).fingerprint
    with pytest.raises(VideoError):
        teacher.score([tmp := landscape.with_name("missing.mp4")])
    result = annotate([landscape, tmp], teacher, progress=False)
    assert set(result.scores) == {str(landscape)} and str(tmp) in result.skipped


def test_ranker_annotator_scores_0_to_100(tiny_model, video_factory):
    from ssvqa.annotators.ranker import RankerAnnotator

    low = video_factory("low.mp4", size="160x120", rate=10, duration=1, source="smptebars")
    high = video_factory("high.mp4", size="160x120", rate=10, duration=1)
    test = video_factory("test.mp4", size="90x160", rate=10, duration=1, source="mandelbrot")
    teacher = RankerAnnotator.from_pretrained(tiny_model, anchors=[(low, 20.0), (high, 80.0)], num_frames=2)
    other = RankerAnnotator(teacher.scorer.__class__(teacher.scorer.model, teacher.scorer.processor, [low, high], [10.0, 90.0],
                                                     teacher.scorer.anchor_block, sampling=teacher.scorer.sampling),
                            model_id=teacher.model_id)
    scores = teacher.score([test, low])
    assert all(0.0 <= s <= 100.0 for s in scores)
    assert teacher.fingerprint != other.fingerprint  # other anchor scores, other cache


def test_build_with_two_teachers_drops_disagreements(built, corpus, tiny_model, tmp_path):
    from ssvqa.annotators.lmm import LMMLevelAnnotator

    lmm = LMMLevelAnnotator(tiny_model, num_frames=2, max_pixels=56 * 56, batch_size=8)
    # The first build's cache: only the new teacher scores anything.
    report = build_pseudo_pairs(corpus, tmp_path / "two", teachers=["classical", lmm], test_fraction=0.3, progress=False,
                                work_dir=built[0] / ".work")
    assert report.teachers["classical"]["scored"] == 0
    assert report.teachers["lmm"] == {"scored": len(SOURCES) * len(VARIANTS), "failed": 1, "cached": 0}
    counts = report.label_counts["all"]
    assert counts["kept"] + counts["dropped_disagreement"] == counts["sampled"] and counts["kept"] == report.num_pairs
    row = load(tmp_path / "two", tmp_path)["train"][0]
    assert set(json.loads(row["provenance"])["teachers"]) == {"classical", "lmm"}
    print(f"two teachers: {counts}")


def test_relabel_keeps_previous_labels_and_changes_origin(built, tmp_path):
    from ssvqa.relabel import relabel

    out, _ = built
    train = load(out, tmp_path)["train"]

    class Counting:
        """A real teacher (sharpness only) that remembers how many videos it was asked to score."""

        name = "sharp"

        def __init__(self):
            self.inner, self.seen = ClassicalAnnotator(weights={"sharpness": 1.0}), []

        def score(self, videos):
            self.seen += list(videos)
            return self.inner.score(videos)

    teacher = Counting()
    new = relabel(train, teacher, round=1)
    assert len(new) == len(train) and new.features == train.features
    raw = train.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
    distinct = {json.loads(p)[k] for p in raw["provenance"] for k in ("sha256_a", "sha256_b")}
    assert len(teacher.seen) == len(distinct)  # each distinct video decoded and scored once
    for before, after in zip(train.select_columns(["label", "prob", "provenance"]), new.select_columns(["label", "prob", "origin", "provenance"])):
        provenance = json.loads(after["provenance"])
        assert after["origin"] == "relabel" and provenance["round"] == 1 and provenance["annotator"] == "sharp"
        assert provenance["previous_label"] == LEVELS[before["label"]]
        assert provenance["previous_prob"] == pytest.approx(before["prob"])
        assert provenance["teachers"] == json.loads(before["provenance"])["teachers"]  # old provenance kept
        assert (after["prob"] > 0.5) == (provenance["relabel"]["raw_b"] > provenance["relabel"]["raw_a"])

    # Scores given directly (by SHA-256): labels follow them; unsure pairs can be dropped.
    scores = {h: float(int(h[:6], 16)) for h in distinct}
    direct = relabel(train, scores, round=2, drop_below_confidence=0.9, name="hash-order")
    assert 0 < len(direct) <= len(train)
    for row in direct.select_columns(["prob", "provenance"]):
        provenance = json.loads(row["provenance"])
        assert max(row["prob"], 1 - row["prob"]) >= 0.9 - 1e-6
        assert (row["prob"] > 0.5) == (scores[provenance["relabel"]["sha256_b"]] > scores[provenance["relabel"]["sha256_a"]])


def test_external_teacher_scores_round_trip_into_pseudo_pairs(corpus, tmp_path):
    """Scores made elsewhere (a teacher's own repository) join the ensemble and are named in the
    provenance; inputs without a score are skipped by name, unknown entries are reported."""
    from ssvqa.annotators.external import ExternalScores
    from ssvqa.errors import SsvqaError

    videos = sorted(p for p in corpus.rglob("*.mp4") if p.stat().st_size > 0)
    truth = {}
    for path in videos:
        variant = path.stem
        truth[path] = 100.0 if variant == "pristine" else 100.0 - 15 * int(variant.rpartition("-")[2])
    named = {f"{p.parent.name}/{p.name}": score for p, score in truth.items()}
    left_out = videos[0]
    rows = [f"{name},{score}" for name, score in named.items() if not name.endswith(f"{left_out.parent.name}/{left_out.name}")]
    scores_file = tmp_path / "dover.csv"
    scores_file.write_text("video,score\n" + "\n".join(rows + ["not-in-the-inputs/x.mp4,50"]) + "\n")

    out = tmp_path / "pairs"
    report = build_pseudo_pairs(corpus, out, teachers=[], external_teachers=[f"dover={scores_file}"],
                                max_pairs_per_video=4, test_fraction=0.0, seed=0, progress=False)
    assert report.unknown_videos == {"dover": ["not-in-the-inputs/x.mp4"]}
    skipped = {item["input"]: item["reason"] for item in report.skipped}
    assert any("no score" in reason and "dover" in reason for reason in skipped.values())
    assert len(report.skipped) == 2  # the left-out video and the 0-byte file
    train = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))["train"]
    assert len(train) > 0
    for row in train:
        provenance = json.loads(row["provenance"])
        assert set(provenance["teachers"]) == {"dover"}
        name_a, name_b = provenance["source_a"], provenance["source_b"]
        assert provenance["teachers"]["dover"]["a"] == named[f"{Path(name_a).parent.name}/{Path(name_a).name}"]
        if provenance["teachers"]["dover"]["a"] != provenance["teachers"]["dover"]["b"]:
            second_better = provenance["teachers"]["dover"]["b"] > provenance["teachers"]["dover"]["a"]
            assert row["label"] != SIMILAR or abs(provenance["z"]) <= 1.0
            if row["label"] != SIMILAR:
                assert (row["label"] > SIMILAR) == second_better
    # a mistyped local file is a local error, not a Hub lookup
    with pytest.raises(SsvqaError, match="not a readable file"):
        ExternalScores.from_spec("dover=./missing_scores.csv")
    with pytest.raises(SsvqaError, match="NAME=PATH_OR_REPO"):
        ExternalScores.from_spec("dover")


def test_two_processes_share_the_teachers_scoring_and_write_one_dataset(corpus, tmp_path):
    """``accelerate launch`` with 2 CPU processes of ``ssvqa build-pseudo-pairs``: each process
    scores a share of the videos (one score cache file each), the main one writes the dataset, and
    the pairs equal a one-process build's."""
    import os
    import subprocess
    import sys

    from conftest import free_port
    from ssvqa.cli import main
    from ssvqa.pairs.dataset import load_pairs

    common = ["build-pseudo-pairs", str(corpus), "--test-fraction", "0.3"]
    assert main([*common, "-o", str(tmp_path / "one"), "--work-dir", str(tmp_path / "one-work")]) == 0
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
              "-m", "ssvqa.cli", *common, "-o", str(tmp_path / "two"), "--work-dir", str(tmp_path / "two-work")]
    env = dict(os.environ, OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="true")
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("videos scored now") == 1  # one process printed the summary
    assert len(list((tmp_path / "two-work").rglob("scores-*.jsonl"))) == 2  # both processes scored
    one, two = load_pairs(tmp_path / "one"), load_pairs(tmp_path / "two")
    for split in one:
        for column in ("label", "content_id"):
            assert two[split][column] == one[split][column], (split, column)
        # the same scores up to float rounding (the launch runs torch on one thread per process)
        assert two[split]["prob"] == pytest.approx(one[split]["prob"], abs=1e-5)
