"""The distortion-pair builder end to end: odd sources, labels vs SSIM, resume after kill -9,
sharding, list-file and dataset inputs, the command line, and publishing (fake Hub HTTP API)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from ssvqa.pairs.distortion import SIMILAR_SSIM, build_distortion_pairs
from ssvqa.hub import HubPush
from ssvqa.labels import LEVEL_WEIGHTS, LEVELS

REPO = Path(__file__).resolve().parents[1]
# Every source gets all three types (spatial, compression, temporal) and one composed variant.
OPTIONS = dict(types=["gaussian_blur", "h264", "frame_rate"], types_per_source=3, composed=1, max_pixels=160 * 120, test_fraction=0.5, seed=0)
CLI_OPTIONS = ["--types", "gaussian_blur,h264,frame_rate", "--types-per-source", "3", "--composed", "1", "--max-pixels", "19200", "--test-fraction", "0.5", "--seed", "0"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    """The issue's shapes: 1280x720 30 fps, 406x720 portrait, 192x144 10 fps, and a 0-byte file."""
    from conftest import make_video

    root = tmp_path_factory.mktemp("sources")
    make_video(root / "landscape.mp4", size="1280x720", rate=30, duration=0.5)
    make_video(root / "portrait.mp4", size="406x720", rate=30, duration=1, source="mandelbrot")
    make_video(root / "small.mp4", size="192x144", rate=10, duration=1, source="smptebars")
    (root / "empty.mp4").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory):
    """One uninterrupted, unsharded build: what resumed and sharded builds must equal."""
    out = tmp_path_factory.mktemp("reference") / "pairs"
    started = time.monotonic()
    report = build_distortion_pairs(sources, out, **OPTIONS)
    print(f"reference build: {report.num_pairs} pairs in {time.monotonic() - started:.1f} s")
    return out, report


def read_rows(folder: Path) -> dict[str, list[dict]]:
    """Every row per split, in file order, videos replaced by (name, sha256 of the bytes)."""
    rows: dict[str, list[dict]] = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        split = path.name.split("-")[0]
        for row in pq.read_table(path).to_pylist():
            for column in ("video_a", "video_b"):
                row[column] = (row[column]["path"], hashlib.sha256(row[column]["bytes"]).hexdigest())
            rows.setdefault(split, []).append(row)
    return rows


