"""What a quality annotator (a "teacher") is, and how a folder of videos gets annotated.

An annotator maps videos to one quality score each (higher is better, any scale: labels are
made from *normalised* scores, see :mod:`ssvqa.labels`). :func:`annotate` runs one over many
videos, and adds what every teacher needs and none should rewrite:

* **Failures lose nothing.** ``Annotator.score`` raises :class:`~ssvqa.errors.VideoError` for a
  video it cannot read. :func:`annotate` then re-scores that batch one video at a time, so only
  the bad videos are lost; each lands in ``AnnotationResult.skipped`` with its reason. (We chose
  "raise, then retry one by one" over "return NaN plus a side channel of reasons": an annotator
  stays a plain function of its inputs, and the retry costs little because bad videos are rare.)
  A non-finite score is treated as a failure too.
* **A cache keyed by content.** Scores are stored per video *content hash* (so a renamed or
  copied file is not scored again), per annotator ``name`` and per annotator ``fingerprint``
  (its configuration: different weights give a different cache). Failures are cached as well:
  the same bytes fail the same way. The cache is a folder of JSON-lines files, **one file per
  writing process** (host and pid in the name), merged on read; several processes, on one machine
  or on a shared file system, can therefore annotate into the same cache at once without locks.
  A line cut short by a crash is ignored on read.
* **Data parallel under ``accelerate launch``.** With an ``accelerator`` (an ``Accelerator`` or
  ``PartialState``), process *k* of *n* takes videos ``k, k+n, k+2n, ...`` of the (de-duplicated)
  input list, scores its share, and the shares are gathered to every process
  (``accelerate.utils.gather_object``): every process returns the same, complete result, equal
  to a single-process run. Every process must pass the same list, as they do when they run the
  same script.

Example::

    from ssvqa.annotators import ClassicalAnnotator, annotate
    from ssvqa.video import list_videos

    result = annotate(list_videos("clips/"), ClassicalAnnotator(), cache_dir="cache/")
    result.scores   # {"clips/a.mp4": 61.2, ...}
    result.skipped  # {"clips/broken.mp4": "0-byte file"}
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ssvqa.errors import SsvqaError, VideoError
from ssvqa.video import content_hash, unusable_reason


@runtime_checkable
class Annotator(Protocol):
    """A quality teacher: ``score(videos)`` returns one float per video, higher is better.

    ``name`` identifies the teacher (in labels' provenance and in the cache). An annotator whose
    scores depend on its settings should also have a ``fingerprint`` string attribute (e.g. a
    hash of its configuration, or a model revision): :func:`annotate` keys its cache by it.
    ``score`` raises :class:`~ssvqa.errors.VideoError` when a video cannot be read.
    """

    name: str

    def score(self, videos: Sequence[str | Path]) -> list[float]: ...


@dataclass
class AnnotationResult:
    """What :func:`annotate` returns; keys are the video paths as given (as ``str``).

    Attributes:
        scores: path -> score, for every video that was scored (now or from the cache).
        skipped: path -> reason, for every video that could not be scored.
        hashes: path -> content hash (SHA-256 of the file), for every readable file.
        num_scored: videos the annotator was run on in this call, over all processes.
        num_cached: videos whose score (or failure) came from the cache.
    """

    scores: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    num_scored: int = 0
    num_cached: int = 0


def annotator_fingerprint(annotator: Annotator) -> str:
    """The annotator's ``fingerprint`` (``""`` when it has none; a method is called)."""
    fingerprint = getattr(annotator, "fingerprint", "")
    return str(fingerprint() if callable(fingerprint) else fingerprint)


class ScoreCache:
    """Cached scores of one annotator configuration: a folder of JSON-lines files.

    Each line is ``{"hash": ..., "score": float}`` or ``{"hash": ..., "error": reason}`` (plus the
    path first seen, for people reading the file). Each process appends to its own file.
    """

    def __init__(self, cache_dir: str | Path, name: str, fingerprint: str = ""):
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "annotator"
        folder = f"{safe_name}-{fingerprint[:16]}" if fingerprint else safe_name
        self.folder = Path(cache_dir) / folder
        self.name = name
        self.fingerprint = fingerprint
        self._file = self.folder / f"scores-{socket.gethostname()}-{os.getpid()}.jsonl"

    def load(self) -> dict[str, dict[str, Any]]:
        """content hash -> its record, merged over every process's file."""
        records: dict[str, dict[str, Any]] = {}
        for part in sorted(self.folder.glob("scores-*.jsonl")):
            with open(part, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a crash: that video is simply scored again
                    if isinstance(record, dict) and "hash" in record and ("score" in record or "error" in record):
                        records[record["hash"]] = record
        return records

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records to this process's file (one write, flushed: a crash loses little)."""
        if not records:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        with open(self._file, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()


def annotate(
    videos: Sequence[str | Path],
    annotator: Annotator,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    accelerator: Any = None,
    progress: bool = True,
) -> AnnotationResult:
    """Score ``videos`` with ``annotator``: cached, failure-tolerant, data parallel.

    Args:
        videos: video files; duplicates (same path) are scored once.
        annotator: anything following the :class:`Annotator` protocol.
        cache_dir: where scores are cached (see :class:`ScoreCache`); ``None`` caches nothing.
        batch_size: videos per ``annotator.score`` call.
        accelerator: an ``accelerate`` ``Accelerator`` or ``PartialState``; with more than one
            process, each scores a strided share and the results are gathered to all.
        progress: show a progress bar (main process only).

    Returns:
        An :class:`AnnotationResult`, the same on every process.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    paths = list(dict.fromkeys(str(v) for v in videos))
    rank, world = _process_slot(accelerator)
    share = paths[rank::world]

    fingerprint = annotator_fingerprint(annotator)
    cache = ScoreCache(cache_dir, annotator.name, fingerprint) if cache_dir is not None else None
    known = cache.load() if cache is not None else {}

    outcomes: list[dict[str, Any]] = []  # one per path of this share: path, hash, score|error, cached
    to_score: dict[str, str] = {}  # content hash -> first path with it (same bytes are scored once)
    waiting: list[tuple[str, str]] = []  # (path, hash) whose result comes from to_score
    for path in share:
        try:
            digest = _hash_or_reason(path)
        except VideoError as err:
            outcomes.append({"path": path, "hash": None, "error": err.reason, "cached": False})
            continue
        if digest in known:
            record = known[digest]
            outcomes.append({"path": path, "hash": digest, "cached": True, **_result_of(record)})
        else:
            to_score.setdefault(digest, path)
            waiting.append((path, digest))

    fresh: dict[str, dict[str, Any]] = {}
    items = list(to_score.items())
    bar = _progress_bar(len(items), f"annotating with {annotator.name}", progress and rank == 0)
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        results = _score_batch(annotator, [path for _, path in batch])
        records = []
        for (digest, path), result in zip(batch, results):
            fresh[digest] = result
            records.append({"hash": digest, "path": path, "annotator": annotator.name, **result})
        if cache is not None:
            cache.append(records)
        bar.update(len(batch))
    bar.close()
    for path, digest in waiting:
        outcomes.append({"path": path, "hash": digest, "cached": False, **fresh[digest]})
    local = [(outcomes, len(items))]

    if world > 1:
        from accelerate.utils import gather_object

        gathered = gather_object(local)
    else:
        gathered = local

    result = AnnotationResult()
    by_path: dict[str, dict[str, Any]] = {}
    for process_outcomes, num_scored in gathered:
        result.num_scored += num_scored
        for outcome in process_outcomes:
            by_path[outcome["path"]] = outcome
    for path in paths:  # in input order, whatever order the processes finished in
        outcome = by_path[path]
        if outcome["hash"] is not None:
            result.hashes[path] = outcome["hash"]
        if "score" in outcome:
            result.scores[path] = outcome["score"]
        else:
            result.skipped[path] = outcome["error"]
        result.num_cached += bool(outcome["cached"])
    return result


def _process_slot(accelerator: Any) -> tuple[int, int]:
    """(this process's index, number of processes); (0, 1) without an accelerator."""
    if accelerator is None:
        return 0, 1
    rank, world = int(accelerator.process_index), int(accelerator.num_processes)
    import torch.distributed as dist

    if world == 1 and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # Seen on CPU machines: ``PartialState()`` without ``cpu=True`` under ``accelerate launch``
        # reports one process. Results stay right (every process scores everything), but slowly.
        warnings.warn(
            f"the accelerator reports 1 process but torch.distributed has {dist.get_world_size()}: every "
            "process will score every video; on CPU create it with cpu=True (Accelerator(cpu=True))",
            stacklevel=3,
        )
    return rank, world


def _hash_or_reason(path: str) -> str:
    """The content hash, or a VideoError with the same wording ``ssvqa.video`` uses."""
    location = Path(path)
    if (reason := unusable_reason(location)) is not None:
        raise VideoError(path, reason)
    try:
        return content_hash(location)
    except OSError as err:
        raise VideoError(path, f"cannot be read: {err.strerror or err}") from err


def _result_of(record: dict[str, Any]) -> dict[str, Any]:
    return {"score": float(record["score"])} if "score" in record else {"error": str(record["error"])}


def _score_batch(annotator: Annotator, paths: list[str]) -> list[dict[str, Any]]:
    """``{"score": s}`` or ``{"error": reason}`` per path; a failing batch is retried one by one."""
    try:
        scores = list(annotator.score(paths))
    except VideoError as err:
        if len(paths) == 1:
            return [{"error": err.reason}]
        return [result for path in paths for result in _score_batch(annotator, [path])]
    if len(scores) != len(paths):
        raise SsvqaError(f"annotator {annotator.name!r} returned {len(scores)} scores for {len(paths)} videos")
    results = []
    for score in scores:
        score = float(score)
        results.append({"score": score} if math.isfinite(score) else {"error": f"annotator returned a non-finite score ({score})"})
    return results


def _progress_bar(total: int, description: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="video", disable=not enabled or total == 0)
