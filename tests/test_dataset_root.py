"""No byte outside a pair dataset's folder is ever read on the training side.

A crafted dataset, modelled on the one of issue 9, has rows holding only a path: to a fake token
file (absolute path), to a file outside via ``../``, and through a symlink that points out. Loading
(``load_pairs``), relabelling, training (collator and trainer), saving (``save_pair_splits``) and a
whole round refuse each such row with an error naming it, and no output file holds a byte of the
foreign files. Path-only rows inside the folder are read from the folder, not the working directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_video
from ssvqa.errors import DatasetRootError
from ssvqa.pairs.card import DatasetCardInfo
from ssvqa.pairs.dataset import load_pairs, pair_features, save_pair_splits
from ssvqa.sampling import VideoSampling

ROOT = Path(__file__).resolve().parents[1]
SECRET = b"hf_FAKE_SECRET_TOKEN_do_not_leak_0123456789"
PASSWD = b"root:x:0:0:root:/root:/bin/bash outside-the-dataset"
CARD = DatasetCardInfo(pretty_name="copy", builder="tests")


def _video(path=None, data=None):
    return {"path": None if path is None else str(path), "bytes": data}


def _row(video_a, video_b, content):
    return {"video_a": video_a, "video_b": video_b, "label": 3, "prob": 0.75, "origin": "distortion",
            "content_id": content, "provenance": "{}"}


def _write(folder: Path, rows: list[dict]) -> Path:
    """A pair dataset folder whose Parquet keeps path-only rows as they are (nothing embedded)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=pair_features().arrow_schema)
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files outside the dataset (a fake token, a passwd-like file) and clips inside it."""
    base = tmp_path_factory.mktemp("root")
    outside = base / "outside"
    outside.mkdir()
    (outside / "token").write_bytes(SECRET)
    (outside / "passwd").write_bytes(PASSWD)
    embedded = make_video(base / "sources" / "embedded.mp4", size="64x48", rate=5, duration=1).read_bytes()
    return {"base": base, "outside": outside, "embedded": embedded}


def _crafted(world, name: str, bad_path: str | None) -> Path:
    """Rows: 0 embedded, 1 path-only inside the folder, 2 (when ``bad_path``) path-only pointing out."""
    folder = world["base"] / name
    clip = make_video(folder / "clips" / "inside.mp4", size="64x48", rate=5, duration=1, source="smptebars")
    (folder / "clips" / "link.mp4").symlink_to(world["outside"] / "token")
    rows = [
        _row(_video("embedded.mp4", world["embedded"]), _video("embedded.mp4", world["embedded"]), "c0"),
        _row(_video("embedded.mp4", world["embedded"]), _video(clip.relative_to(folder)), "c1"),
    ]
    if bad_path is not None:
        rows.append(_row(_video("embedded.mp4", world["embedded"]), _video(bad_path), "c2"))
    return _write(folder, rows)


BAD = {
    "absolute": lambda world: str(world["outside"] / "token"),
    "dotdot": lambda world: "../outside/passwd",
    "symlink": lambda world: "clips/link.mp4",
}


def _leaks(*folders: Path) -> list[str]:
    """Files under ``folders`` that hold a byte sequence of the foreign files."""
    found = []
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if SECRET in data or PASSWD in data or b"hf_FAKE_SECRET" in data or b"root:x:0:0" in data:
                    found.append(str(path))
    return found


def test_path_only_rows_are_read_from_the_dataset_folder_not_the_working_directory(world, tmp_path, monkeypatch):
    folder = _crafted(world, "good", None)
    decoy = tmp_path / "clips" / "inside.mp4"  # the same relative path under the working directory
    decoy.parent.mkdir()
    decoy.write_bytes(b"not the dataset's clip")
    monkeypatch.chdir(tmp_path)
    train = load_pairs(folder, cache_dir=tmp_path / "cache")["train"]
    raw = train.cast_column("video_b", datasets.Video(decode=False))
    assert raw[1]["video_b"] == {"path": "inside.mp4", "bytes": (folder / "clips" / "inside.mp4").read_bytes()}
    assert raw[0]["video_b"]["bytes"] == world["embedded"]
    # what load_pairs returns is self-contained: saved again, it needs no folder
    save_pair_splits({"train": train}, tmp_path / "copy", card=CARD)
    again = load_pairs(tmp_path / "copy", cache_dir=tmp_path / "cache2")["train"].cast_column("video_b", datasets.Video(decode=False))
    assert again["video_b"] == raw["video_b"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from ssvqa.modeling import load_ranker
    from ssvqa.testing import save_tiny_model

    path = save_tiny_model(tmp_path_factory.mktemp("model") / "tiny", "qwen2_5_vl")
    model, processor = load_ranker(path)
    return path, model, processor


@pytest.mark.parametrize("kind", sorted(BAD))
def test_rows_pointing_outside_are_refused_everywhere_and_nothing_foreign_is_written(world, tiny, tmp_path, kind):
    from ssvqa.collator import DataCollatorForVideoPairs
    from ssvqa.relabel import relabel, relabel_with_ranker
    from ssvqa.trainer import RankConfig, RankTrainer

    bad_path = BAD[kind](world)
    folder = _crafted(world, f"crafted-{kind}", bad_path)
    named = rf"row 2 video_b: video path '{bad_path}' escapes the dataset's root"
    outputs = tmp_path / "outputs"

    # loading: the whole dataset is refused, the row named
    with pytest.raises(DatasetRootError, match=rf"{folder} train {named}"):
        load_pairs(folder, cache_dir=outputs / "cache")

    # rows handed over in memory (not through load_pairs), with the folder as their root
    rows = pq.read_table(folder / "data" / "train-00000-of-00001.parquet").to_pylist()
    pairs = datasets.Dataset.from_list(rows, features=pair_features(decode=False))
    path, model, processor = tiny
    with pytest.raises(DatasetRootError, match=named):
        relabel(pairs, {}, round=1, video_root=folder)
    with pytest.raises(DatasetRootError, match=named):
        relabel_with_ranker(pairs, model, processor, round=1, num_frames=2, video_root=folder)
    with pytest.raises(DatasetRootError, match="train " + named):
        save_pair_splits({"train": pairs}, outputs / "saved", card=CARD, video_root=folder)
    collate = DataCollatorForVideoPairs(processor, sampling=VideoSampling(num_frames=2).with_processor(processor), video_root=str(folder))
    assert collate([rows[1]])["level"].tolist() == [3]  # the row inside the folder is read
    with pytest.raises(DatasetRootError, match=rf"video_b: video path '{bad_path}' escapes the dataset's root"):
        collate([rows[2]])
    args = RankConfig(output_dir=str(outputs / "trainer"), max_steps=2, per_device_train_batch_size=3, use_cpu=True,
                      num_frames=2, save_strategy="no", video_root=str(folder))
    with pytest.raises(DatasetRootError, match="escapes the dataset's root"):
        RankTrainer(model=str(path), args=args, train_dataset=pairs).train()

    # without a folder to read in, no path-only row is read at all, inside or not
    with pytest.raises(DatasetRootError, match="row 1 video_b: video path 'clips/inside.mp4' is not read"):
        relabel(pairs, {}, round=1)
    with pytest.raises(DatasetRootError, match="is not read"):
        DataCollatorForVideoPairs(processor, sampling=VideoSampling(num_frames=2).with_processor(processor))([rows[1]])
    assert _leaks(outputs) == []


def test_a_round_on_a_crafted_dataset_refuses_it_and_writes_no_foreign_byte(world, tmp_path):
    folder = _crafted(world, "crafted-round", BAD["absolute"](world))
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "recipes" / "round.py"), "--config", str(ROOT / "recipes" / "tiny" / "round.yaml"),
               "--output_dir", str(out), "--generate_data", "false", "--pair_datasets", str(folder),
               "--tiny_model", "qwen2_5_vl-tiny", "--max_steps", "1", "--first_round_max_steps", "1", "--round", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_DATASETS_CACHE=str(tmp_path / "hf-cache"))
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert f"error: {folder} train row 2 video_b: video path '{world['outside'] / 'token'}' escapes the dataset's root" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "round-0" / "dataset").exists() and not (out / "round-0" / "report.json").exists()
    assert _leaks(out, tmp_path / "hf-cache") == []
