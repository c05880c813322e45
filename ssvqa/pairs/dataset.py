"""The pair dataset every builder writes: schema, train/test split, sharded Parquet, dataset card.

One row is one comparison (``video_a``, ``video_b``); the level says how the *second* video
compares with the first (see :mod:`ssvqa.labels`). All builders (distortion pairs, pseudo-label
pairs, relabelling rounds) write the same columns, so their datasets concatenate:

=============== ============================================================================
column          meaning
=============== ============================================================================
``video_a``     first video (``datasets.Video``, file bytes embedded in the Parquet)
``video_b``     second video
``label``       ``ClassLabel`` of the five levels, about the second video vs the first
``prob``        float32, P(second video is better): the level weight, or a soft estimate
``origin``      ``distortion`` | ``pseudo`` | ``mos`` | ``relabel``
``content_id``  the source content both videos come from; train and test never share one
``provenance``  a JSON string (distortion and levels, annotator scores, round, ...); a string
                rather than a struct so datasets of different origins keep one schema
=============== ============================================================================

Layout of a dataset folder (what ``datasets.load_dataset(folder)`` and the Hub read)::

    README.md                                   dataset card: YAML metadata + how it was made
    data/train-00000-of-00002.parquet           one file per split and shard
    data/test-00001-of-00002.parquet
    skipped-00000-of-00002.jsonl                inputs the builder could not use, with reasons

Shards built on different machines (``shard_index``/``num_shards``) write different file names,
so they can be copied into one folder or pushed to one repository; the card is recomputed from
whatever data files are present when it is written (:func:`ssvqa.pairs.card.write_dataset_card`).

The split is a hash of the content id (:func:`split_for`), so every machine agrees on it without
talking to the others, and a content's pairs always land in one split.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from ssvqa.errors import DatasetRootError, UsageError
from ssvqa.hashing import stable_unit
from ssvqa.io import atomic_path, atomic_write_text
from ssvqa.labels import LEVELS, level_class_label
from ssvqa.video import is_within

if TYPE_CHECKING:  # the card module imports this one
    from ssvqa.pairs.card import DatasetCardInfo

ORIGINS: tuple[str, ...] = ("distortion", "pseudo", "mos", "relabel")
SPLITS: tuple[str, ...] = ("train", "test")
PAIR_COLUMNS: tuple[str, ...] = ("video_a", "video_b", "label", "prob", "origin", "content_id", "provenance")
VIDEO_COLUMNS: tuple[str, ...] = ("video_a", "video_b")

# Parquet row groups are kept below this many bytes of embedded video: readers (and the Hub's
# viewer) load a whole row group at a time.
ROW_GROUP_BYTES = 64 << 20

SHARD_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<num>\d{5})\.parquet$")


def pair_features(decode: bool = True) -> datasets.Features:
    """The ``datasets.Features`` of a pair dataset (``decode=False`` keeps videos as path/bytes)."""
    return datasets.Features(
        {
            "video_a": datasets.Video(decode=decode),
            "video_b": datasets.Video(decode=decode),
            "label": level_class_label(),
            "prob": datasets.Value("float32"),
            "origin": datasets.Value("string"),
            "content_id": datasets.Value("string"),
            "provenance": datasets.Value("string"),
        }
    )


@dataclass(frozen=True)
class PairRow:
    """One pair as a builder produces it, before its videos are embedded.

    ``video_a``/``video_b`` are local files. ``label`` is a level index or name. ``split`` is
    normally left ``None``: :func:`write_pair_dataset` then derives it from ``content_id``.

    >>> row = PairRow("a.mp4", "b.mp4", "better", 0.75, "distortion", "c0ffee", {"distortion": "gaussian_blur"})
    >>> row.label_index, row.provenance_json
    (3, '{"distortion": "gaussian_blur"}')
    """

    video_a: str
    video_b: str
    label: int | str
    prob: float
    origin: str
    content_id: str
    provenance: Mapping[str, Any] | str = field(default_factory=dict)
    split: str | None = None

    def __post_init__(self):
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {self.origin!r}")
        if not 0.0 <= float(self.prob) <= 1.0:
            raise ValueError(f"prob must be within [0, 1], got {self.prob}")
        self.label_index  # noqa: B018  (validates the label)

    @property
    def label_index(self) -> int:
        if isinstance(self.label, str):
            if self.label not in LEVELS:
                raise ValueError(f"label must be one of {LEVELS}, got {self.label!r}")
            return LEVELS.index(self.label)
        if not 0 <= int(self.label) < len(LEVELS):
            raise ValueError(f"label index must be within 0..{len(LEVELS) - 1}, got {self.label}")
        return int(self.label)

    @property
    def provenance_json(self) -> str:
        if isinstance(self.provenance, str):
            return self.provenance
        # sort_keys: the same pair always serialises to the same bytes (reruns compare equal).
        return json.dumps(self.provenance, sort_keys=True)


def split_for(content_id: str, test_fraction: float = 0.2, seed: int = 0) -> str:
    """``"test"`` for about ``test_fraction`` of content ids, ``"train"`` otherwise.

    A pure function of its arguments (a SHA-256 of seed and id), so shards built on different
    machines agree without coordination, and all pairs of one content share a split.

    >>> split_for("abc", 0.0), split_for("abc", 1.0)
    ('train', 'test')
    """
    check_test_fraction(test_fraction)
    return "test" if stable_unit(content_id, seed) < test_fraction else "train"


def check_test_fraction(test_fraction: float) -> None:
    """Raise :class:`~ssvqa.errors.UsageError` (a ``ValueError``) unless ``0 <= test_fraction <= 1``;
    builders call it before any rendering or annotating, so a bad value costs nothing."""
    if not 0.0 <= test_fraction <= 1.0:
        raise UsageError(f"test_fraction must be within [0, 1], got {test_fraction}")


def shard_file_name(split: str, shard_index: int, num_shards: int) -> str:
    """``train-00001-of-00004.parquet``: the name the Hub uses for sharded Parquet."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be within 0..{num_shards - 1}, got {shard_index}")
    return f"{split}-{shard_index:05d}-of-{num_shards:05d}.parquet"


