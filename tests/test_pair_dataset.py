"""The pair dataset format: schema, content split, sharded Parquet with embedded videos, card."""

from __future__ import annotations

import json

import datasets
import pytest
import yaml

from ssvqa.errors import DatasetRootError
from ssvqa.labels import LEVELS
from ssvqa.pairs.card import DatasetCardInfo, summarize
from ssvqa.pairs.dataset import PairRow, pair_features, split_for, write_pair_dataset

CARD = DatasetCardInfo(
    pretty_name="Test pairs",
    builder="tests/test_pair_dataset.py",
    arguments={"seed": 0},
    method="Made by a test from synthetic clips.",
    sections={"Distortions": "| name | levels |\n|---|---|\n| blur | 4 |"},
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from conftest import make_video

    root = tmp_path_factory.mktemp("clips")
    sources = ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "testsrc", "yuvtestsrc")
    return [make_video(root / f"clip{i}.mp4", size="64x48", rate=5, duration=0.4, source=s) for i, s in enumerate(sources)]


def _rows(clips, contents=6):
    """Two pairs per content: (clip i, clip i+1) and its mirror, with different labels."""
    rows = []
    for i in range(contents):
        a, b = clips[i % len(clips)], clips[(i + 1) % len(clips)]
        rows.append(PairRow(str(a), str(b), "better", 0.75, "distortion", f"content{i}", {"i": i, "order": "ab"}))
        rows.append(PairRow(str(b), str(a), "worse", 0.25, "distortion", f"content{i}", {"i": i, "order": "ba"}))
    return rows


def test_features_and_row_validation():
    features = pair_features()
    assert list(features) == ["video_a", "video_b", "label", "prob", "origin", "content_id", "provenance"]
    assert isinstance(features["video_a"], datasets.Video) and features["label"].names == list(LEVELS)
    assert PairRow("a", "b", 4, 1.0, "pseudo", "c").label_index == 4
    with pytest.raises(ValueError, match="origin"):
        PairRow("a", "b", "better", 0.75, "synthetic", "c")
    with pytest.raises(ValueError, match="label"):
        PairRow("a", "b", "great", 0.75, "distortion", "c")
    with pytest.raises(ValueError, match="prob"):
        PairRow("a", "b", "better", 1.5, "distortion", "c")


def test_split_is_a_deterministic_fraction_of_contents():
    ids = [f"content-{i}" for i in range(2000)]
    splits = [split_for(i, 0.2, seed=0) for i in ids]
    assert splits == [split_for(i, 0.2, seed=0) for i in ids]
    assert 0.17 < splits.count("test") / len(ids) < 0.23
    other_seed = [split_for(i, 0.2, seed=1) for i in ids]
    assert other_seed != splits
    assert all(split_for(i, 0.0) == "train" for i in ids[:50])


def test_round_trip_through_load_dataset(clips, tmp_path):
    rows = _rows(clips)
    out = tmp_path / "pairs"
    skipped = [{"key": "e-1", "input": "empty.mp4", "reason": "0-byte file"}]
    # test_fraction 0.5 with this seed gives both splits for these six contents.
    counts = write_pair_dataset(rows, out, card=CARD, test_fraction=0.5, seed=0, skipped=skipped)
    assert counts["train"] > 0 and counts["test"] > 0 and sum(counts.values()) == len(rows)

    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"}
    assert {split: len(loaded[split]) for split in loaded} == counts
    assert not set(loaded["train"]["content_id"]) & set(loaded["test"]["content_id"])

    # Videos are embedded: the bytes equal the source files, and they decode.
    raw = loaded["train"].cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
    by_name = {c.name: c.read_bytes() for c in clips}
    for record in raw:
        for column in ("video_a", "video_b"):
            assert record[column]["bytes"] == by_name[record[column]["path"]]
    decoder = loaded["train"][0]["video_a"]
    assert decoder[0].shape == (3, 48, 64)

    # Labels, probabilities and provenance survive, row by row and in order within a split.
    expected = [r for r in rows if split_for(r.content_id, 0.5, 0) == "test"]
    got = loaded["test"]
    assert [LEVELS[x] for x in got["label"]] == [r.label for r in expected]
    assert got["prob"] == [pytest.approx(r.prob) for r in expected]
    assert [json.loads(p) for p in got["provenance"]] == [dict(r.provenance) for r in expected]
    assert set(got["origin"]) == {"distortion"}

    # The card: YAML metadata the Hub reads, and prose with counts and skipped inputs.
    text = (out / "README.md").read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    assert metadata["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "test", "path": "data/test-*.parquet"},
    ]
    assert "video-quality-assessment" in metadata["tags"]
    assert f"| train | {counts['train']} |" in text and f"| test | {counts['test']} |" in text
    assert "`empty.mp4`: 0-byte file" in text and "## Distortions" in text
    assert json.loads((out / "skipped-00000-of-00001.jsonl").read_text()) == skipped[0]


