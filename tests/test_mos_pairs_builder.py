"""``ssvqa build-mos-pairs``: a labelled folder (12 tiny ffmpeg videos + labels.csv with MOS and
rater std, one corrupt file, one labelled video missing) becomes a pair dataset whose labels follow
the human scores, whose splits share no video, and whose card and manifest name the bad inputs."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from statistics import NormalDist

import datasets
import pytest

from ssvqa.pairs.mos import build_mos_pairs
from ssvqa.cli import main as cli_main
from ssvqa.errors import SsvqaError
from ssvqa.labels import LEVELS
from ssvqa.pairs.dataset import load_pairs

SOURCES = ("testsrc2", "mandelbrot", "rgbtestsrc", "smptebars", "testsrc", "yuvtestsrc")
NUM_VIDEOS = 12
STD = 0.3


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``v00.mp4`` .. ``v11.mp4`` (MOS 1.0 .. 5.0, std 0.3), ``broken.mp4`` (not a video, MOS 3.1)
    and ``labels.csv`` that also names ``gone.mp4`` (no file)."""
    from conftest import make_video

    root = tmp_path_factory.mktemp("mos-set")
    lines = ["name,mos,std"]
    for i in range(NUM_VIDEOS):
        # the second round of sources at another rate: no two files are identical
        make_video(root / f"v{i:02d}.mp4", size="64x48", rate=10 + 2 * (i // len(SOURCES)), duration=0.5,
                   source=SOURCES[i % len(SOURCES)])
        # scores out of file order, so a label that followed file names would be caught
        lines.append(f"v{i:02d}.mp4,{1.0 + 4.0 * ((i * 5) % NUM_VIDEOS) / (NUM_VIDEOS - 1):.4f},{STD}")
    (root / "broken.mp4").write_bytes(b"this is not a video file" * 10)
    lines += ["broken.mp4,3.1,0.3", "gone.mp4,2.2,0.3"]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def built(folder, tmp_path_factory):
    """Built through the ``ssvqa`` command (so its registration is tested too)."""
    out = tmp_path_factory.mktemp("out") / "mos-pairs"
    report = build_mos_pairs(folder / "labels.csv", tmp_path_factory.mktemp("direct") / "mos-pairs", std_column="std",
                             on_missing="skip", num_groups=4, test_fraction=0.5, pairs_per_video=3)
    code = cli_main(["build-mos-pairs", str(folder / "labels.csv"), "-o", str(out), "--std-column", "std",
                     "--on-missing", "skip", "--num-groups", "4", "--test-fraction", "0.5", "--pairs-per-video", "3"])
    assert code == 0
    return out, report


def csv_scores(folder: Path) -> dict[str, float]:
    rows = (folder / "labels.csv").read_text().splitlines()[1:]
    return {name: float(mos) for name, mos, _ in (row.split(",") for row in rows)}


def video_of_bytes(folder: Path) -> dict[str, str]:
    """sha256 of a file's bytes -> its name: identifies an embedded video without trusting the rows."""
    found = {hashlib.sha256(path.read_bytes()).hexdigest(): path.name for path in folder.glob("v*.mp4")}
    assert len(found) == NUM_VIDEOS, "two test videos are identical files"
    return found


def embedded_names(split: datasets.Dataset, folder: Path) -> list[tuple[str, str]]:
    by_hash = video_of_bytes(folder)
    split = split.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
    return [(by_hash[hashlib.sha256(a["bytes"]).hexdigest()], by_hash[hashlib.sha256(b["bytes"]).hexdigest()])
            for a, b in zip(split["video_a"], split["video_b"])]


def test_dataset_loads_with_both_splits_and_mos_origin(built):
    out, report = built
    pairs = load_pairs(out)
    assert {split: len(rows) for split, rows in pairs.items()} == {s: sum(c.values()) for s, c in report.counts.items()}
    assert set(pairs) == {"train", "test"}
    assert len(pairs["train"]) > 0 and len(pairs["test"]) > 0
    for split in pairs.values():
        assert set(split["origin"]) == {"mos"}
        assert all(c.startswith("mos-g") for c in split["content_id"])


def test_labels_and_probs_follow_the_human_scores(built, folder):
    out, report = built
    mos = csv_scores(folder)
    normal = NormalDist()
    pairs = load_pairs(out)
    checked = 0
    for split in pairs.values():
        for (a, b), label, prob in zip(embedded_names(split, folder), split["label"], split["prob"]):
            gap = mos[b] - mos[a]
            z = gap / math.hypot(STD, STD)
            assert gap != 0
            # second better by the humans <=> a level above `similar` (gaps here are >= 0.36 MOS, z > 0.85)
            assert (label > LEVELS.index("similar")) == (gap > 0), (a, b, gap, LEVELS[label])
            assert (label in (0, 4)) == (abs(z) >= NormalDist().inv_cdf(0.875)), (a, b, z, LEVELS[label])
            assert prob == pytest.approx(normal.cdf(z), abs=1e-6)  # rater std given: Thurstone
            checked += 1
    assert checked == sum(len(s) for s in pairs.values())
    used = {name for split in pairs.values() for pair in embedded_names(split, folder) for name in pair}
    # every readable video is paired, unless hashed alone into its group (then the report says so)
    assert used | set(report.unpaired) == {f"v{i:02d}.mp4" for i in range(NUM_VIDEOS)}
    assert not used & set(report.unpaired) and len(used) >= NUM_VIDEOS - 2


def test_no_video_is_in_both_splits(built, folder):
    pairs = load_pairs(built[0])
    train = {name for pair in embedded_names(pairs["train"], folder) for name in pair}
    test = {name for pair in embedded_names(pairs["test"], folder) for name in pair}
    assert train and test and not train & test
    assert not set(pairs["train"]["content_id"]) & set(pairs["test"]["content_id"])


def test_bad_and_missing_videos_are_reported_not_paired(built):
    built, report = built
    assert {item["input"] for item in report.skipped} >= {"broken.mp4"}
    skipped = [json.loads(line) for path in built.glob("skipped-*.jsonl") for line in path.read_text().splitlines()]
    reasons = {item["input"]: item["reason"] for item in skipped}
    assert "broken.mp4" in reasons and "not a readable video" in reasons["broken.mp4"]
    missing = [reason for name, reason in reasons.items() if "gone.mp4" in reason]
    assert len(missing) == 1 and "not found" in missing[0]
    card = (built / "README.md").read_text()
    assert "broken.mp4" in card and "gone.mp4" in card
    assert "human" in card.lower()


def test_missing_video_stops_the_build_by_default(folder, tmp_path):
    with pytest.raises(SsvqaError, match="gone.mp4"):
        build_mos_pairs(folder / "labels.csv", tmp_path / "out", std_column="std")
    assert not (tmp_path / "out" / "data").exists()  # nothing half-written


def test_named_benchmark_and_deterministic_rebuild(folder, tmp_path):
    """``NAME=ROOT`` reads a benchmark's own label file (KoNViD-1k's columns, names without extension);
    without rater std the probs are level weights; the same seed gives the same rows."""
    scores = csv_scores(folder)
    root = tmp_path / "KoNViD_1k"
    (root / "KoNViD_1k_videos").mkdir(parents=True)
    lines = ["flickr_id,MOS"]
    for name, value in scores.items():
        if (folder / name).exists() and name.startswith("v"):
            (root / "KoNViD_1k_videos" / name).write_bytes((folder / name).read_bytes())
            lines.append(f"{Path(name).stem},{value}")
    (root / "KoNViD_1k_attributes.csv").write_text("\n".join(lines) + "\n")

    first = build_mos_pairs(f"konvid-1k={root}", tmp_path / "a", num_groups=4, test_fraction=0.5, check=False)
    again = build_mos_pairs(f"konvid-1k={root}", tmp_path / "b", num_groups=4, test_fraction=0.5, check=False)
    assert first.num_pairs > 0 and first.counts == again.counts and not first.skipped
    rows = load_pairs(tmp_path / "a")["train"]
    assert set(rows["prob"]) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert [json.loads(p)["scale_basis"] for p in rows["provenance"]] == ["dataset_std"] * len(rows)
    assert rows["provenance"] == load_pairs(tmp_path / "b")["train"]["provenance"]
    with pytest.raises(SsvqaError, match="split"):
        build_mos_pairs(folder / "labels.csv", tmp_path / "c", split="train")
