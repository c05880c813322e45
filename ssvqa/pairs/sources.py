"""A builder's inputs: finding them, sharding them across machines, dropping duplicates.

A builder turns input videos into pairs. Two things do not depend on how pairs are made:

1. :func:`collect_inputs` reads the user's input, one of

   - a folder of videos (recursive, by extension; hidden files skipped),
   - a list file: one path per line (``#`` comments and blank lines ignored); relative paths are
     resolved against the list file's folder and must stay inside it,
   - a single video file,
   - a dataset with a Video column: a ``save_to_disk`` folder, a local folder ``load_dataset``
     reads (one holding Parquet or Arrow files, or no video files), or a Hub dataset id. Rows' embedded bytes are written to files in the
     work folder; a row holding only a path must point inside the dataset's root (or the
     datasets/Hub cache for Hub datasets).

   Every input gets a stable, file-name-safe *key* (its name plus a short hash); entries that
   must be rejected before any work (a path escaping its root, a row without a video) come back
   as :class:`Skipped` with the reason.

2. :func:`shard` splits the inputs across machines by key, identically on every machine, and
   :func:`drop_duplicates` keeps one input per content: byte-identical files (same SHA-256) are
   used once, the others reported as skipped with the name of the one kept. Only this shard's
   inputs are compared (comparing across machines would mean reading every input on each).

What a builder then does with each input runs through :mod:`ssvqa.pairs.resumable`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from ssvqa.errors import InputNotFoundError, UsageError
from ssvqa.io import atomic_write_bytes
from ssvqa.video import VIDEO_EXTENSIONS, content_hash, is_within, list_videos

T = TypeVar("T")


@dataclass(frozen=True)
class InputItem:
    """One input video: ``key`` names it in the work folder, ``name`` is how the user gave it."""

    key: str
    path: Path
    name: str


@dataclass(frozen=True)
class Skipped:
    """An input that gives no pairs, and why. ``final`` is False for transient failures (a killed
    ffmpeg, a full disk, a permission error) and unexpected errors, which a rerun tries again (a
    bad video stays bad; those may not last)."""

    key: str
    input: str
    reason: str
    final: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "input": self.input, "reason": self.reason}


@dataclass
class Inputs:
    """What :func:`collect_inputs` found: usable items and entries rejected up front."""

    items: list[InputItem]
    skipped: list[Skipped]


def input_key(name: str) -> str:
    """A stable, file-name-safe key for an input name: readable tail plus a hash of the name.

    >>> input_key("clips/a b.mp4")
    'clips_a_b.mp4-6f280904'
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[-60:] or "input"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def shard(items: Sequence[T], index: int, num: int, key: Callable[[T], str] = lambda item: item.key) -> list[T]:
    """The ``index``-th of ``num`` shards: every ``num``-th item in key order, from ``index``.

    Every machine lists the same inputs and sorts them the same way, so shards never overlap and
    together cover everything.

    >>> shard(["c", "a", "d", "b"], 1, 2, key=str)
    ['b', 'd']
    """
    if num < 1 or not 0 <= index < num:
        raise UsageError(f"shard index must be within 0..num_shards-1, got {index} of {num}")
    return [item for i, item in enumerate(sorted(items, key=key)) if i % num == index]


def drop_duplicates(items: Sequence[InputItem]) -> tuple[list[InputItem], list[Skipped]]:
    """Keep one input per content: of byte-identical files, the one with the first key.

    Returns the inputs kept (in the order given) and a :class:`Skipped` for each other twin,
    naming the one kept. A file that cannot be read is kept: the worker reports why.
    """
    kept: list[InputItem] = []
    skipped: list[Skipped] = []
    first: dict[str, InputItem] = {}
    for item in sorted(items, key=lambda item: item.key):
        try:
            digest = content_hash(item.path)
        except OSError:
            digest = None
        if digest is not None and digest in first:
            twin = first[digest]
            skipped.append(Skipped(item.key, item.name, f"duplicate of {twin.name} (byte-identical, SHA-256 {digest[:16]}…): used once"))
        else:
            if digest is not None:
                first[digest] = item
            kept.append(item)
    order = {item.key: i for i, item in enumerate(items)}
    return sorted(kept, key=lambda item: order[item.key]), skipped


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Entry:
    """An input before it is resolved to a local file (dataset rows are written out lazily, and
    only for this shard)."""

    key: str
    name: str
    path: Path | None = None
    reason: str | None = None
    row: tuple[str, int] | None = None  # (split, index) of a dataset row