def test_shards_share_one_folder_and_card(clips, tmp_path):
    rows = _rows(clips)
    out = tmp_path / "pairs"
    write_pair_dataset(rows[:6], out, card=CARD, test_fraction=0.5, shard_index=0, num_shards=2)
    write_pair_dataset(rows[6:], out, card=CARD, test_fraction=0.5, shard_index=1, num_shards=2)
    names = sorted(p.name for p in (out / "data").iterdir())
    assert all(n.endswith("-of-00002.parquet") for n in names) and any("-00001-" in n for n in names)
    summary = summarize(out)
    assert sum(summary.rows.values()) == len(rows)
    assert summary.shards == {(0, 2), (1, 2)}
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert sum(len(loaded[s]) for s in loaded) == len(rows)

    # Rewriting shard 1 with only train rows removes its stale test file.
    only_train = [r for r in rows[6:] if split_for(r.content_id, 0.5, 0) == "train"]
    write_pair_dataset(only_train, out, card=CARD, test_fraction=0.5, shard_index=1, num_shards=2)
    assert not (out / "data" / "test-00001-of-00002.parquet").exists()
    assert sum(summarize(out).rows.values()) == 6 + len(only_train)


def test_a_content_in_both_splits_is_refused(clips, tmp_path):
    a, b = str(clips[0]), str(clips[1])
    rows = [
        PairRow(a, b, "better", 0.75, "mos", "same", split="train"),
        PairRow(b, a, "worse", 0.25, "mos", "same", split="test"),
    ]
    with pytest.raises(ValueError, match="both"):
        write_pair_dataset(rows, tmp_path / "pairs", card=CARD)
    with pytest.raises(ValueError, match="does not exist"):
        write_pair_dataset([PairRow(a, str(tmp_path / "gone.mp4"), "better", 0.75, "mos", "c")], tmp_path / "p2", card=CARD)


def test_load_pairs_reads_each_folder_not_a_cached_namesake(clips, tmp_path):
    """Regression: load_dataset(folder) served the rows of an earlier folder with the same name."""
    from ssvqa.pairs.dataset import load_pairs

    first, second = tmp_path / "a" / "pairs", tmp_path / "b" / "pairs"
    write_pair_dataset(_rows(clips, contents=2), first, card=CARD, test_fraction=0.0)
    write_pair_dataset(_rows(clips, contents=5), second, card=CARD, test_fraction=0.0)
    cache = tmp_path / "cache"  # one cache for both, as a user's default cache would be
    assert len(load_pairs(first, cache_dir=cache)["train"]) == 4
    assert len(load_pairs(second, cache_dir=cache)["train"]) == 10
    assert len(load_pairs(first, cache_dir=cache)["train"]) == 4
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no pair data files"):
        load_pairs(tmp_path / "empty")


def test_save_pair_splits_round_trip(clips, tmp_path):
    """Pairs already loaded (videos as bytes) are written back as a folder that loads the same."""
    from ssvqa.pairs.dataset import load_pairs, save_pair_splits

    source = tmp_path / "source"
    write_pair_dataset(_rows(clips), source, card=CARD, test_fraction=0.5)
    loaded = load_pairs(source, cache_dir=tmp_path / "cache")
    raw = {split: d.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
           for split, d in loaded.items()}
    counts = save_pair_splits(raw, tmp_path / "copy", card=CARD)
    again = load_pairs(tmp_path / "copy", cache_dir=tmp_path / "cache2")
    assert counts == {split: len(d) for split, d in loaded.items()}
    for split in loaded:
        a = again[split].cast_column("video_a", datasets.Video(decode=False))
        assert a["video_a"] == raw[split]["video_a"]  # the same embedded bytes
        assert again[split]["label"] == loaded[split]["label"] and again[split]["provenance"] == loaded[split]["provenance"]
    assert "Test pairs" in (tmp_path / "copy" / "README.md").read_text()


def test_save_pair_splits_embeds_videos_given_as_paths(clips, tmp_path):
    from ssvqa.pairs.dataset import load_pairs, save_pair_splits

    rows = {"video_a": [{"path": str(clips[0]), "bytes": None}], "video_b": [{"path": str(clips[1]), "bytes": None}],
            "label": [3], "prob": [0.75], "origin": ["distortion"], "content_id": ["c0"], "provenance": ["{}"]}
    paths_only = datasets.Dataset.from_dict(rows, features=pair_features(decode=False))
    with pytest.raises(DatasetRootError, match="train row 0 video_a: .* is not read"):  # no folder to read paths in
        save_pair_splits({"train": paths_only}, tmp_path / "refused", card=CARD)
    save_pair_splits({"train": paths_only}, tmp_path / "out", card=CARD, video_root=clips[0].parent)
    raw = load_pairs(tmp_path / "out", cache_dir=tmp_path / "cache")["train"].cast_column("video_a", datasets.Video(decode=False))
    assert raw[0]["video_a"]["bytes"] == clips[0].read_bytes()