def write_pair_dataset(
    rows: Iterable[PairRow | Mapping[str, Any]],
    out_dir: str | Path,
    *,
    card: DatasetCardInfo,
    test_fraction: float = 0.2,
    seed: int = 0,
    shard_index: int = 0,
    num_shards: int = 1,
    skipped: Iterable[Mapping[str, Any]] = (),
) -> dict[str, int]:
    """Write this shard's pairs as Parquet with the videos embedded, then (re)write the card.

    Args:
        rows: pairs whose videos are local files; written in the given order within each split.
        out_dir: the dataset folder (created if needed).
        card: how the data was made, for the dataset card.
        test_fraction, seed: the content-hash split (:func:`split_for`) for rows without ``split``.
        shard_index, num_shards: this shard's place; file names carry both.
        skipped: inputs that gave no pairs, as ``{"input": ..., "reason": ...}`` dicts; written to
            ``skipped-<shard>-of-<num>.jsonl`` and summarised in the card.

    Returns:
        Rows written per split for this shard.

    Raises:
        ValueError: a content id would appear in both splits, or a row is malformed.
    """
    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[PairRow]] = {}
    split_of_content: dict[str, str] = {}
    for row in rows:
        row = row if isinstance(row, PairRow) else PairRow(**row)
        for video in (row.video_a, row.video_b):
            if not os.path.isfile(video):  # checked before anything is written
                raise ValueError(f"{video}: pair video file does not exist")
        split = row.split or split_for(row.content_id, test_fraction, seed)
        if split_of_content.setdefault(row.content_id, split) != split:
            raise ValueError(f"content {row.content_id} is in both {split_of_content[row.content_id]} and {split}")
        by_split.setdefault(split, []).append(row)

    features = pair_features()
    for split in set(SPLITS) | set(by_split):
        target = out_dir / "data" / shard_file_name(split, shard_index, num_shards)
        if split in by_split:
            _write_parquet(by_split[split], target, features)
        elif target.exists():
            target.unlink()  # a previous build of this shard had rows in this split; now none

    skipped = list(skipped)
    manifest = out_dir / f"skipped-{shard_index:05d}-of-{num_shards:05d}.jsonl"
    atomic_write_text(manifest, "".join(json.dumps(dict(item), sort_keys=True) + "\n" for item in skipped))
    from ssvqa.pairs.card import write_dataset_card

    write_dataset_card(out_dir, card)
    return {split: len(split_rows) for split, split_rows in sorted(by_split.items())}