def ffmpeg_ssim(reference: Path, distorted: Path) -> float:
    """ffmpeg's mean SSIM ("All") of ``distorted`` against ``reference``, measured here."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(distorted), "-i", str(reference), "-lavfi", "ssim", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )
    value = re.findall(r"All:([0-9.]+|inf)", result.stderr)[-1]
    return 1.0 if value == "inf" else float(value)


def test_odd_sources_give_pairs_whose_labels_agree_with_ssim(sources, reference, tmp_path):
    out, report = reference
    # The 0-byte file is skipped with its reason; every other source yields pairs.
    assert [(s["input"], s["reason"]) for s in report.skipped] == [("empty.mp4", "0-byte file")]
    assert [json.loads(line)["reason"] for line in (out / "skipped-00000-of-00001.jsonl").read_text().splitlines()] == ["0-byte file"]
    assert "`empty.mp4`: 0-byte file" in (out / "README.md").read_text()
    assert report.sources == 3

    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    rows = [row for split in loaded.values() for row in split.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))]
    assert len(rows) == report.num_pairs
    provenance = [json.loads(row["provenance"]) for row in rows]
    assert {p["source"] for p in provenance} == {"landscape.mp4", "portrait.mp4", "small.mp4"}
    if len(loaded) == 2:
        assert not set(loaded["train"]["content_id"]) & set(loaded["test"]["content_id"])
    assert all(row["prob"] == LEVEL_WEIGHTS[row["label"]] and row["origin"] == "distortion" for row in rows)
    # Both orientations occur, so a ranker cannot learn "the second is always worse".
    labels = [LEVELS[row["label"]] for row in rows]
    assert {"better", "superior"} & set(labels) and {"worse", "inferior"} & set(labels)

    # Write the embedded videos out and measure SSIM of each against its content's reference.
    videos: dict[tuple[str, str], Path] = {}
    for row in rows:
        for column in ("video_a", "video_b"):
            path = tmp_path / "videos" / row["content_id"] / row[column]["path"]
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(row[column]["bytes"])
            variant = path.stem.split("_", 1)[1]
            videos[(row["content_id"], variant)] = path
    ssim = {}
    for (content, variant), path in videos.items():
        ssim[(content, variant)] = 1.0 if variant == "pristine" else ffmpeg_ssim(videos[(content, "pristine")], path)

    # Portrait stays portrait, and every variant fits the pixel budget.
    for (content, variant), path in videos.items():
        info = __import__("ssvqa.video", fromlist=["probe"]).probe(path)
        assert info.width * info.height <= OPTIONS["max_pixels"]
    checked = 0
    for row, prov in zip(rows, provenance):
        a = ssim[(row["content_id"], prov["variant_a"])]
        b = ssim[(row["content_id"], prov["variant_b"])]
        # The provenance's SSIM (ssvqa.distortions.ssim_many) is close to plain ffmpeg's; its graph
        # rescales the distorted input, which moves the value by up to ~0.002.
        assert prov["ssim_a"] == pytest.approx(a, abs=5e-3) and prov["ssim_b"] == pytest.approx(b, abs=5e-3)
        level = LEVELS[row["label"]]
        if level == "similar":
            assert min(a, b) >= SIMILAR_SSIM - 1e-4 or prov.get("unchanged_steps")
            continue
        if prov["family"] not in ("spatial", "compression"):
            continue
        # Within a spatial or compression ladder the more distorted video never has the higher SSIM.
        assert prov["level_a"] != prov["level_b"]
        more, less = (a, b) if level in ("better", "superior") else (b, a)
        assert more <= less, (prov, a, b)
        assert (prov["level_a"] > prov["level_b"]) == (level in ("better", "superior"))
        assert abs(prov["level_a"] - prov["level_b"]) == prov["gap"]
        assert (level in ("better", "worse")) == (prov["gap"] == 1)
        checked += 1
    assert checked >= 3 * 2 * 10 - 10  # nearly all ladder pairs of two families, three sources
    decoder = loaded[next(iter(loaded))][0]["video_a"]
    assert decoder[0].shape[0] == 3


def test_killed_build_resumes_without_redoing_finished_sources(sources, reference, tmp_path):
    ref_out, ref_report = reference
    out = tmp_path / "pairs"
    command = [sys.executable, "-m", "dataset_builders.distortion_pairs", str(sources), "-o", str(out), *CLI_OPTIONS]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_dir = out / ".work" / "done"
    deadline = time.monotonic() + 120
    while not (done_dir.is_dir() and any(done_dir.glob("*.json"))):
        assert process.poll() is None, "the builder ended before finishing one source"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in done_dir.glob("*.json")}
    files = {p: p.stat().st_mtime_ns for p in (out / ".work" / "items").rglob("*.mp4") if p.parent.name + ".json" in finished}
    assert 1 <= len(finished) < 3 and not (out / "data").exists()

    report = build_distortion_pairs(sources, out, **OPTIONS)
    assert report.reused >= len(finished)
    assert report.ran + report.reused == 4 and report.ran >= 3 - len(finished)
    assert {p.name: p.stat().st_mtime_ns for p in done_dir.glob("*.json") if p.name in finished} == finished
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in files.items())
    # Same rows, same order, same video bytes as the uninterrupted build.
    assert read_rows(out) == read_rows(ref_out)
    assert report.counts == ref_report.counts and report.skipped == ref_report.skipped


def test_two_shards_in_one_folder_equal_one_unsharded_build(sources, reference, tmp_path):
    ref_out, _ = reference
    out = tmp_path / "pairs"
    reports = [build_distortion_pairs(sources, out, shard_index=i, num_shards=2, **OPTIONS) for i in range(2)]
    assert sum(r.sources for r in reports) == 3 and sum(len(r.skipped) for r in reports) == 1
    sharded, whole = read_rows(out), read_rows(ref_out)
    key = lambda row: json.dumps(row, sort_keys=True, default=str)  # noqa: E731
    assert {s: sorted(map(key, rows)) for s, rows in sharded.items()} == {s: sorted(map(key, rows)) for s, rows in whole.items()}
    # Each content lives in exactly one shard file, and the card counts both shards.
    owners: dict[str, set] = {}
    for path in (out / "data").glob("*.parquet"):
        for content in set(pq.read_table(path, columns=["content_id"]).column("content_id").to_pylist()):
            owners.setdefault(content, set()).add(path.name.split("-of-")[0].split("-")[-1])
    assert all(len(shards) == 1 for shards in owners.values()) and len(owners) == 3
    card = (out / "README.md").read_text()
    assert "Shards present: 1 of 2, 2 of 2." in card
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert sum(len(split) for split in loaded.values()) == sum(map(len, whole.values()))


def test_list_file_and_dataset_inputs(sources, tmp_path):
    options = dict(OPTIONS, types=["gaussian_blur"], types_per_source=1, composed=0)
    listed = tmp_path / "lists"
    listed.mkdir()
    shutil.copy(sources / "small.mp4", listed / "small.mp4")
    (listed / "inputs.txt").write_text("small.mp4\n../../etc/passwd\n")
    from_list = build_distortion_pairs(listed / "inputs.txt", tmp_path / "from_list", **options)
    assert from_list.sources == 1 and from_list.num_pairs == 10  # pristine + 4 levels: C(5, 2)
    assert [s["input"] for s in from_list.skipped] == ["../../etc/passwd"]
    assert "escapes the list file's folder" in from_list.skipped[0]["reason"]

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"clip": [str(sources / "small.mp4"), str(sources / "empty.mp4")]}).cast_column(
        "clip", datasets.Video()
    ).save_to_disk(str(saved))
    from_dataset = build_distortion_pairs(saved, tmp_path / "from_dataset", video_column="clip", **options)
    assert from_dataset.sources == 1 and [s["reason"] for s in from_dataset.skipped] == ["0-byte file"]
    # The same bytes give the same content id, variants and labels, whatever the input kind.
    with pytest.raises(ValueError, match="must not be inside the input folder"):
        build_distortion_pairs(sources, sources / "pairs", **options)
    strip = lambda rows: [(r["content_id"], r["label"], r["video_a"], r["video_b"]) for r in rows]  # noqa: E731
    assert {s: strip(r) for s, r in read_rows(tmp_path / "from_dataset").items()} == {
        s: strip(r) for s, r in read_rows(tmp_path / "from_list").items()
    }


def test_command_line_help(capsys):
    from ssvqa.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["build-distortion-pairs", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--push-to-hub", "--num-proc", "--shard-index", "--num-shards", "--types", "gaussian_blur"):
        assert option in text
    assert "superior" in text  # the label mapping is explained
    result = subprocess.run([sys.executable, str(REPO / "dataset_builders" / "distortion_pairs.py"), "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "--push-to-hub" in result.stdout


def test_push_to_hub_publishes_the_dataset_folder(reference, tmp_path, monkeypatch):
    """Publishing: mocks the Hub HTTP API only (tests/fake_hub.py); the real client runs."""
    import huggingface_hub.constants
    from fake_hub import FakeHub

    ref_out, _ = reference
    out = tmp_path / "pairs"
    shutil.copytree(ref_out, out)  # with its .work: the rebuild reuses everything
    sources = json.loads((ref_out / "README.md").read_text().split("```json")[1].split("```")[0])["inputs"]
    with FakeHub() as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        target = HubPush("someone/distortion-pairs", revision="round-0", token="hf_secret")
        report = build_distortion_pairs(sources, out, push_to_hub=target, **OPTIONS)
        assert report.ran == 0 and report.commit_url.startswith(f"{hub.endpoint}/datasets/someone/distortion-pairs/commit/")
        local = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".work" not in p.parts}
        assert hub.files("someone/distortion-pairs", revision="round-0") == local
        assert any(name.startswith("data/") for name in local) and "README.md" in local
    assert "hf_secret" not in str(report)


def test_small_sources_are_not_dropped_for_the_codec_drawn(tmp_path):
    import random

    from conftest import make_video
    from ssvqa.pairs.distortion import DistortionPairsConfig, plan_variants

    # Under the default draw (3 of 13 types) about 23 % of sources drew av1 and 23 % h265; a
    # 48x48 source that drew either was skipped whole. Now av1 renders (libaom-av1) and h265 is
    # not drawn under 64 px a side.
    draws = [plan_variants(random.Random(seed), DistortionPairsConfig(), (48, 48))[0] for seed in range(300)]
    assert not any("h265" in types for types in draws)
    assert 0.15 < sum("av1" in types for types in draws) / len(draws) < 0.35
    assert all(len(types) == 3 for types in draws)

    small = make_video(tmp_path / "src" / "small.mp4", size="48x48", source="mandelbrot")
    report = build_distortion_pairs([small], tmp_path / "av1", types=["av1", "h265"], types_per_source=2, levels=[1, 2])
    rows = [json.loads(row["provenance"]) for split in read_rows(tmp_path / "av1").values() for row in split]
    assert not report.skipped and {row["distortion"] for row in rows} == {"av1"} and len(rows) == 3
    only_h265 = build_distortion_pairs([small], tmp_path / "h265", types=["h265"], levels=[1])
    assert only_h265.num_pairs == 0
    assert only_h265.skipped[0]["reason"] == "h265 (libx265) needs frames of at least 64x64 pixels; this source renders at 48x48"


def test_byte_identical_sources_are_rendered_once(tmp_path):
    from conftest import make_video

    folder = tmp_path / "videos"
    make_video(folder / "a.mp4", size="96x64", source="smptebars")
    make_video(folder / "c.mp4", size="96x64", source="mandelbrot")
    options = dict(types=["gaussian_blur"], levels=[1, 2], max_pixels=96 * 64, test_fraction=0.0)
    without = build_distortion_pairs(folder, tmp_path / "without", **options)
    shutil.copyfile(folder / "a.mp4", folder / "b.mp4")
    shutil.copyfile(folder / "a.mp4", folder / "sub.mp4")
    report = build_distortion_pairs(folder, tmp_path / "with", **options)
    assert report.num_pairs == without.num_pairs == 6 and report.sources == 2
    assert read_rows(tmp_path / "with") == read_rows(tmp_path / "without")
    assert {(s["input"], s["reason"].split(" (")[0]) for s in report.skipped} == {
        ("b.mp4", "duplicate of a.mp4"), ("sub.mp4", "duplicate of a.mp4"),
    }


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_bad_test_fraction_fails_before_any_work(sources, tmp_path, fraction):
    """The pair builders check test_fraction first: nothing is rendered, annotated or written
    (before, the distortion builder rendered every source and then failed in the split)."""
    from ssvqa.errors import UsageError
    from ssvqa.pairs import build_mos_pairs, build_pseudo_pairs

    out = tmp_path / "pairs"
    for build, inputs in ((build_distortion_pairs, sources), (build_pseudo_pairs, sorted(sources.glob("*.mp4"))),
                          (build_mos_pairs, sources)):
        with pytest.raises(UsageError, match=rf"test_fraction must be within \[0, 1\], got {fraction}"):
            build(inputs, out, test_fraction=fraction)
        assert not out.exists()
