"""Builder machinery: input collection (folder, list file, datasets), sharding, resumable map."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ssvqa.pairs.resumable import run_resumable
from ssvqa.pairs.sources import InputItem, collect_inputs, input_key, shard
from ssvqa.errors import VideoError


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from conftest import make_video

    root = tmp_path_factory.mktemp("clips")
    made = [
        make_video(root / "a.mp4", size="64x48", rate=5, duration=0.4),
        make_video(root / "nested" / "b.mkv", size="48x64", rate=5, duration=0.4, source="smptebars"),
        make_video(root / "c.webm", size="64x48", rate=5, duration=0.4, codec="libvpx-vp9"),
    ]
    (root / "notes.txt").write_text("not an input")
    (root / ".hidden").mkdir()
    make_video(root / ".hidden" / "d.mp4", size="64x48", rate=5, duration=0.2)
    return root, made


def test_folder_inputs(clips, tmp_path):
    root, made = clips
    found = collect_inputs(root, work_dir=tmp_path)
    assert sorted(item.name for item in found.items) == ["a.mp4", "c.webm", "nested/b.mkv"]
    assert {item.path for item in found.items} == set(made)
    assert all(item.key == input_key(item.name) for item in found.items)
    assert found.skipped == []


def test_list_file_inputs_stay_inside_their_folder(clips, tmp_path):
    root, made = clips
    list_file = root / "inputs.txt"
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(made[0].read_bytes())
    (root / "escape_link.mp4").symlink_to(outside)
    list_file.write_text(
        "# one path per line\n"
        "a.mp4\n"
        "\n"
        "nested/b.mkv\n"
        "../../etc/passwd\n"
        "escape_link.mp4\n"
        "missing.mp4\n"
        f"{made[2]}\n"  # absolute: the user's explicit choice
    )
    try:
        found = collect_inputs(list_file, work_dir=tmp_path)
    finally:
        (root / "escape_link.mp4").unlink()
        list_file.unlink()
    by_name = {item.name: item.path for item in found.items}
    assert by_name == {"a.mp4": made[0], "nested/b.mkv": made[1], "missing.mp4": root / "missing.mp4", str(made[2]): made[2]}
    reasons = {s.input: s.reason for s in found.skipped}
    assert set(reasons) == {"../../etc/passwd", "escape_link.mp4"}
    assert all("escapes the list file's folder" in r for r in reasons.values())


def test_dataset_inputs_materialise_embedded_bytes(clips, tmp_path):
    root, made = clips
    saved = tmp_path / "saved"
    ds = datasets.Dataset.from_dict({"clip": [str(p) for p in made], "mos": [1.0, 2.0, 3.0]})
    ds.cast_column("clip", datasets.Video()).save_to_disk(str(saved))  # embeds the bytes
    work = tmp_path / "work"
    found = collect_inputs(saved, work_dir=work, video_column="clip")
    assert [item.name for item in found.items] == ["train[0] (a.mp4)", "train[1] (b.mkv)", "train[2] (c.webm)"]
    for item, source in zip(found.items, made):
        assert item.path.parent == work / "inputs" and item.path.read_bytes() == source.read_bytes()
        assert item.path.suffix == source.suffix
    with pytest.raises(ValueError, match="no column 'video'"):
        collect_inputs(saved, work_dir=work)


def test_dataset_rows_with_paths_must_stay_in_the_dataset_root(clips, tmp_path):
    root, made = clips
    folder = tmp_path / "parquet_ds"
    (folder / "data").mkdir(parents=True)
    (folder / "inside.mp4").write_bytes(made[0].read_bytes())
    video = pa.struct({"bytes": pa.binary(), "path": pa.string()})
    table = pa.table(
        {
            "video": pa.array(
                [
                    {"bytes": made[1].read_bytes(), "path": "b.mkv"},
                    {"bytes": None, "path": "inside.mp4"},
                    {"bytes": None, "path": "../../etc/passwd"},
                    {"bytes": None, "path": str(made[2])},
                    None,
                ],
                type=video,
            )
        },
        schema=pa.schema([("video", video)], metadata={"huggingface": json.dumps({"info": {"features": {"video": {"_type": "Video"}}}})}),
    )
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    found = collect_inputs(folder, work_dir=tmp_path / "work")
    assert [item.name for item in found.items] == ["train[0] (b.mkv)", "train[1] (inside.mp4)"]
    assert found.items[0].path.read_bytes() == made[1].read_bytes()
    assert found.items[1].path == folder / "inside.mp4"
    reasons = {s.input: s.reason for s in found.skipped}
    assert "escapes the dataset's root" in reasons["train[2] (passwd)"]
    assert "escapes the dataset's root" in reasons[f"train[3] ({made[2].name})"]
    assert "has no video" in reasons["train[4]"]


def test_missing_inputs_say_what_was_tried(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        collect_inputs(tmp_path / "missing" / "videos", work_dir=tmp_path)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="loading it as a dataset failed"):
        collect_inputs(empty, work_dir=tmp_path)


def test_shards_partition_the_inputs():
    keys = [f"k{i:03d}" for i in range(23)]
    parts = [shard(keys, i, 4, key=str) for i in range(4)]
    assert sorted(k for part in parts for k in part) == sorted(keys)
    assert len(set(map(tuple, parts))) == 4 and max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError):
        shard(keys, 4, 4, key=str)


# --------------------------------------------------------------------------- resumable map


def size_worker(item: InputItem, out_dir: Path, marker: str = "") -> dict:
    """A worker for tests: counts its calls, writes a file, fails like real workers do."""
    work_dir = out_dir.parent.parent
    with open(work_dir / "calls.log", "a") as log:
        log.write(item.key + "\n")
    data = item.path.read_bytes()
    if not data:
        raise VideoError(item.path, "0-byte file")
    if data.startswith(b"boom") and not (work_dir / "fixed").exists():
        raise RuntimeError("transient failure")
    (out_dir / "copy.bin").write_bytes(data[::-1])
    return {"size": len(data), "marker": marker, "file": "copy.bin"}


def _items(tmp_path, contents):
    folder = tmp_path / "inputs"
    folder.mkdir(exist_ok=True)
    items = []
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        items.append(InputItem(input_key(name), folder / name, name))
    return items


def _calls(work):
    path = work / "calls.log"
    return path.read_text().split() if path.exists() else []


def test_run_resumable_persists_and_reuses(tmp_path):
    items = _items(tmp_path, {"x.mp4": b"x" * 10, "y.mp4": b"y" * 20, "empty.mp4": b"", "boom.mp4": b"boom!"})
    work = tmp_path / "work"
    first = run_resumable(items, size_worker, work_dir=work, fingerprint="f1")
    assert [f.item.name for f in first.finished] == sorted(["x.mp4", "y.mp4"], key=input_key)
    assert {f.item.name: f.result["size"] for f in first.finished} == {"x.mp4": 10, "y.mp4": 20}
    for f in first.finished:
        assert (f.files / "copy.bin").read_bytes() == f.item.path.read_bytes()[::-1]
    reasons = {s.input: (s.reason, s.final) for s in first.skipped}
    assert reasons["empty.mp4"] == ("0-byte file", True)
    assert reasons["boom.mp4"][0].startswith("RuntimeError: transient failure") and not reasons["boom.mp4"][1]
    assert (first.ran, first.reused) == (4, 0)

    # A rerun redoes nothing final; the unexpected failure is tried again (and now succeeds).
    (work / "fixed").touch()
    before = len(_calls(work))
    second = run_resumable(items, size_worker, work_dir=work, fingerprint="f1")
    assert _calls(work)[before:] == [input_key("boom.mp4")]
    assert (second.ran, second.reused) == (1, 3)
    assert sorted(f.item.name for f in second.finished) == ["boom.mp4", "x.mp4", "y.mp4"]
    assert [s.input for s in second.skipped] == ["empty.mp4"]

    # A replaced input file is processed again; the others are still reused.
    os.utime(items[0].path, ns=(1, 1))
    again = run_resumable(items, size_worker, work_dir=work, fingerprint="f1")
    assert (again.ran, again.reused) == (1, 3) and _calls(work)[-1] == items[0].key

    # Other arguments (another fingerprint) never reuse results made with the old ones.
    third = run_resumable(items, size_worker, work_dir=work, fingerprint="f2")
    assert (third.ran, third.reused) == (4, 0)


def test_an_interrupted_item_is_redone_from_scratch(tmp_path):
    items = _items(tmp_path, {"x.mp4": b"x" * 10, "y.mp4": b"y" * 20})
    work = tmp_path / "work"
    run_resumable(items, size_worker, work_dir=work, fingerprint="f")
    # Simulate a kill while y was being processed: its files are half there, no done record.
    key = input_key("y.mp4")
    (work / "done" / f"{key}.json").unlink()
    (work / "items" / key / "copy.bin").write_bytes(b"half")
    (work / "tmp" / f"{key}.dead").mkdir(parents=True)
    (work / "tmp" / f"{key}.dead" / "junk").write_bytes(b"junk")
    result = run_resumable(items, size_worker, work_dir=work, fingerprint="f")
    assert (result.ran, result.reused) == (1, 1)
    y = next(f for f in result.finished if f.item.key == key)
    assert sorted(p.name for p in y.files.iterdir()) == ["copy.bin"]
    assert (y.files / "copy.bin").read_bytes() == b"y" * 20
    assert list((work / "tmp").iterdir()) == []  # the dead attempt's leftovers are gone


def test_process_pool_gives_the_same_results(tmp_path):
    contents = {f"clip{i}.mp4": bytes([65 + i]) * (i + 1) for i in range(6)}
    contents["empty.mp4"] = b""
    items = _items(tmp_path, contents)
    serial = run_resumable(items, size_worker, work_dir=tmp_path / "serial", fingerprint="f")
    import functools

    worker = functools.partial(size_worker, marker="bound")
    parallel = run_resumable(items, worker, work_dir=tmp_path / "parallel", num_proc=2, fingerprint="f")
    assert [(f.item.key, f.result["size"]) for f in parallel.finished] == [(f.item.key, f.result["size"]) for f in serial.finished]
    assert {f.result["marker"] for f in parallel.finished} == {"bound"}
    assert [s.to_dict() for s in parallel.skipped] == [s.to_dict() for s in serial.skipped]
    assert sorted(_calls(tmp_path / "parallel")) == sorted(i.key for i in items)
