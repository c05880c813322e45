"""A resumable map for pair builders: run a worker over the inputs, keep each finished one.

:func:`run_resumable` runs a worker function over the inputs (:mod:`ssvqa.pairs.sources`), in a
process pool, with a progress bar, persisting each finished input under the work folder::

    work_dir/done/<key>.json       the worker's JSON result (written last, atomically)
    work_dir/items/<key>/          the files the worker wrote for that input
    work_dir/skipped/<key>.json    why an input is unusable (a content error: final)
    work_dir/inputs/<key>.<ext>    videos materialised from dataset rows (ssvqa.pairs.sources)
    work_dir/tmp/<key>.<random>/   an attempt in progress (moved to items/ when it succeeds)

A rerun after an interruption (even ``kill -9``) redoes only what has no ``done`` record, so its
result equals an uninterrupted run. Transient failures (a killed ffmpeg, a full disk, a permission
or I/O error: :class:`~ssvqa.errors.TransientError`, or an ``OSError`` such as ENOSPC) and
unexpected errors are reported but never recorded, so a rerun tries them again. A record is reused
only for the same input file (size and modification time) and the same ``fingerprint`` (the
builder's settings). Results are sorted by key, never by finishing time.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ssvqa.errors import TRANSIENT_ERRNOS, TransientError, VideoError
from ssvqa.hashing import json_fingerprint
from ssvqa.io import atomic_write_json
from ssvqa.pairs.sources import InputItem, Skipped


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
    from ssvqa.console import progress

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
    with progress(total=len(items), initial=reused, desc=desc, unit="videos") as bar:
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
    return json_fingerprint(arguments)[:16]


def _atomic_write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, value, indent=1, sort_keys=True)