def collect_inputs(
    spec: str | Path,
    *,
    work_dir: str | Path,
    video_column: str = "video",
    shard_index: int = 0,
    num_shards: int = 1,
) -> Inputs:
    """Find the input videos named by ``spec`` (see the module doc), this shard's only.

    Args:
        spec: a folder of videos, a list file, a video file, a dataset folder or a Hub dataset id.
        work_dir: where dataset rows' videos are written (``work_dir/inputs``).
        video_column: the dataset column holding the videos.
        shard_index, num_shards: keep only this shard of the inputs (:func:`shard`).

    Raises:
        InputNotFoundError: ``spec`` is neither a local path nor a loadable dataset (a
            ``FileNotFoundError``).
        ValueError: a dataset has no column ``video_column``.
    """
    path = Path(spec)
    dataset, root = None, None
    if path.is_dir() and _is_saved_dataset(path):
        import datasets

        dataset, root = datasets.load_from_disk(str(path)), path
    elif path.is_dir() and not _has_data_files(path) and (videos := list_videos(path)):
        names = [video.relative_to(path).as_posix() for video in videos]
        entries = [_Entry(input_key(name), name, path=video) for name, video in zip(names, videos)]
    elif path.is_dir():
        dataset, root = _load_dataset(str(path)), path
    elif path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
        entries = [_Entry(input_key(path.name), path.name, path=path)]
    elif path.is_file():
        entries = _list_file_entries(path)
    elif path.exists():
        raise InputNotFoundError(f"{spec}: not a file or folder of videos")
    else:
        dataset, root = _load_dataset(str(spec)), None
    if dataset is not None:
        entries = _dataset_entries(dataset, video_column)

    mine = shard(entries, shard_index, num_shards)
    items: list[InputItem] = []
    skipped: list[Skipped] = []
    raw_splits: dict[str, Any] = {}  # split -> the split with videos as {path, bytes}
    for entry in mine:
        if entry.row is not None:
            split = entry.row[0]
            if split not in raw_splits:
                raw_splits[split] = _raw_split(dataset, split, video_column)
            entry = _materialise(entry, raw_splits[split], video_column, root, Path(work_dir) / "inputs")
        if entry.reason is not None:
            skipped.append(Skipped(entry.key, entry.name, entry.reason))
        else:
            items.append(InputItem(entry.key, entry.path, entry.name))
    return Inputs(items, skipped)


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _has_data_files(folder: Path) -> bool:
    """A folder holding Parquet/Arrow files is a dataset, even when videos sit beside them."""
    return any(folder.rglob("*.parquet")) or any(folder.rglob("*.arrow"))


def _load_dataset(spec: str):
    """``datasets.load_dataset(spec)``; a failure says what was tried, not only the Hub's error."""
    import datasets

    from ssvqa.hub import local_or_hub_id

    local_or_hub_id(spec)  # a mistyped local path fails now, not after a wait for the Hub
    try:
        return datasets.load_dataset(spec)
    except Exception as err:  # noqa: BLE001  (the Hub client raises many kinds; all mean "cannot load")
        raise InputNotFoundError(
            f"{spec}: not a folder of videos, a list file or a video, and loading it as a dataset failed: "
            f"{type(err).__name__}: {err}"
        ) from err