def _write_parquet(rows: list[PairRow], target: Path, features: datasets.Features) -> None:
    """Write rows to ``target`` atomically, in row groups bounded by :data:`ROW_GROUP_BYTES`.

    The videos are embedded with ``datasets.table.embed_table_storage`` (Parquet would otherwise
    keep only local paths); their stored names become base names, which is why builders give
    their files informative, unique names.
    """
    from datasets.table import embed_table_storage

    schema = features.arrow_schema  # carries the HF features in its metadata
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for group in _row_groups(rows):
            table = pa.Table.from_pylist([_record(row) for row in group], schema=schema)
            writer.write_table(embed_table_storage(table))


def _row_groups(rows: list[PairRow]) -> Iterable[list[PairRow]]:
    group: list[PairRow] = []
    size = 0
    for row in rows:
        row_size = os.path.getsize(row.video_a) + os.path.getsize(row.video_b)
        if group and size + row_size > ROW_GROUP_BYTES:
            yield group
            group, size = [], 0
        group.append(row)
        size += row_size
    if group:
        yield group


def _record(row: PairRow) -> dict[str, Any]:
    return {
        "video_a": {"path": str(Path(row.video_a).resolve()), "bytes": None},
        "video_b": {"path": str(Path(row.video_b).resolve()), "bytes": None},
        "label": row.label_index,
        "prob": float(row.prob),
        "origin": row.origin,
        "content_id": row.content_id,
        "provenance": row.provenance_json,
    }


def load_pairs(
    path_or_repo_id: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
) -> datasets.DatasetDict:
    """Load a pair dataset from a local folder (as the builders write it) or a Hub repository.

    A local folder is read through its Parquet files (``data/<split>-*.parquet``) rather than with
    ``load_dataset(folder)``: datasets 5.2 caches a local folder under its *name*, so a second
    folder called ``pairs`` silently returns the first one's rows. Hub repositories go through
    ``datasets.load_dataset(repo_id, revision=...)``.

    Every row comes back holding its videos' bytes. A row of a local folder that holds only a
    path gets the bytes of that file, which must lie inside the folder (:func:`row_video_file`:
    relative to it, never to the working directory, symlinks followed); a path-only row of a Hub
    dataset, or one pointing elsewhere, raises :class:`~ssvqa.errors.DatasetRootError` naming
    the split, row, column and path. Nothing outside the dataset's folder is read.

    >>> pairs = load_pairs("outputs/pairs")                      # doctest: +SKIP
    >>> pairs = load_pairs("me/ssvqa-pairs", revision="round-1")  # doctest: +SKIP
    """
    folder = Path(path_or_repo_id)
    if folder.is_dir():
        files: dict[str, list[str]] = {}
        for path in sorted((folder / "data").glob("*.parquet")):
            match = SHARD_FILE.match(path.name)
            if match:
                files.setdefault(match["split"], []).append(str(path))
        if not files:
            raise FileNotFoundError(f"{folder}: no pair data files (expected data/<split>-00000-of-00001.parquet)")
        loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(cache_dir) if cache_dir else None)
    else:
        loaded = datasets.load_dataset(str(path_or_repo_id), revision=revision, cache_dir=str(cache_dir) if cache_dir else None, token=token)
    if any(column not in loaded[split].column_names for split in loaded for column in PAIR_COLUMNS):
        raise ValueError(f"{path_or_repo_id}: not a pair dataset (needs the columns {', '.join(PAIR_COLUMNS)})")
    root = folder.resolve() if folder.is_dir() else None
    for split in list(loaded):
        loaded[split] = embed_path_only_videos(loaded[split], root, name=f"{path_or_repo_id} {split}")
    return loaded


