"""Score videos 0–100 with a trained pair ranker: compare each video with K anchor videos.

:class:`QualityScorer` asks the ranker (:func:`ssvqa.modeling.compare`) how each test video
compares with K anchor videos of known quality and turns the answers into a 0–100 score with the
Bradley–Terry MAP of :mod:`ssvqa.bradley_terry` and a calibration fitted to the anchors' known scores
(that module's doc explains the math and the formula). The default ``calibration="logistic"``
extrapolates smoothly beyond the anchors: a video better than the best anchor scores between that
anchor's score and 100, and distinct videos never tie; ``calibration="minmax"`` is the paper's rule
(0 = at or below the worst anchor, 100 = at or above the best one), kept for comparison.

>>> scorer = QualityScorer.from_pretrained("my-ranker")                      # doctest: +SKIP
>>> scorer.score(["a.mp4", "b.mp4"])                                         # doctest: +SKIP
[37.2, 81.0]

Anchors
-------
The K×K anchor–anchor block needs K·(K−1) comparisons (both orders of every pair); it is computed
once and kept. :meth:`QualityScorer.save_anchors` writes ``anchors.json`` plus a copy of the
anchor videos (``anchors/``) into a folder, normally the model's: :meth:`from_pretrained` then
finds them there and reloads the block without a single comparison. ``anchors.json`` records the
video sampling and temperature the block was made with; a block made under others is recomputed,
with a warning, since its preferences would not match the test comparisons. To make anchors from videos with known scores
(a labelled set, or a distortion ladder), :meth:`QualityScorer.build_anchors` picks K of them
spread over the range (:func:`ssvqa.bradley_terry.select_anchors`).

Throughput
----------
Each video is decoded once; the N·K comparisons go through ``compare`` in chunks of videos whose
comparisons fill whole batches, so a batch mixes videos (no half-empty batch per video). Where
decoding would not take cores from the model (a GPU, or torch leaving a CPU core free) the next
chunk is decoded in a background thread while the current one runs through the model; otherwise
between chunks (:func:`decode_ahead_default`; ``QualityScorer(decode_ahead=True/False)`` forces
it). ``bench/bench_scoring.py`` compares this with the bare batched forward passes it needs.

Video sampling: a ranker is asked about frames sampled the way it was trained
(:class:`~ssvqa.sampling.VideoSampling`, read from ``video_sampling.json`` beside the adapter or the
model, else from ``anchors.json``); ``num_frames``/``fps``/``max_pixels`` given explicitly override
it, with a warning. Any frame rate the processor needs comes from the sampling too.

The ``ssvqa score`` command is :mod:`ssvqa.commands.score`.

Length: over 400 lines for one class, :class:`QualityScorer`, with the anchors file it reads and
writes. Its math is elsewhere (:mod:`ssvqa.bradley_terry`), and so is its command line
(:mod:`ssvqa.commands.score`).
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import shutil
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssvqa.errors import SsvqaError, TransientError, UsageError, VideoError
from ssvqa.io import atomic_write_json
from ssvqa.sampling import DEFAULT_NUM_FRAMES, VideoSampling, resolve_sampling
from ssvqa.bradley_terry import CALIBRATIONS, anchor_matrix, score_against_anchors, select_anchors
from ssvqa.video import decode_segments, is_within, unusable_reason

ANCHORS_FILE = "anchors.json"
ANCHOR_VIDEOS_DIR = "anchors"
DEFAULT_NUM_ANCHORS = 5


@dataclass(frozen=True)
class SegmentScore:
    """The 0–100 score of the part ``[start, end)`` (seconds) of a video."""

    start: float
    end: float
    score: float


@dataclass(frozen=True)
class VideoScore:
    """One video's result from :meth:`QualityScorer.score_details`.

    ``preferences[k]`` is the ranker's P(this video is better than anchor k) (both orders averaged
    when mirrored), the evidence the score is solved from; ``segments`` holds the per-segment
    scores when segments were asked for (each segment scored against the anchors like a video).
    """

    score: float
    preferences: list[float]
    segments: list[SegmentScore] = field(default_factory=list)


@dataclass(frozen=True)
class PairComparison:
    """The ranker's answer on one pair, asked in both orders (:meth:`QualityScorer.compare_pair`).

    ``second_vs_first``: the five-level distribution (level -> probability) for the second video
    shown after the first; ``first_vs_second``: the same question with the order swapped.
    ``p_second_better``: P(second better) from both orders, averaged.
    """

    second_vs_first: dict[str, float]
    first_vs_second: dict[str, float]
    p_second_better: float


class QualityScorer:
    """A pair ranker plus K anchor videos: ``score(videos)`` gives 0–100 scores.

    Build it with :meth:`from_pretrained`. Attributes: ``anchor_videos`` (paths),
    ``anchor_scores`` (their known scores), ``anchor_block`` (K×K raw P(second better) of the
    ordered anchor pairs, NaN on the diagonal), ``sampling`` (the
    :class:`~ssvqa.sampling.VideoSampling` every video is decoded with), and the other settings.
    ``comparisons`` counts the comparisons this process made so far (anchor block included).
    ``decode_ahead`` (None: chosen by :func:`decode_ahead_default` on each call) says whether the
    next chunk's videos are decoded in a background thread while the model works.
    """

    def __init__(
        self,
        model,
        processor,
        anchor_videos: Sequence[str | os.PathLike],
        anchor_scores: Sequence[float],
        anchor_block=None,
        *,
        sampling: VideoSampling | None = None,
        temperature: float = 1.0,
        mirrored: bool = False,
        batch_size: int = 8,
        calibration: str = "logistic",
        chunk_videos: int | None = None,
        decode_ahead: bool | None = None,
        model_dir: str | os.PathLike | None = None,
        processes=None,
    ):
        if len(anchor_videos) != len(anchor_scores):
            raise ValueError(f"{len(anchor_videos)} anchor videos but {len(anchor_scores)} anchor scores")
        if len(anchor_videos) < 2:
            raise ValueError(f"need at least 2 anchors, got {len(anchor_videos)}")
        if calibration not in CALIBRATIONS:
            raise UsageError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
        self.calibration = calibration
        self.model, self.processor = model, processor
        self.anchor_videos = [Path(p) for p in anchor_videos]
        self.anchor_scores = [float(s) for s in anchor_scores]
        self.sampling = (sampling or VideoSampling()).with_processor(processor)
        self.temperature = float(temperature)
        self.mirrored, self.batch_size, self.chunk_videos = bool(mirrored), int(batch_size), chunk_videos
        # None: decide per call (decode_ahead_default); True/False force it.
        self.decode_ahead = decode_ahead
        self.model_dir = Path(model_dir) if model_dir is not None else None
        # Under a multi-process launch (accelerate.PartialState): every comparison, the anchor block's
        # included, is split across the processes and gathered (ssvqa.parallel); all must call alike.
        self.processes = processes
        self.comparisons = 0
        self._anchor_frames: list[torch.Tensor] | None = None
        if anchor_block is None:
            anchor_block = self._compute_anchor_block()
        block = np.array(anchor_block, dtype=np.float64)
        if block.shape != (len(self.anchor_videos),) * 2:
            raise ValueError(f"anchor block must be {len(self.anchor_videos)}×{len(self.anchor_videos)}, got {block.shape}")
        np.fill_diagonal(block, np.nan)
        self.anchor_block = block
        self._C_block = anchor_matrix(block)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model_or_path,
        anchors=None,
        *,
        adapter: str | os.PathLike | None = None,
        sampling: VideoSampling | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        max_pixels: int | None = None,
        temperature: float = 1.0,
        mirrored: bool = False,
        batch_size: int = 8,
        calibration: str = "logistic",
        quantization=None,
        device_map=None,
        processor=None,
        processes=None,
    ) -> QualityScorer:
        """Load a ranker (a path or Hub id, or an already loaded model with ``processor=``) and its anchors.

        Args:
            model_or_path: folder or Hub id for :func:`ssvqa.modeling.load_ranker`, or a loaded model
                (then pass ``processor``).
            anchors: None (use the ``anchors.json`` saved in the adapter's or the model's folder),
                a list of ``(video path, score)`` (the block is computed now), or the path of an
                ``anchors.json`` (or of the folder holding one).
            adapter: a saved LoRA adapter to load on top of the model.
            sampling: the :class:`~ssvqa.sampling.VideoSampling` to decode videos with. Default: the
                one saved with the adapter or model (``video_sampling.json``), else the one in the
                anchors' ``anchors.json``, else the defaults.
            num_frames, fps, max_pixels: override single fields of that sampling (a warning says
                what differs from the saved one).
            temperature: softmax temperature of the level logits.
            mirrored: also ask every test–anchor pair in the other order and average the two
                (cancels position bias; doubles the comparisons).
            batch_size: pairs per forward pass.
            calibration: how latent scores become 0–100: ``"logistic"`` (fitted to the anchors'
                known scores, no clamping) or ``"minmax"`` (the paper's rule, clamps at the
                anchors); see :mod:`ssvqa.bradley_terry`.
            quantization, device_map: passed to ``load_ranker``.
            processes: an ``accelerate.PartialState`` to split the comparisons across the
                processes of a launch (:mod:`ssvqa.parallel`); every process gets every score.

        Raises:
            SsvqaError: no anchors given and none saved with the model (the message says how to make them).
        """
        settings = dict(temperature=temperature, mirrored=mirrored, batch_size=batch_size, calibration=calibration)
        overrides = dict(num_frames=num_frames, fps=fps, max_pixels=max_pixels)
        if isinstance(model_or_path, (str, os.PathLike)):
            from ssvqa.modeling import load_ranker

            model, processor = load_ranker(model_or_path, adapter=adapter, quantization=quantization, device_map=device_map)
            model_dir = next((Path(p) for p in (adapter, model_or_path) if p is not None and Path(p).is_dir()), None)
        else:
            if processor is None:
                raise ValueError("pass processor= with an already loaded model")
            model, model_dir = model_or_path, None
        saved = sampling or getattr(model, "video_sampling", None)
        source = str(adapter or model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else "the model"
        if anchors is None:
            searched = [Path(p) for p in (adapter, model_or_path) if isinstance(p, (str, os.PathLike)) and Path(p).is_dir()]
            found = next((p / ANCHORS_FILE for p in searched if (p / ANCHORS_FILE).is_file()), None)
            if found is None:
                where = " or ".join(str(p) for p in searched) or "the model (not a local folder)"
                raise SsvqaError(
                    f"no anchors given and no {ANCHORS_FILE} in {where}. Scores need K anchor videos of known "
                    "quality: pick them with QualityScorer.build_anchors([(video, score), ...], k=5) (or pass such "
                    "a list as anchors=), then scorer.save_anchors(model_folder) so later loads find them; "
                    f"or pass anchors='path/to/{ANCHORS_FILE}'"
                )
            anchors = found
        if isinstance(anchors, (str, os.PathLike)):
            path = Path(anchors)
            path = path / ANCHORS_FILE if path.is_dir() else path
            videos, scores, block, made_with = read_anchors(path)
            if saved is None and "video_sampling" in made_with:
                saved, source = VideoSampling.from_dict(made_with["video_sampling"]), str(path)
            chosen = resolve_sampling(saved, source, processor=processor, **overrides)
            stale = _stale_settings(made_with, chosen, temperature)
            if stale:
                warnings.warn(
                    f"{path}: anchor block was computed with other {', '.join(stale)} "
                    f"({', '.join(f'{k}={v}' for k, v in stale.items())}); recomputing it",
                    UserWarning,
                    stacklevel=2,
                )
                block = None
            return cls(model, processor, videos, scores, block, model_dir=model_dir, sampling=chosen, processes=processes, **settings)
        pairs = list(anchors)
        videos = [p for p, _ in pairs]
        scores = [s for _, s in pairs]
        chosen = resolve_sampling(saved, source, processor=processor, **overrides)
        return cls(model, processor, videos, scores, None, model_dir=model_dir, sampling=chosen, processes=processes, **settings)

    @staticmethod
    def build_anchors(videos_with_scores: Iterable, k: int = DEFAULT_NUM_ANCHORS) -> list[tuple[str, float]]:
        """K ``(video, score)`` anchors spread over the score range, worst first.

        ``videos_with_scores``: ``(video, score)`` or ``(video, score, std)`` tuples (std = the
        raters' spread; anchors with less of it are preferred), or a dataset/mapping rows with
        ``video``, ``mos`` (and ``mos_std``) such as :func:`ssvqa.benchmarks.load_benchmark` returns.

        >>> QualityScorer.build_anchors([("a.mp4", 10), ("b.mp4", 50), ("c.mp4", 52), ("d.mp4", 90)], k=3)
        [('a.mp4', 10.0), ('b.mp4', 50.0), ('d.mp4', 90.0)]
        """
        rows = []
        for item in videos_with_scores:
            if isinstance(item, dict):
                rows.append((str(item["video"]), float(item["mos"]), item.get("mos_std")))
            else:
                rows.append((str(item[0]), float(item[1]), item[2] if len(item) > 2 else None))
        stds = [r[2] for r in rows]
        std = None if any(s is None for s in stds) else stds
        chosen = select_anchors([r[1] for r in rows], std, k=k)
        return [(rows[i][0], rows[i][1]) for i in chosen]

    def save_anchors(self, folder: str | os.PathLike | None = None) -> Path:
        """Write ``anchors.json`` and copies of the anchor videos (``anchors/``) into ``folder``.

        ``folder`` defaults to the model's (or adapter's) local folder, where
        :meth:`from_pretrained` looks. The JSON holds the anchors' file names relative to
        ``folder``, their scores, the K×K block (null on the diagonal), the video sampling and
        temperature it was computed with. Returns the JSON's path.
        """
        folder = Path(folder) if folder is not None else self.model_dir
        if folder is None:
            raise ValueError("the model was not loaded from a local folder: pass the folder to save the anchors in")
        target = folder / ANCHOR_VIDEOS_DIR
        target.mkdir(parents=True, exist_ok=True)
        names = []
        for i, video in enumerate(self.anchor_videos):
            name = f"{ANCHOR_VIDEOS_DIR}/{i:02d}-{video.name}"
            if os.path.realpath(folder / name) != os.path.realpath(video):
                shutil.copyfile(video, folder / name)
            names.append(name)
        block = [[None if math.isnan(v) else float(v) for v in row] for row in self.anchor_block]
        record = {
            "anchors": [{"video": n, "score": s} for n, s in zip(names, self.anchor_scores)],
            "p_second_better": block,
            "settings": {"temperature": self.temperature, "video_sampling": self.sampling.to_dict()},
            "note": "p_second_better[a][b]: the ranker's P(second better) for the pair (first = anchor a, second = anchor b)",
        }
        return atomic_write_json(folder / ANCHORS_FILE, record)

    # --- scoring --------------------------------------------------------------------------------

    def score(self, videos: Sequence[str | os.PathLike], *, progress: bool = False) -> list[float]:
        """0–100 scores of ``videos``, in order. Raises the first :class:`VideoError` if any video is
        unreadable (use :meth:`score_with_errors` to score the rest anyway)."""
        scores, errors = self.score_with_errors(videos, progress=progress)
        if errors:
            path, reason = next(iter(errors.items()))
            raise VideoError(path, reason + (f" (and {len(errors) - 1} more unreadable videos)" if len(errors) > 1 else ""))
        return [scores[str(v)] for v in videos]

    def score_with_errors(self, videos: Sequence[str | os.PathLike], *, progress: bool = False) -> tuple[dict[str, float], dict[str, str]]:
        """Score what can be scored: ``(scores, errors)``, both keyed by ``str(path)``; ``errors``
        gives the reason each unreadable video was left out. Repeated paths are scored once."""
        results, errors = self.score_details(videos, progress=progress)
        return {name: result.score for name, result in results.items()}, errors

    def score_details(
        self, videos: Sequence[str | os.PathLike], *, segments: float | None = None, progress: bool = False
    ) -> tuple[dict[str, VideoScore], dict[str, str]]:
        """Like :meth:`score_with_errors`, with each video's preferences against the anchors and,
        given ``segments`` (seconds), the score of each segment: quality over time.

        A video and its segments come from one decoder pass (:func:`ssvqa.video.decode_segments`)
        and their comparisons share batches with the other videos of the chunk. Each segment costs
        as many comparisons as a video.
        """
        unique = list(dict.fromkeys(str(v) for v in videos))
        results: dict[str, VideoScore] = {}
        errors: dict[str, str] = {}
        anchors = self._anchors()
        size = self.chunk_videos or self._batch_aligned_chunk()
        chunks = [unique[i : i + size] for i in range(0, len(unique), size)]
        bar = _progress(len(unique), progress)
        ahead = decode_ahead_default(self.model) if self.decode_ahead is None else self.decode_ahead
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            submit = pool.submit if ahead else _run_now
            pending = submit(self._decode_all, chunks[0], segments) if chunks else None
            for index in range(len(chunks)):
                decoded, failed = pending.result()
                # Decode the next chunk while this one runs through the model (when ahead).
                pending = submit(self._decode_all, chunks[index + 1], segments) if index + 1 < len(chunks) else None
                errors.update(failed)
                if decoded:
                    results.update(self._score_decoded(decoded, anchors))
                if bar is not None:
                    bar.update(len(chunks[index]))
        if bar is not None:
            bar.close()
        return results, errors

    def compare_pair(self, first: str | os.PathLike, second: str | os.PathLike) -> PairComparison:
        """How the ranker judges ``second`` against ``first``, asked in both orders (one batch).

        Raises:
            VideoError: either video cannot be decoded.
        """
        from ssvqa.labels import LEVELS
        from ssvqa.modeling import compare
        from ssvqa.prompts import expected_preference

        a, b = self._decode(first), self._decode(second)
        probs = compare(self.model, self.processor, [a, b], [b, a], batch_size=self.batch_size, temperature=self.temperature,
                        frame_rate=self.sampling.frame_rate)
        self.comparisons += 2
        p = expected_preference(probs.double()).numpy()
        levels = [dict(zip(LEVELS, map(float, row))) for row in probs.double().numpy()]
        return PairComparison(levels[0], levels[1], float((p[0] + 1.0 - p[1]) / 2))

    # --- internals ------------------------------------------------------------------------------

    def _batch_aligned_chunk(self) -> int:
        """Fewest videos whose comparisons fill whole batches (K=5, batch 8: 8 videos, 40 pairs).

        Small chunks start the model early (only the first chunk's decoding is not hidden behind
        the model's work) and whole batches waste no forward-pass slots.
        """
        pairs_per_video = len(self.anchor_videos) * (2 if self.mirrored else 1)
        return self.batch_size // math.gcd(self.batch_size, pairs_per_video)

    def _decode(self, path, segments: float | None = None):
        """A video's frames as the ranker's sampling takes them; with ``segments``, ``(frames,
        [(start, end, segment frames), ...])``, each segment with the sampling's frame count (one
        decoder pass; with fps sampling the whole video is decoded by its own rule first)."""
        if (reason := unusable_reason(path)) is not None:  # a symlink loop says so, not "not found"
            raise VideoError(path, reason)
        if segments is None:
            return self.sampling.decode(path)
        s = self.sampling
        whole, parts = decode_segments(path, segments, s.num_frames or DEFAULT_NUM_FRAMES, max_pixels=s.max_pixels,
                                       multiple=s.frame_multiple)
        return (whole if s.fps is None else s.decode(path)), parts

    def _decode_all(self, paths: Sequence[str], segments: float | None = None) -> tuple[dict, dict[str, str]]:
        decoded, failed = {}, {}
        for path in paths:
            try:
                decoded[path] = self._decode(path, segments)
            except (VideoError, TransientError) as err:
                failed[path] = err.reason
        return decoded, failed

    def _score_decoded(self, decoded: dict, anchors: list[torch.Tensor]) -> dict[str, VideoScore]:
        """Videos (and their segments) of one chunk against the anchors, in shared batches."""
        items, owners = [], []  # owners[i]: (video name, None for the whole video or (start, end))
        for name, value in decoded.items():
            whole, parts = value if isinstance(value, tuple) else (value, [])
            items.append(whole)
            owners.append((name, None))
            for start, end, frames in parts:
                items.append(frames)
                owners.append((name, (start, end)))
        p, q = self._test_preferences(items, anchors)
        scores = score_against_anchors(self._C_block, p, True, p_mirrored=q, anchor_scores=self.anchor_scores,
                                       calibration=self.calibration)
        better = p if q is None else (p + 1.0 - q) / 2  # P(test better than anchor k)
        results: dict[str, VideoScore] = {}
        for (name, span), score, prefs in zip(owners, scores, better):
            if span is None:
                results[name] = VideoScore(float(score), [float(x) for x in prefs])
            else:
                results[name].segments.append(SegmentScore(span[0], span[1], float(score)))
        return results

    def _anchors(self) -> list[torch.Tensor]:
        if self._anchor_frames is None:
            frames = []
            for path in self.anchor_videos:
                try:
                    frames.append(self._decode(path))
                except VideoError as err:
                    raise SsvqaError(f"anchor video {err.path} cannot be used: {err.reason}") from err
            self._anchor_frames = frames
        return self._anchor_frames

    def _compare(self, firsts: list[torch.Tensor], seconds: list[torch.Tensor]) -> np.ndarray:
        from ssvqa.parallel import compare_shared, share
        from ssvqa.prompts import expected_preference

        probs = compare_shared(self.model, self.processor, firsts, seconds, processes=self.processes,
                               batch_size=self.batch_size, temperature=self.temperature, frame_rate=self.sampling.frame_rate)
        self.comparisons += len(share(len(firsts), self.processes))  # this process's part
        return expected_preference(probs.double()).numpy()

    def _compute_anchor_block(self) -> np.ndarray:
        """Both orders of every anchor pair: K·(K−1) comparisons, in full batches."""
        anchors = self._anchors()
        K = len(anchors)
        order = [(a, b) for a in range(K) for b in range(K) if a != b]
        p = self._compare([anchors[a] for a, _ in order], [anchors[b] for _, b in order])
        block = np.full((K, K), np.nan)
        for (a, b), value in zip(order, p):
            block[a, b] = value
        return block

    def _test_preferences(self, videos: list[torch.Tensor], anchors: list[torch.Tensor]):
        """``(p, p_mirrored)``, each ``(N, K)``: anchor first; test first (or None)."""
        N, K = len(videos), len(anchors)
        firsts = [anchors[k] for _ in range(N) for k in range(K)]
        seconds = [v for v in videos for _ in range(K)]
        if self.mirrored:  # one call, so the mirrored pairs fill the same batches
            p = self._compare(firsts + seconds, seconds + firsts)
            return p[: N * K].reshape(N, K), p[N * K :].reshape(N, K)
        return self._compare(firsts, seconds).reshape(N, K), None


def read_anchors(path: Path):
    """Anchor videos (absolute), scores, K×K block and settings from an ``anchors.json``."""
    if not path.is_file():
        raise UsageError(f"anchors file {path}: {unusable_reason(path) or 'not a file'}")
    try:
        record = json.loads(path.read_text())
        entries = record["anchors"]
        videos = [entry["video"] for entry in entries]
        scores = [float(entry["score"]) for entry in entries]
        raw = record.get("p_second_better")
        block = None if raw is None else np.array([[math.nan if v is None else v for v in row] for row in raw], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path}: not a valid anchors file ({err})") from err
    if len(videos) < 2:
        raise UsageError(f"{path}: has {len(videos)} anchor(s); scores need at least 2 anchor videos of known quality")
    root = path.parent
    resolved = []
    for name in videos:
        candidate = root / name
        if not is_within(candidate, root):  # data must not choose files outside its folder
            raise VideoError(name, f"anchor path in {path} points outside {root}")
        resolved.append(candidate.absolute())
    return resolved, scores, block, record.get("settings", {})


def _stale_settings(made_with: dict, sampling: VideoSampling, temperature: float) -> dict[str, object]:
    """Settings the anchor block was computed under that differ from ``sampling``/``temperature``.

    ``made_with`` is the ``settings`` of an ``anchors.json``: ``temperature`` and ``video_sampling``
    (files written before the sampling contract hold ``num_frames`` and ``max_pixels`` instead)."""
    stale = {}
    if "temperature" in made_with and not math.isclose(float(made_with["temperature"]), temperature):
        stale["temperature"] = made_with["temperature"]
    recorded = made_with.get("video_sampling") or {k: made_with[k] for k in ("num_frames", "max_pixels") if k in made_with}
    current = sampling.to_dict()
    stale.update({k: v for k, v in recorded.items() if k in current and current[k] != v})
    return stale


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from ssvqa.console import progress

    return progress(total=total, unit="videos", desc="scoring")


__all__ = ["PairComparison", "QualityScorer", "SegmentScore", "VideoScore", "read_anchors"]


def decode_ahead_default(model) -> bool:
    """Whether scoring should decode the next chunk in a background thread (the automatic choice).

    Overlapping decoding with the forward passes pays when decoding does not take cores from the
    model: the model runs on an accelerator, or torch's CPU threads leave a core free. When torch
    already uses every core, a decoding thread stalls its multi-threaded kernels (each waits for
    its slowest thread) and costs more than it hides: on 2 cores, small model, decoding inline
    gave 0.94× the bare forward passes against 0.82–0.87× decoding ahead
    (``bench/bench_scoring.py``). Decoding is then done between chunks instead.
    """
    try:
        device = next(model.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        device = torch.device("cpu")
    if device.type != "cpu":
        return True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > torch.get_num_threads()


def _run_now(fn, *args) -> concurrent.futures.Future:
    """``fn(*args)`` run at once, as a finished future (decoding inline, same code path)."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    try:
        future.set_result(fn(*args))
    except Exception as err:  # re-raised by .result(), where a background decode's would be
        future.set_exception(err)
    return future