def _list_file_entries(list_file: Path) -> list[_Entry]:
    root = list_file.parent
    entries = []
    for line in list_file.read_text().splitlines():
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        target = Path(name)
        if not target.is_absolute():
            target = root / target
            if not is_within(target, root):
                entries.append(_Entry(input_key(name), name, reason=f"path escapes the list file's folder {root}"))
                continue
        # Absolute lines are the user's explicit choice; a missing file is reported by the worker.
        entries.append(_Entry(input_key(name), name, path=target))
    return entries


def _dataset_entries(dataset, video_column: str) -> list[_Entry]:
    import datasets

    splits = dataset if isinstance(dataset, datasets.DatasetDict) else {"train": dataset}
    entries = []
    for split, part in splits.items():
        if video_column not in part.column_names:
            raise ValueError(f"dataset split {split!r} has no column {video_column!r} (columns: {part.column_names})")
        for index in range(len(part)):
            name = f"{split}[{index}]"
            entries.append(_Entry(f"{split}-{index:08d}", name, row=(split, index)))
    return entries


def _raw_split(dataset, split: str, video_column: str):
    import datasets

    part = dataset[split] if isinstance(dataset, datasets.DatasetDict) else dataset
    return part.select_columns([video_column]).cast_column(video_column, datasets.Video(decode=False))


def _materialise(entry: _Entry, part, video_column: str, root: Path | None, inputs_dir: Path) -> _Entry:
    """Resolve a dataset row to a local file: write embedded bytes, or check a path's root."""
    value = part[entry.row[1]][video_column]
    if isinstance(value, str):
        value = {"path": value, "bytes": None}
    if not value or (value.get("bytes") is None and not value.get("path")):
        return _Entry(entry.key, entry.name, reason=f"row has no video in column {video_column!r}")
    row_path = value.get("path")
    name = f"{entry.name} ({Path(row_path).name})" if row_path else entry.name
    if value.get("bytes") is not None:
        suffix = Path(row_path).suffix.lower() if row_path and Path(row_path).suffix.lower() in VIDEO_EXTENSIONS else ""
        target = inputs_dir / f"{entry.key}{suffix}"
        data = value["bytes"]
        if not (target.is_file() and target.stat().st_size == len(data)):
            inputs_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, data)
        return _Entry(entry.key, name, path=target)
    # A row with only a path: it must stay inside the dataset's root (or the download caches).
    roots = [root] if root is not None else _cache_roots()
    target = Path(row_path)
    if not target.is_absolute() and root is not None:
        target = root / target
    if not any(is_within(target, r) for r in roots):
        return _Entry(entry.key, name, reason=f"row's video path {row_path!r} escapes the dataset's root")
    return _Entry(entry.key, name, path=target)


def _cache_roots() -> list[Path]:
    import datasets
    import huggingface_hub.constants

    return [Path(datasets.config.HF_DATASETS_CACHE), Path(huggingface_hub.constants.HF_HUB_CACHE)]


def gather_inputs(
    inputs: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    *,
    work_dir: Path,
    video_column: str = "video",
    shard_index: int = 0,
    num_shards: int = 1,
) -> tuple[list[InputItem], list[Skipped]]:
    """A builder's inputs for this shard: ``(items, skipped)``, one item per content, sorted by key.

    ``inputs`` is anything :func:`collect_inputs` reads, or a list of video paths. ``skipped``
    holds the entries rejected up front and the byte-identical copies of a kept input. An input
    folder may not hold ``output_dir`` (its outputs would become inputs on the next run).
    """
    if isinstance(inputs, (str, Path)):
        if Path(inputs).is_dir() and is_within(output_dir, inputs):
            raise UsageError(f"the output folder {output_dir} must not be inside the input folder {inputs}")
        found = collect_inputs(inputs, work_dir=work_dir, video_column=video_column, shard_index=shard_index, num_shards=num_shards)
    else:
        items = [InputItem(input_key(str(p)), Path(p), str(p)) for p in inputs]
        found = Inputs(shard(items, shard_index, num_shards), [])
    unique, duplicates = drop_duplicates(found.items)
    return sorted(unique, key=lambda item: item.key), [*found.skipped, *duplicates]
