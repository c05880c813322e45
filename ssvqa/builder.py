"""What every dataset builder shares: finding its inputs, sharding them, and a resumable map.

A builder turns input videos into pairs. Three things do not depend on how pairs are made:

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

2. :func:`shard` splits the inputs across machines by key, identically on every machine.

3. :func:`run_resumable` runs a worker function over the inputs, in a process pool, with a
   progress bar, persisting each finished input under the work folder::

       work_dir/done/<key>.json       the worker's JSON result (written last, atomically)
       work_dir/items/<key>/          the files the worker wrote for that input
       work_dir/skipped/<key>.json    why an input is unusable (a content error: final)
       work_dir/inputs/<key>.<ext>    videos materialised from dataset rows
       work_dir/tmp/<key>.<random>/   an attempt in progress (moved to items/ when it succeeds)

   A rerun after an interruption (even ``kill -9``) redoes only what has no ``done`` record, so
   its result equals an uninterrupted run. Transient failures (a killed ffmpeg, a full disk, a
   permission or I/O error: :class:`~ssvqa.errors.TransientError`, or an ``OSError`` such as
   ENOSPC) and unexpected errors are reported but never recorded, so a rerun tries them again. A record is reused only for the same input file (size
   and modification time) and the same ``fingerprint`` (the builder's settings). Results are
   sorted by key, never by finishing time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from ssvqa.errors import TRANSIENT_ERRNOS, InputNotFoundError, TransientError, UsageError, VideoError
from ssvqa.video import VIDEO_EXTENSIONS, is_within, list_videos

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
            _atomic_write_bytes(target, data)
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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- resumable map


@dataclass(frozen=True)
class Finished:
    """A finished input: the worker's JSON ``result`` and the folder holding its ``files``."""

    item: InputItem
    result: dict[str, Any]
    files: Path


@dataclass
class MapResult:
    """What :func:`run_resumable` returns; both lists sorted by key.

    ``ran`` counts the inputs processed by this call, ``reused`` those found finished (or
    finally skipped) by an earlier run.
    """

    finished: list[Finished]
    skipped: list[Skipped]
    ran: int
    reused: int


Worker = Callable[[InputItem, Path], dict]
"""``worker(item, out_dir) -> result``: writes its files into ``out_dir``, names them in the
JSON-serialisable result relative to it, raises VideoError for an unusable video. Must be a
module-level function (or a ``functools.partial`` of one) so a process pool can send it."""