def row_video_file(path: str | os.PathLike | None, root: str | os.PathLike | None, row: str) -> Path:
    """The file that a pair row holding only a video *path* names, checked to lie inside ``root``.

    ``root`` is the dataset's folder: a relative path resolves against it (never against the
    working directory), and the real path, symlinks followed, must stay inside it
    (:func:`ssvqa.video.is_within`, the check the builders use). ``row`` names the row in errors
    (e.g. ``"pairs train row 3 video_b"``).

    Raises:
        DatasetRootError: no path; no ``root`` (a dataset from the Hub, or rows handed over with
            no folder: their videos must be embedded); the path leaves ``root``; or it is not a file.
    """
    if path is None or not str(path):
        raise DatasetRootError(row, None, "is missing: the row has neither video bytes nor a path")
    if root is None:
        raise DatasetRootError(row, str(path), "is not read: the row has no video bytes and its dataset has no local "
                                               "folder to read paths in (pair datasets from the Hub must embed their videos)")
    target = Path(root, path)  # an absolute path stays itself, and must still be inside root
    if not is_within(target, root):
        raise DatasetRootError(row, str(path), f"escapes the dataset's root {root}")
    if not target.is_file():
        raise DatasetRootError(row, str(path), f"is not a file in the dataset's folder {root}")
    return Path(os.path.realpath(target))


def read_row_video(video: Mapping[str, Any], root: str | os.PathLike | None, row: str) -> bytes:
    """The bytes of one ``{"path", "bytes"}`` pair video: embedded, or else the file
    :func:`row_video_file` allows."""
    data = video.get("bytes")
    return data if data else row_video_file(video.get("path"), root, row).read_bytes()


def embed_path_only_videos(dataset: datasets.Dataset, root: str | os.PathLike | None, name: str) -> datasets.Dataset:
    """``dataset`` with the bytes of every path-only video read in (:func:`read_row_video`), or
    unchanged when every row holds its bytes. Rows are named ``"<name> row <i> <column>"``."""
    if not any(_has_missing_bytes(dataset, column) for column in VIDEO_COLUMNS):
        return dataset
    features = dataset.features
    raw = dataset
    for column in VIDEO_COLUMNS:
        raw = raw.cast_column(column, datasets.Video(decode=False))
    # never from the cache: a file that changed since would come back with its old bytes
    raw = raw.map(_embed_videos, batched=True, batch_size=16, with_indices=True, load_from_cache_file=False,
                  fn_kwargs={"root": root, "name": name}, desc="reading path-only videos")
    for column in VIDEO_COLUMNS:
        raw = raw.cast_column(column, features[column])
    return raw


def save_pair_splits(
    splits: Mapping[str, datasets.Dataset],
    out_dir: str | Path,
    *,
    card: DatasetCardInfo,
    video_root: str | os.PathLike | None = None,
) -> dict[str, int]:
    """Write already-loaded pair datasets (one per split) as a pair dataset folder with its card.

    For datasets made from other pair datasets (a relabelling round): the videos are in the rows
    already (``Video(decode=False)`` values with bytes), so they are written as they are, one
    Parquet file per split, each atomically. A row holding only a path gets the bytes of that
    file, which must lie inside ``video_root`` (:func:`row_video_file`; without ``video_root``
    such a row raises :class:`~ssvqa.errors.DatasetRootError`). Returns rows per split.
    """
    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    features = pair_features(decode=True)
    written = {}
    for split, dataset in splits.items():
        dataset = embed_path_only_videos(dataset.select_columns(list(PAIR_COLUMNS)), video_root, name=split)
        dataset = dataset.cast(features)
        target = out_dir / "data" / shard_file_name(split, 0, 1)
        with atomic_path(target) as temp:
            dataset.to_parquet(str(temp))
        written[split] = len(dataset)
    from ssvqa.pairs.card import write_dataset_card

    write_dataset_card(out_dir, card)
    return written


def _has_missing_bytes(dataset: datasets.Dataset, column: str) -> bool:
    """Whether some row's video is only a path (no bytes, or empty ones), read from the Arrow
    column without copying bytes.

    It looks at the underlying table, rows left out by a ``select`` included: at worst an
    unneeded embedding pass, never a missed one."""
    import pyarrow.compute as pc

    data = pc.struct_field(dataset.data.column(column), "bytes")
    return bool(pc.any(pc.fill_null(pc.equal(pc.binary_length(data), 0), True)).as_py())


def _embed_videos(batch: dict[str, list], indices: list[int], root, name: str) -> dict[str, list]:
    """Read the bytes of videos that are only paths (so the saved dataset stands alone); the
    stored name becomes the file's base name, as when builders embed."""
    for column in VIDEO_COLUMNS:
        batch[column] = [
            video if video.get("bytes") else {
                "path": Path(str(video.get("path"))).name,
                "bytes": read_row_video(video, root, f"{name} row {index} {column}"),
            }
            for index, video in zip(indices, batch[column])
        ]
    return batch
