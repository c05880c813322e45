"""Relabel an existing pair dataset with a new teacher (one round of iterative self-training).

After a round of training, the student ranker (or any better teacher) scores every video of the
pair dataset again, and each pair's ``label``/``prob`` are rewritten from the new scores the same
way pseudo labels are made (:func:`ssvqa.labels.pair_level`). What the pair said before is kept
in its provenance (``previous_label``, ``previous_prob``, ``previous_origin``), with the ``round``
number and the annotator's name, and ``origin`` becomes ``"relabel"``.

Each distinct video is scored once, however many pairs it is in: videos are read as
``Video(decode=False)`` bytes, identical bytes are recognised by their SHA-256, and each is
written once to a temporary file for the annotator (a row holding only a path is read inside
``video_root`` only, never elsewhere). The annotator's scores are normalised over the dataset's
videos (ranks to normal quantiles), with the single-teacher spread of
:func:`ssvqa.pseudo_labels.combine_teachers`.

>>> new = relabel(pairs["train"], RankerAnnotator.from_pretrained("round-1/"), round=2)   # doctest: +SKIP
>>> json.loads(new[0]["provenance"])["previous_label"]                                   # doctest: +SKIP
'better'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets

from ssvqa.annotators.base import annotate, annotator_fingerprint
from ssvqa.labels import LEVELS, LevelThresholds, level_of_preference, pair_level, pair_z
from ssvqa.pseudo_labels import combine_teachers
from ssvqa.pairs.dataset import read_row_video

_BATCH_ROWS = 64


def relabel(
    pair_dataset: datasets.Dataset,
    annotator_or_scores: Any,
    *,
    round: int,
    thresholds: LevelThresholds = LevelThresholds(),
    drop_below_confidence: float | None = None,
    normalisation: str = "rank",
    single_teacher_spread: float = 0.5,
    name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: bool = False,
    video_root: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """Rewrite ``label``/``prob`` of every pair from new per-video scores.

    Args:
        pair_dataset: a pair dataset split (the columns of :func:`ssvqa.pairs.dataset.pair_features`).
        annotator_or_scores: an :class:`~ssvqa.annotators.base.Annotator`, or a mapping from a
            video's SHA-256 (of its bytes) to its score.
        round: the self-training round these labels belong to (recorded in the provenance).
        thresholds: ``z`` thresholds of the levels (:class:`~ssvqa.labels.LevelThresholds`).
        drop_below_confidence: drop pairs whose confidence ``max(prob, 1 - prob)`` is below this
            (e.g. 0.6 keeps only pairs the new teacher is at least 60 % sure of); None keeps all.
        normalisation: ``"rank"`` or ``"zscore"``.
        single_teacher_spread: each video's uncertainty in normalised units.
        name: the annotator's name in the provenance (default: ``annotator.name`` or ``"scores"``).
        cache_dir: score cache for :func:`~ssvqa.annotators.base.annotate`.
        batch_size: videos per annotator call.
        video_root: the folder that rows holding only a video path are read in (and may not
            leave, :func:`ssvqa.pairs.dataset.row_video_file`); None: rows must hold their bytes.

    Returns:
        A new dataset with the input's features. Pairs with a video the annotator could not score
        are dropped, with a warning naming each such video and why.
    """
    if drop_below_confidence is not None and not 0.5 <= drop_below_confidence <= 1.0:
        raise ValueError(f"drop_below_confidence must be within [0.5, 1], got {drop_below_confidence}")
    missing = [c for c in ("video_a", "video_b", "label", "prob", "origin", "provenance") if c not in pair_dataset.column_names]
    if missing:
        raise ValueError(f"not a pair dataset: missing column(s) {missing}")
    raw = pair_dataset.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))

    with tempfile.TemporaryDirectory(prefix="ssvqa-relabel-") as tmp:
        # Each distinct video once: SHA-256 of its bytes -> a file the annotator can read.
        files: dict[str, str] = {}
        row_hashes: list[tuple[str, str]] = []
        for batch in raw.select_columns(["video_a", "video_b"]).iter(batch_size=_BATCH_ROWS):
            for video_a, video_b in zip(batch["video_a"], batch["video_b"]):
                row = f"row {len(row_hashes)}"
                row_hashes.append((_register(video_a, files, tmp, video_root, f"{row} video_a"),
                                   _register(video_b, files, tmp, video_root, f"{row} video_b")))

        if isinstance(annotator_or_scores, Mapping):
            teacher = name or "scores"
            scores = {h: float(annotator_or_scores[h]) for h in files if h in annotator_or_scores}
            failed = {h: "no score given for this video" for h in files if h not in annotator_or_scores}
            fingerprint = ""
        else:
            teacher = name or annotator_or_scores.name
            fingerprint = annotator_fingerprint(annotator_or_scores)
            by_file = {path: digest for digest, path in files.items()}
            result = annotate(list(by_file), annotator_or_scores, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
            scores = {by_file[p]: s for p, s in result.scores.items()}
            failed = {by_file[p]: r for p, r in result.skipped.items()}

    consensus = combine_teachers({teacher: scores}, method=normalisation, single_teacher_spread=single_teacher_spread)
    if failed:
        warnings.warn(
            f"relabel: {len(failed)} video(s) could not be scored, their pairs are dropped: "
            + "; ".join(f"{h[:12]}: {r}" for h, r in list(failed.items())[:10]),
            stacklevel=2,
        )

    relabelled = []
    for index, (a, b) in enumerate(row_hashes):
        if a not in consensus.score or b not in consensus.score:
            continue
        level, prob = pair_level(consensus.score[a], consensus.score[b], consensus.spread[a], consensus.spread[b], thresholds)
        if drop_below_confidence is not None and max(prob, 1.0 - prob) < drop_below_confidence:
            continue
        relabelled.append((index, level, prob, {
            "raw_a": consensus.raw[teacher][a], "raw_b": consensus.raw[teacher][b],
            "score_a": consensus.score[a], "score_b": consensus.score[b],
            "spread_a": consensus.spread[a], "spread_b": consensus.spread[b],
            "z": pair_z(consensus.score[a], consensus.score[b], consensus.spread[a], consensus.spread[b], thresholds.noise_floor),
            "normalisation": normalisation, "sha256_a": a, "sha256_b": b,
        }))
    return _rewrite(pair_dataset, raw, relabelled, round=round, annotator=teacher, fingerprint=fingerprint)


def relabel_with_ranker(
    pair_dataset: datasets.Dataset,
    model,
    processor,
    *,
    round: int,
    sampling=None,
    num_frames: int | None = None,
    fps: float | None = None,
    max_pixels: int | None = None,
    batch_size: int = 8,
    drop_below_confidence: float | None = None,
    name: str = "ranker",
    fingerprint: str = "",
    progress: bool = False,
    video_root: str | os.PathLike | None = None,
    processes=None,
    stats: dict | None = None,
) -> datasets.Dataset:
    """Relabel each pair by asking a trained ranker about that very pair, in both orders.

    The ranker's preference for the second video, ``p = (P(b > a | a, b) + 1 - P(a > b | b, a)) / 2``
    (asking both orders cancels a position bias), becomes the pair's ``prob``, and its level is the
    nearest level weight (:func:`~ssvqa.labels.level_of_preference`: 0.6 -> ``similar``, 0.7 -> ``better``). This is the task
    the ranker was trained on, so unlike per-video scores (:func:`relabel` with a
    :class:`~ssvqa.annotators.RankerAnnotator`) it needs no anchors. Each distinct video is decoded
    once. Provenance is kept as in :func:`relabel`; pairs with an unreadable video are dropped
    with a warning. Rows holding only a video path are read inside ``video_root`` only, as in
    :func:`relabel`.

    Videos are decoded with ``sampling`` (a :class:`~ssvqa.sampling.VideoSampling`), by default
    the one the ranker was trained with (``model.video_sampling``, which
    :func:`~ssvqa.modeling.load_ranker` reads from the saved model); ``num_frames``, ``fps`` and
    ``max_pixels`` override single fields of it, with a warning.

    Under a multi-process launch pass ``processes`` (an ``accelerate.PartialState``): every
    process calls this with the same pairs, each runs the comparisons of its contiguous share
    (:func:`ssvqa.parallel.compare_shared`), and every process returns the same dataset.
    ``stats``, when given, receives ``comparisons``: how many this process ran.

    >>> new = relabel_with_ranker(pairs["train"], model, processor, round=1)   # doctest: +SKIP
    """
    import torch

    from ssvqa.errors import VideoError
    from ssvqa.parallel import compare_shared, share
    from ssvqa.prompts import expected_preference
    from ssvqa.sampling import DecodedVideos, resolve_sampling

    if drop_below_confidence is not None and not 0.5 <= drop_below_confidence <= 1.0:
        raise ValueError(f"drop_below_confidence must be within [0.5, 1], got {drop_below_confidence}")
    raw = pair_dataset.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
    sampling = resolve_sampling(sampling or getattr(model, "video_sampling", None), "the ranker", processor=processor,
                                num_frames=num_frames, fps=fps, max_pixels=max_pixels)
    frames = DecodedVideos(sampling)
    failed: dict[str, str] = {}
    rows: list[tuple[int, str, str]] = []

    def load(video, row: str) -> str:
        data = read_row_video(video, video_root, row)
        digest = frames.key(data)
        try:
            frames.frames(data, video.get("path") or digest[:12], key=digest)
        except VideoError as error:
            failed[digest] = str(error)
        return digest

    columns = raw.select_columns(["video_a", "video_b"])
    for start in range(0, len(columns), _BATCH_ROWS):
        batch = columns[start : start + _BATCH_ROWS]
        for offset, (video_a, video_b) in enumerate(zip(batch["video_a"], batch["video_b"])):
            index = start + offset
            rows.append((index, load(video_a, f"row {index} video_a"), load(video_b, f"row {index} video_b")))
    usable = [(i, a, b) for i, a, b in rows if a not in failed and b not in failed]
    if failed:
        warnings.warn(f"relabel: {len(failed)} video(s) could not be decoded, their pairs are dropped: "
                      + "; ".join(list(failed.values())[:10]), stacklevel=2)
    firsts = [frames[a] for _, a, _ in usable] + [frames[b] for _, _, b in usable]
    seconds = [frames[b] for _, _, b in usable] + [frames[a] for _, a, _ in usable]
    preference = torch.zeros(0)
    if usable:
        world = processes.num_processes if processes is not None else 1
        chunks = range(0, len(firsts), batch_size * 4 * world)  # each process: 4 batches per chunk
        if progress:
            from ssvqa.console import progress as progress_bar

            chunks = progress_bar(chunks, desc=f"relabelling {len(usable)} pairs (both orders)", unit="chunks")
        preference = torch.cat([
            expected_preference(compare_shared(model, processor, firsts[c : c + batch_size * 4 * world],
                                               seconds[c : c + batch_size * 4 * world], batch_size=batch_size,
                                               frame_rate=sampling.frame_rate, processes=processes))
            for c in chunks
        ])
    if stats is not None:
        step = batch_size * 4 * (processes.num_processes if processes is not None else 1)
        stats["comparisons"] = sum(len(share(len(firsts[c : c + step]), processes)) for c in range(0, len(firsts), step))
    n = len(usable)
    relabelled = []
    for k, (index, a, b) in enumerate(usable):
        forward, backward = float(preference[k]), float(preference[n + k])
        prob = (forward + 1.0 - backward) / 2
        if drop_below_confidence is not None and max(prob, 1.0 - prob) < drop_below_confidence:
            continue
        level = level_of_preference(prob)
        relabelled.append((index, level, prob, {"p_forward": forward, "p_backward": backward, "sha256_a": a, "sha256_b": b}))
    return _rewrite(pair_dataset, raw, relabelled, round=round, annotator=name, fingerprint=fingerprint)


def _rewrite(pair_dataset, raw, relabelled, *, round: int, annotator: str, fingerprint: str) -> datasets.Dataset:
    """The kept rows of ``pair_dataset`` with new ``label``/``prob``, ``origin="relabel"``, and
    the old label in the provenance. ``relabelled``: ``(row index, level, prob, details)``."""
    label_names = pair_dataset.features["label"].names if hasattr(pair_dataset.features["label"], "names") else list(LEVELS)
    old = raw.select_columns(["label", "prob", "origin", "provenance"])
    keep, labels, probs, provenances = [], [], [], []
    for index, level, prob, details in relabelled:
        row = old[index]
        try:
            provenance = json.loads(row["provenance"]) if row["provenance"] else {}
        except json.JSONDecodeError:
            provenance = {"original": row["provenance"]}
        if not isinstance(provenance, dict):
            provenance = {"original": provenance}
        provenance.update(
            round=int(round),
            previous_label=label_names[row["label"]] if isinstance(row["label"], int) else row["label"],
            previous_prob=float(row["prob"]),
            previous_origin=row["origin"],
            annotator=annotator,
            annotator_fingerprint=fingerprint,
            relabel=details,
        )
        keep.append(index)
        labels.append(int(level))
        probs.append(float(prob))
        provenances.append(json.dumps(provenance, sort_keys=True))

    features = pair_dataset.features
    out = pair_dataset.select(keep).remove_columns(["label", "prob", "origin", "provenance"])
    out = out.add_column("label", labels, feature=features["label"])
    out = out.add_column("prob", probs, feature=features["prob"])
    out = out.add_column("origin", ["relabel"] * len(keep), feature=features["origin"])
    out = out.add_column("provenance", provenances, feature=features["provenance"])
    return out.select_columns(list(features))


def _register(video: Mapping[str, Any], files: dict[str, str], tmp: str, root, row: str) -> str:
    """SHA-256 of one ``{"path", "bytes"}`` video; the first time, a file holding it."""
    data, path = read_row_video(video, root, row), video.get("path")
    digest = hashlib.sha256(data).hexdigest()
    if digest not in files:
        suffix = Path(path).suffix if path and len(Path(path).suffix) <= 6 else ".mp4"
        target = Path(tmp) / f"{digest[:16]}{suffix or '.mp4'}"
        target.write_bytes(data)
        files[digest] = str(target)
    return digest