def run_resumable(
    items: Iterable[InputItem],
    worker: Worker,
    *,
    work_dir: str | Path,
    num_proc: int = 1,
    fingerprint: str = "",
    desc: str = "inputs",
) -> MapResult:
    """Run ``worker`` on every item not finished by an earlier run, and collect all results.

    Args:
        items: the inputs (keys must be unique).
        worker: see :data:`Worker`.
        work_dir: the resumable state (layout in the module doc).
        num_proc: worker processes; 1 runs in this process.
        fingerprint: what the results depend on (the builder's arguments, not the shard): an
            earlier result made with another fingerprint is redone, never silently reused.
        desc: the progress bar's label.
    """
    from tqdm.auto import tqdm

    work_dir = Path(work_dir)
    items = sorted(items, key=lambda item: item.key)
    if len({item.key for item in items}) != len(items):
        raise ValueError("input keys must be unique")
    todo, reused = [], 0
    for item in items:
        if _load_record(work_dir, item, fingerprint) is not None:
            reused += 1
        else:
            todo.append(item)

    attempts = {item.key: _attempt_dir(work_dir, item) for item in todo}
    retry: dict[str, str] = {}  # key -> reason of this run's non-final failures (never recorded)
    with tqdm(total=len(items), initial=reused, desc=desc, unit="video", dynamic_ncols=True) as bar:
        if num_proc <= 1:
            for item in todo:
                outcome = _run_one(worker, item, attempts[item.key])
                _record(work_dir, item, fingerprint, attempts[item.key], outcome, retry)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")  # fork is unsafe once torch threads exist
            others = set(multiprocessing.active_children())
            with ProcessPoolExecutor(max_workers=num_proc, mp_context=context) as pool:
                with _sigint_ignored():  # workers (spawned by submit) leave Ctrl-C to this process
                    futures = {pool.submit(_run_one, worker, item, attempts[item.key]): item for item in todo}
                try:
                    for future in as_completed(futures):
                        item = futures[future]
                        _record(work_dir, item, fingerprint, attempts[item.key], future.result(), retry)
                        bar.update(1)
                except BaseException:  # Ctrl-C: stop the workers now; a rerun does what they had
                    pool.shutdown(wait=False, cancel_futures=True)
                    for child in set(multiprocessing.active_children()) - others:
                        child.terminate()
                    raise

    finished, skipped = [], []
    for item in items:
        if item.key in retry:
            skipped.append(Skipped(item.key, item.name, retry[item.key], final=False))
            continue
        record = _load_record(work_dir, item, fingerprint)
        if "result" in record:
            finished.append(Finished(item, record["result"], work_dir / "items" / item.key))
        else:
            skipped.append(Skipped(item.key, item.name, record["reason"], record["final"]))
    return MapResult(finished, skipped, ran=len(todo), reused=reused)


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while worker processes start (they inherit it), so a Ctrl-C reaches only
    this process, which stops cleanly, instead of printing a traceback from every worker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _attempt_dir(work_dir: Path, item: InputItem) -> Path:
    """A fresh folder for one attempt at ``item``, after removing earlier attempts' leftovers.

    Each attempt gets its own name: a killed run may leave a child process (ffmpeg) still
    writing into its folder for a moment, and it must not write into the new attempt's.
    """
    tmp = work_dir / "tmp"
    for stale in [tmp / item.key, *tmp.glob(f"{item.key}.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    return tmp / f"{item.key}.{secrets.token_hex(4)}"


def _run_one(worker: Worker, item: InputItem, out_dir: Path) -> tuple[str, Any]:
    """Run the worker in a fresh folder; turn failures into (kind, reason). Runs in the pool."""
    try:
        out_dir.mkdir(parents=True)
        result = worker(item, out_dir)
        json.dumps(result)  # fail here, with the input's name, if it is not JSON-serialisable
        return "done", result
    except VideoError as err:
        return "video", err.reason
    except TransientError as err:
        return "transient", err.reason
    except Exception as err:  # noqa: BLE001  (reported in the manifest; the run goes on)
        if isinstance(err, OSError) and err.errno in TRANSIENT_ERRNOS:  # full disk, permissions, I/O
            return "transient", f"{type(err).__name__}: {err}"
        return "error", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"


def _record(work_dir: Path, item: InputItem, fingerprint: str, tmp: Path, outcome: tuple[str, Any], retry: dict) -> None:
    """Persist one outcome. Files move into place before the ``done`` record is written, so a
    ``done`` record always means complete files. A failure that may not last goes into ``retry``
    only: nothing is written for it (the disk may be full), and a rerun tries the input again."""
    kind, value = outcome
    if kind not in ("done", "video"):
        shutil.rmtree(tmp, ignore_errors=True)
        retry[item.key] = value
        return
    files = work_dir / "items" / item.key
    shutil.rmtree(files, ignore_errors=True)
    record = {"fingerprint": fingerprint, "input": item.name, "input_stat": _stat(item.path)}
    if kind == "done":
        files.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, files)
        (work_dir / "skipped" / f"{item.key}.json").unlink(missing_ok=True)
        _atomic_write_json(work_dir / "done" / f"{item.key}.json", {**record, "result": value})
    else:
        shutil.rmtree(tmp, ignore_errors=True)
        (work_dir / "done" / f"{item.key}.json").unlink(missing_ok=True)
        record.update(reason=value, final=True)
        _atomic_write_json(work_dir / "skipped" / f"{item.key}.json", record)


def _stat(path: Path) -> list[int] | None:
    """Size and modification time: a replaced input file is processed again, not reused."""
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


def _load_record(work_dir: Path, item: InputItem, fingerprint: str) -> dict | None:
    """The earlier outcome to reuse for ``item``, if any: a done result, or a final skip."""
    for folder in ("done", "skipped"):
        path = work_dir / folder / f"{item.key}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if record.get("fingerprint") != fingerprint or record.get("input_stat") != _stat(item.path):
            continue
        if folder == "done" and (work_dir / "items" / item.key).is_dir():
            return record
        if folder == "skipped" and record.get("final"):
            return record
    return None


def fingerprint_of(arguments: dict[str, Any]) -> str:
    """A short hash of the arguments a builder's results depend on (for :func:`run_resumable`)."""
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- command-line options shared by builders


def add_builder_arguments(parser: argparse.ArgumentParser, what_title: str):
    """Add the options every pair builder takes: inputs, output folder, sharding, work folder and
    publishing. Returns the ``(what, how)`` argument groups for the builder's own options."""
    parser.add_argument(
        "inputs",
        type=_input_spec,
        help="a folder of videos, a list file (one path per line, relative to the list's folder), "
        "a video file, a dataset folder, or a Hub dataset id with a Video column",
    )
    parser.add_argument("-o", "--output-dir", required=True, help="the dataset folder to write (created if missing)")
    parser.add_argument("--video-column", default="video", help="the Video column of a dataset input (default: video)")
    what = parser.add_argument_group(what_title)
    how = parser.add_argument_group("how to run")
    how.add_argument("--shard-index", type=_count(0), default=0, help="this machine's shard, 0-based (default: 0)")
    how.add_argument("--num-shards", type=_count(1), default=1, help="machines sharing the inputs (default: 1)")
    how.add_argument(
        "--work-dir", default=None, help="resumable work folder and caches (default: OUTPUT_DIR/.work, never uploaded)"
    )
    add_publishing_arguments(parser)
    return what, how


def _input_spec(text: str) -> str:
    """The builders' ``inputs``: an existing path or a Hub dataset id, checked when parsing."""
    from ssvqa.hub import local_or_hub_id

    try:
        return local_or_hub_id(text)
    except InputNotFoundError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= {minimum}")
        return value

    return parse


def retry_lines(retry: Sequence[dict[str, Any]]) -> list[str]:
    """The summary lines of inputs that failed for a reason that may not last (see
    :func:`run_resumable`); empty when there are none."""
    if not retry:
        return []
    lines = [f"error: {len(retry)} input(s) failed for a reason that may not last; they are not recorded as skipped:"]
    lines += [f"  {item['input']}: {item['reason'].splitlines()[0]}" for item in retry]
    lines.append("Rerun the same command to retry them (finished inputs are reused).")
    return lines


def add_publishing_arguments(parser: argparse.ArgumentParser, private_help: str = "create the Hub repo private") -> None:
    """The ``publishing`` options every builder shares (``--push-to-hub``, ``--revision``, ...)."""
    hub = parser.add_argument_group("publishing")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="also upload the dataset folder to this Hub dataset repo")
    hub.add_argument("--revision", default=None, help="branch of the Hub repo to upload to (created if missing)")
    hub.add_argument("--private", action="store_true", help=private_help)
    hub.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login); never printed")
    hub.add_argument("--license", default="other", help="license id for the dataset card (default: other)")


def builder_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the options :func:`add_builder_arguments` added, for a builder function."""
    names = ("shard_index", "num_shards", "video_column", "work_dir", "license", "push_to_hub", "revision", "private", "token")
    return {name: getattr(args, name) for name in names}
