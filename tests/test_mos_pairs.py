"""MOS-labelled videos -> pair rows: levels, probs, determinism, and contents kept out of both splits."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import numpy as np
import pytest
import scipy.stats

from conftest import make_video
from ssvqa.labels import LEVEL_WEIGHTS, LEVELS
from ssvqa.pairs.mos import SIMILAR_Z, SUPERIOR_Z, mos_level, mos_pair_rows
from ssvqa.pairs.card import DatasetCardInfo
from ssvqa.pairs.dataset import PairRow, split_for, write_pair_dataset


def fake_records(n=120, seed=0, std=0.6):
    rng = np.random.default_rng(seed)
    return [
        {"video": f"/data/bench/v{i:03d}.mp4", "name": f"v{i:03d}.mp4", "mos": float(m), **({"mos_std": std} if std else {})}
        for i, m in enumerate(rng.uniform(1, 5, n))
    ]


def test_rows_fit_the_pair_schema():
    rows = mos_pair_rows(fake_records(), pairs_per_video=3)
    for row in rows:
        pair = PairRow(**row)  # the writer's own validation: label, prob range, origin
        assert pair.origin == "mos" and row["video_a"] != row["video_b"]
        prov = json.loads(row["provenance"])
        assert {"mos_a", "mos_b", "std_a", "std_b", "z", "gap"} <= prov.keys()


def test_prob_is_thurstone_and_level_is_the_nearest_weight():
    rows = mos_pair_rows(fake_records(std=0.5), pairs_per_video=4)
    for row in rows:
        prov = json.loads(row["provenance"])
        z = (prov["mos_b"] - prov["mos_a"]) / np.hypot(prov["std_a"], prov["std_b"])
        assert row["prob"] == pytest.approx(scipy.stats.norm.cdf(z), abs=1e-12)
        distances = [abs(w - row["prob"]) for w in LEVEL_WEIGHTS]
        assert row["label"] == int(np.argmin(distances))
        # the level is about the second video: better MOS for b means a level above "similar"
        if prov["mos_b"] - prov["mos_a"] > SIMILAR_Z * np.hypot(prov["std_a"], prov["std_b"]):
            assert LEVELS[row["label"]] in ("better", "superior")
    assert len({r["label"] for r in rows}) == 5  # every level occurs on uniformly spread MOS


def test_without_std_the_gap_is_relative_to_the_dataset_spread():
    records = fake_records(std=None)
    spread = np.std([r["mos"] for r in records])
    for row in mos_pair_rows(records):
        prov = json.loads(row["provenance"])
        assert prov["scale_basis"] == "dataset_std" and prov["scale"] == pytest.approx(spread)
        assert row["label"] == mos_level((prov["mos_b"] - prov["mos_a"]) / spread)
        assert row["prob"] == LEVEL_WEIGHTS[row["label"]]


def test_level_thresholds():
    assert [mos_level(z) for z in (0.0, 0.3, -0.3, 0.33, -0.33, 1.1, 1.2, -1.2)] == [2, 2, 2, 3, 1, 3, 4, 0]
    assert mos_level(0.5, similar_z=0.6, superior_z=2.0) == 2
    assert scipy.stats.norm.cdf(SIMILAR_Z) == pytest.approx(0.625) and scipy.stats.norm.cdf(SUPERIOR_Z) == pytest.approx(0.875)
    with pytest.raises(ValueError):
        mos_level(0.1, similar_z=1.0, superior_z=0.5)


def test_pairs_are_unique_balanced_and_deterministic():
    records = fake_records(n=200)
    rows = mos_pair_rows(records, pairs_per_video=4, seed=3)
    assert rows == mos_pair_rows(records, pairs_per_video=4, seed=3)
    assert rows != mos_pair_rows(records, pairs_per_video=4, seed=4)
    unordered = [frozenset((r["video_a"], r["video_b"])) for r in rows]
    assert len(unordered) == len(set(unordered))
    # every video proposes its 4 partners (groups of ~20 are big enough), so appears at least 4 times
    appearances = Counter(v for r in rows for v in (r["video_a"], r["video_b"]))
    assert min(appearances.values()) >= 4 and len(appearances) == 200
    # order is random: the second video is the better one about half the time
    second_better = np.mean([json.loads(r["provenance"])["gap"] > 0 for r in rows])
    assert 0.4 < second_better < 0.6


def test_no_video_or_source_content_reaches_both_splits():
    records = fake_records(n=300)
    for i, record in enumerate(records):
        record["source"] = f"src{i // 6}"  # six distorted versions per source content
    rows = mos_pair_rows(records, content_column="source")
    group_of_video, group_of_source = {}, {}
    source_of = {r["video"]: r["source"] for r in records}
    for row in rows:
        for video in (row["video_a"], row["video_b"]):
            assert group_of_video.setdefault(video, row["content_id"]) == row["content_id"]
            assert group_of_source.setdefault(source_of[video], row["content_id"]) == row["content_id"]
    # with the writer's content-id split, train and test share no video
    split_videos = {"train": set(), "test": set()}
    for row in rows:
        split_videos[split_for(row["content_id"], 0.2)].update((row["video_a"], row["video_b"]))
    assert split_videos["test"] and split_videos["train"]
    assert not split_videos["test"] & split_videos["train"]


def test_accepts_a_benchmark_dataset_and_writes_with_the_pair_writer(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", size="64x48", frames=1).read_bytes()
    paths = []
    for i in range(8):
        path = tmp_path / "bench" / f"c{i}.mp4"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(clip)
        paths.append(str(path))
    ds = datasets.Dataset.from_dict(
        {"video": paths, "mos": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5], "name": [f"c{i}.mp4" for i in range(8)], "mos_std": [0.4] * 8}
    )
    rows = mos_pair_rows(ds, pairs_per_video=2, num_groups=4)
    counts = write_pair_dataset(rows, tmp_path / "out", card=DatasetCardInfo(pretty_name="MOS pairs", builder="test"))
    assert sum(counts.values()) == len(rows)
    split = "+".join(sorted(counts))  # the 4 groups may all land in one split
    written = datasets.load_dataset(
        "parquet", data_dir=str(tmp_path / "out" / "data"), split=split, cache_dir=str(tmp_path / "cache")
    )
    assert set(written["origin"]) == {"mos"} and sorted(written["prob"]) == pytest.approx(sorted(r["prob"] for r in rows), abs=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="at least 2 videos"):
        mos_pair_rows(fake_records(n=1))
    flat = [{"video": f"v{i}.mp4", "mos": 3.0} for i in range(5)]
    with pytest.raises(ValueError, match="all MOS are equal"):
        mos_pair_rows(flat)
    with pytest.raises(ValueError, match="needs 'video' and 'mos'"):
        mos_pair_rows([{"video": "a.mp4"}, {"video": "b.mp4", "mos": 1.0}])
    with pytest.raises(ValueError, match="content_column 'src'"):
        mos_pair_rows(fake_records(n=4), content_column="src")
    # equal MOS with rater std is fine: every pair is "similar" with prob 0.5
    rows = mos_pair_rows([{**r, "mos_std": 0.5} for r in flat])
    assert {r["label"] for r in rows} == {LEVELS.index("similar")} and {r["prob"] for r in rows} == {0.5}
