"""The distortion simulator: render a source video at known, ordered quality levels.

A *distortion* (compression, spatial or temporal) has an ordered ladder of parameter values,
level 1 (mildest) to level n (strongest); level 0 is the pristine reference. A :class:`Variant`
is a sequence of ``(distortion, level)`` steps applied in order (one step for a plain ladder,
several to compose, none for the reference). :func:`render_variants` writes one video per variant.

How a source becomes variants (one ffmpeg process for all of them where possible)::

    source ─► decode ─► constant frame rate R ─► scale to fit max_pixels ─► yuv420p ─► split ─┬─► (nothing)         ─► near-lossless x264 ─► pristine.mp4
                                                                                              ├─► gblur sigma=1.5   ─► near-lossless x264 ─► gaussian_blur-2.mp4
                                                                                              └─► (nothing)         ─► x264 crf 36        ─► h264-2.mp4

* **The reference** is the source at a constant frame rate (its nominal rate R: ffprobe's
  ``r_frame_rate``, which for variable-frame-rate files is the rate that holds every frame),
  scaled to fit ``max_pixels`` (aspect kept, never upscaled, even sides), 8-bit yuv420p (10-bit
  sources are converted), encoded near-losslessly (:data:`NEAR_LOSSLESS`). Every distorted
  variant branches from the same decoded frames, so it has the reference's size and frame count,
  and comparing it with the reference is only about the distortion.
* **Spatial and temporal** variants are encoded near-losslessly too, so the encode adds almost
  nothing (SSIM of the encode alone is ~0.9997 on clean content; figures in :data:`NEAR_LOSSLESS`).
* **Compression** variants are the codec itself at a CRF of the ladder.
* **Temporal** variants keep the reference's frame rate, frame count and duration: dropped frames
  are replaced by repeating the last shown one (a 30 fps video with ``frame_rate-2`` shows 15
  distinct frames per second, each twice), so they stay frame-aligned with the reference.
* **Composition**: steps apply in order. Filters chain in one branch; a compression step that is
  not the last one is encoded to a hidden intermediate file that the next step decodes (a
  second ffmpeg process, since one process cannot decode its own output mid-graph).
* **Determinism**: the only randomness is the noise distortion, seeded from ``seed``; rendering
  the same source twice with the same seed gives identical bytes.

Severities are honest: for every type, the SSIM against the reference (:func:`ssim_against`)
never rises from one level to the next. ``tests/test_distortions.py`` checks it on four different
sources (moving test pattern, fractal zoom, coloured Life, smooth gradient); while choosing the
levels it also held on 27 corpus clips (3 seeds x 9 kinds, ~320x240). Known limits, from a stress
run on 160x120 clips: on a *very* smooth gradient (SSIM >= 0.99 at every level) h265, AV1 and
downscale can flip by <= 0.0006; temporal types tie at 1.0 on static content and saturation on
grey content, as they must. Codec settings were picked for monotone ladders: SVT-AV1 preset 12,
and VP9 realtime at cpu-used 8, flipped by up to 0.03 on binary or static content; preset 10 and
cpu-used 6 did not. Over-exposure (gain with clipping) flipped once highlights saturate, hence
under-exposure.

Example::

    from ssvqa.distortions import Variant, ladder, render_variants, ssim_against

    variants = [Variant(()), *ladder("gaussian_blur"), Variant((("h264", 2), ("noise", 1)))]
    paths = render_variants("clip.mp4", variants, "out/clip", max_pixels=640 * 360)
    # out/clip/pristine.mp4, gaussian_blur-1.mp4 ... gaussian_blur-4.mp4, h264-2+noise-1.mp4
    ssim_against(paths[0], paths[1])  # ~0.97

Length: over 400 lines for one concept (a distortion and how ffmpeg renders it). The catalogue,
each type's filter chain and encoder, and the staged rendering with SSIM all rely on the same per-
type details.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import signal
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ssvqa.errors import TransientError, VideoError

FAMILIES = ("compression", "spatial", "temporal")


@dataclass(frozen=True)
class Distortion:
    """One kind of degradation and its ladder of parameter values.

    Attributes:
        name: identifier used in variant names, e.g. ``"gaussian_blur"``.
        family: ``"compression"``, ``"spatial"`` or ``"temporal"``.
        levels: the parameter value of each level, mildest (level 1) to strongest (level n).
        description: one line for dataset cards; says what the parameter means.
    """

    name: str
    family: str
    levels: tuple
    description: str

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def value(self, level: int) -> float:
        """The parameter value of ``level`` (1-based)."""
        if not 1 <= level <= len(self.levels):
            raise ValueError(f"{self.name} has levels 1..{len(self.levels)}, not {level}")
        return self.levels[level - 1]


# Levels were chosen so that SSIM against the reference falls clearly from one level to the next
# on textured, fractal, cellular and smooth-gradient content (see the module doc and the tests).
CATALOGUE: dict[str, Distortion] = {
    d.name: d
    for d in (
        # -- compression: the codec at a constant rate factor (higher CRF = coarser quantisation)
        Distortion("h264", "compression", (32, 38, 44, 50), "H.264 (libx264, preset veryfast) at CRF 32/38/44/50"),
        Distortion("h265", "compression", (32, 38, 44, 50), "H.265/HEVC (libx265, preset superfast) at CRF 32/38/44/50; frames of at least 64x64 only"),
        Distortion("vp9", "compression", (40, 48, 56, 63), "VP9 (libvpx-vp9, realtime, cpu-used 6) at CRF 40/48/56/63"),
        Distortion("av1", "compression", (44, 52, 58, 63), "AV1 (libsvtav1, preset 10; libaom-av1, cpu-used 8, for frames under 64 px a side) at CRF 44/52/58/63"),
        # -- spatial: a filter, then a near-lossless encode
        Distortion("gaussian_blur", "spatial", (0.7, 1.5, 3.0, 6.0), "Gaussian blur, sigma 0.7/1.5/3/6 pixels"),
        Distortion("noise", "spatial", (6, 14, 28, 50), "additive temporal Gaussian noise, strength 6/14/28/50 (ffmpeg noise, 0-100)"),
        Distortion("downscale", "spatial", (2, 3, 5, 8), "downscale by 2/3/5/8 (area) then upscale back (bicubic): lost detail"),
        Distortion("exposure", "spatial", (0.7, 0.5, 0.35, 0.2), "under-exposure: RGB levels scaled to 70/50/35/20 % (darker, flatter)"),
        Distortion("overexposure", "spatial", (1.4, 2.0, 2.8, 4.0), "over-exposure: luma brightened by gamma 1.4/2/2.8/4 (lifted shadows, washed-out highlights)"),
        Distortion("contrast", "spatial", (0.8, 0.6, 0.4, 0.2), "contrast reduced to 80/60/40/20 % around mid-grey (washed out)"),
        Distortion("saturation", "spatial", (0.6, 0.35, 0.15, 0.0), "colour saturation reduced to 60/35/15/0 %"),
        Distortion("sharpen", "spatial", (1.0, 2.0, 3.5, 5.0), "over-sharpening (7x7 unsharp mask, amount 1/2/3.5/5): halos and ringing"),
        # -- temporal: frames dropped and the last shown one repeated; duration and frame count kept
        Distortion("frame_rate", "temporal", (2, 3, 4, 6), "frame rate divided by 2/3/4/6 (frames repeated, duration kept)"),
        Distortion("freeze", "temporal", (0.2, 0.4, 0.6, 0.8), "stutter: the picture freezes for 20/40/60/80 % of every second, then jumps ahead"),
    )
}

# Near-lossless encode for the reference and for spatial/temporal variants. ultrafast at CRF 12 was
# measured on 3 s of 720p: SSIM of the encode alone 0.9997 (testsrc2), 0.993 (strong noise), at
# ~1.1 s; preset veryfast gave *lower* SSIM (psy tuning) at twice the time and half the size.
NEAR_LOSSLESS = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p")

# Frozen video for "freeze": the pattern repeats every FREEZE_PERIOD seconds.
FREEZE_PERIOD = 1.0

# Smallest frames (pixels a side) the encoders handle. SVT-AV1 refuses smaller ones (48x48 fails,
# 64x64 works), so AV1 falls back to libaom-av1 there (:func:`_encoder`). x265 3.5 (Debian) refuses
# sides under 16 px and aborts (heap corruption, "free(): invalid next size") on most frames 34-48
# px wide, whatever the height; there is no other HEVC encoder, so h265 is not drawn for frames
# under 64 px a side (:func:`unsupported`).
SVT_AV1_MIN_SIDE = 64
MIN_SIDE = {"h265": ("libx265", 64)}  # distortion -> (its encoder, smallest side)

# One ffmpeg process holds an encoder per output: measured ~55 MB per output at 720p (x264,
# VP9, x265; SVT-AV1 ~160 MB). Outputs are grouped so one process encodes at most this many
# output pixels per frame (16 outputs at 720p, 7 at 1080p, 1 at 4K); each group decodes once.
MAX_OUTPUT_PIXELS_PER_PROCESS = 16 * 1280 * 720


@dataclass(frozen=True)
class Variant:
    """A recipe: ``steps`` of ``(distortion name, level >= 1)`` applied in order.

    ``Variant(())`` is the pristine reference; ``Variant((("gaussian_blur", 3),))`` one ladder
    level; ``Variant((("h264", 2), ("noise", 1)))`` a composition (encode, then add noise).

    >>> Variant((("h264", 2), ("noise", 1))).name
    'h264-2+noise-1'
    >>> Variant.parse("gaussian_blur-3").severity("gaussian_blur")
    3
    >>> Variant(()).name
    'pristine'
    """

    steps: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        steps = tuple((str(name), int(level)) for name, level in self.steps)
        for name, level in steps:
            if name not in CATALOGUE:
                raise ValueError(f"unknown distortion {name!r}; known: {', '.join(CATALOGUE)}")
            CATALOGUE[name].value(level)  # raises on an out-of-range level
        object.__setattr__(self, "steps", steps)

    @property
    def name(self) -> str:
        """Filesystem-safe name: ``pristine`` or ``name-level`` joined by ``+``."""
        return "+".join(f"{name}-{level}" for name, level in self.steps) or "pristine"

    @property
    def is_pristine(self) -> bool:
        return not self.steps

    @property
    def families(self) -> tuple[str, ...]:
        """The families of the steps, in order."""
        return tuple(CATALOGUE[name].family for name, _ in self.steps)

    def severity(self, distortion: str) -> int:
        """Level of ``distortion`` in this variant (0 if absent; the highest if repeated)."""
        return max((level for name, level in self.steps if name == distortion), default=0)

    @classmethod
    def parse(cls, name: str) -> "Variant":
        """Inverse of :attr:`name`: ``"h264-2+noise-1"`` -> the variant."""
        if name == "pristine":
            return cls(())
        steps = []
        for part in name.split("+"):
            distortion, _, level = part.rpartition("-")
            if not distortion or not level.isdigit():
                raise ValueError(f"not a variant name: {name!r}")
            steps.append((distortion, int(level)))
        return cls(tuple(steps))


def unsupported(name: str, size: tuple[int, int]) -> str | None:
    """Why distortion ``name`` cannot be rendered on frames of ``size`` (width, height), or None.

    >>> unsupported("h265", (48, 48))
    'h265 (libx265) needs frames of at least 64x64 pixels; this source renders at 48x48'
    >>> unsupported("av1", (48, 48)) is None  # libaom-av1 encodes small frames
    True
    """
    encoder, side = MIN_SIDE.get(name, (None, 0))
    if min(size) >= side:
        return None
    return f"{name} ({encoder}) needs frames of at least {side}x{side} pixels; this source renders at {size[0]}x{size[1]}"


def ladder(name: str) -> list[Variant]:
    """Levels 1..n of one distortion, mildest first.

    >>> [v.name for v in ladder("freeze")]
    ['freeze-1', 'freeze-2', 'freeze-3', 'freeze-4']
    """
    if name not in CATALOGUE:
        raise ValueError(f"unknown distortion {name!r}; known: {', '.join(CATALOGUE)}")
    return [Variant(((name, level),)) for level in range(1, CATALOGUE[name].num_levels + 1)]


# ---------------------------------------------------------------------------------------------
# Probing the source


@dataclass(frozen=True)
class SourceInfo:
    """What rendering needs to know about a source: display size and nominal frame rate."""

    width: int
    height: int
    rate: Fraction


def probe_source(path: str | Path) -> SourceInfo:
    """Display size (rotation and pixel aspect applied) and frame rate, with ffprobe.

    Raises:
        VideoError: missing, empty, unreadable, or no video stream.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "file does not exist")
    if not path.is_file():
        raise VideoError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(path, "0-byte file")
    cmd = [
        "ffprobe", "-v", "error", "-select_streams", "v:0",
        "-show_entries", "stream=width,height,r_frame_rate,avg_frame_rate,sample_aspect_ratio:stream_tags=rotate"
        ":stream_side_data=rotation",
        "-of", "json", str(path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        _raise_if_transient(result, path, "ffprobe")
        raise VideoError(path, f"not a readable video: {_last_line(result.stderr)}")
    streams = json.loads(result.stdout or "{}").get("streams") or []
    if not streams or not streams[0].get("width"):
        raise VideoError(path, "no video stream (audio only or not a video)")
    stream = streams[0]
    width, height = int(stream["width"]), int(stream["height"])
    sar = _fraction(stream.get("sample_aspect_ratio", "1:1").replace(":", "/"))
    if sar and sar != 1:
        width = max(2, round(width * sar))
    rotation = stream.get("tags", {}).get("rotate") or next(
        (s.get("rotation") for s in stream.get("side_data_list", []) if "rotation" in s), 0
    )
    if round(float(rotation)) % 180 == 90:
        width, height = height, width
    return SourceInfo(width, height, _nominal_rate(stream))


def _nominal_rate(stream: dict) -> Fraction:
    """r_frame_rate (the rate that represents every frame) when plausible, else the average."""
    for key in ("r_frame_rate", "avg_frame_rate"):
        rate = _fraction(stream.get(key, "0/0"))
        if rate and 0 < rate <= 120:
            return rate
    return Fraction(25)


def _fraction(text: str) -> Fraction | None:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def reference_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """(width, height) of the reference: fits ``max_pixels``, aspect kept, never upscaled, even.

    >>> reference_size(1280, 720, 640 * 360)
    (640, 360)
    >>> reference_size(405, 720, None)
    (404, 720)
    """
    scale = 1.0 if max_pixels is None else min(1.0, math.sqrt(max_pixels / (width * height)))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


# ---------------------------------------------------------------------------------------------
# Filters and encoders per distortion


def filter_chain(name: str, value, size: tuple[int, int], rate: Fraction, seed: int) -> str:
    """The ffmpeg filter chain for one spatial or temporal step of distortion ``name`` at ``value``
    (also what :mod:`ssvqa.real_ladders` renders its evaluation ladders with)."""
    width, height = size
    if name == "gaussian_blur":
        return f"gblur=sigma={value}"
    if name == "noise":
        # allf=t: new noise every frame (sensor-like); the seed makes it reproducible.
        return f"noise=alls={value}:allf=t:all_seed={seed % 2**31}"
    if name == "downscale":
        small_w, small_h = max(2, round(width / value)), max(2, round(height / value))
        return f"scale={small_w}:{small_h}:flags=area,scale={width}:{height}:flags=bicubic"
    if name == "exposure":
        # White maps to `value`: every RGB level is scaled down. (Over-exposure was tried first:
        # once highlights clip to white, stronger levels stop changing and SSIM ties or flips.)
        return f"colorlevels=romax={value}:gomax={value}:bomax={value}"
    if name == "overexposure":
        # A gamma lift, not a gain: a gain clips highlights to white, and once they saturate a
        # stronger level stops changing the picture (SSIM ties or flips; see the module doc).
        return f"eq=gamma={value}"
    if name == "contrast":
        # Squeeze every RGB channel towards mid-grey: output range [0.5 - c/2, 0.5 + c/2].
        low, high = 0.5 - value / 2, 0.5 + value / 2
        return f"colorlevels=romin={low:.4f}:gomin={low:.4f}:bomin={low:.4f}:romax={high:.4f}:gomax={high:.4f}:bomax={high:.4f}"
    if name == "saturation":
        return f"eq=saturation={value}"
    if name == "sharpen":
        return f"unsharp=lx=7:ly=7:la={value}:cx=7:cy=7:ca=0"
    if name == "frame_rate":
        # Keep every value-th frame; fps=R then repeats each kept frame to fill the gaps. As the
        # first filter of a branch it sees the source's own frames (see _branch_chain).
        return f"select='not(mod(n,{value}))',fps={_rate_text(rate)}"
    if name == "freeze":
        # Keep the frames shown in the first part of every period (by presentation time, so a
        # variable-frame-rate source freezes for the same time), then repeat the last one kept.
        # On constant-rate frames t*R+0.5 is n+0.5: the frame numbers kept are those below
        # period - frozen within each period.
        period = max(2, round(float(rate) * FREEZE_PERIOD))
        frozen = min(period - 1, max(1, round(value * period)))
        return f"select='lt(mod(t*{float(rate)!r}+0.5,{period}),{period - frozen})',fps={_rate_text(rate)}"
    raise ValueError(f"{name} is not a spatial or temporal distortion")


def _encoder(name: str | None, value, threads: int, size: tuple[int, int]) -> list[str]:
    """Encoder arguments: the codec of a compression step, or the near-lossless encode (None).

    ``size`` is the (width, height) of the frames: SVT-AV1 refuses frames under
    :data:`SVT_AV1_MIN_SIDE` pixels a side, so those are encoded with libaom-av1 (same CRF
    scale, 0-63) instead.
    """
    threads = max(1, int(threads))
    if name is None:
        return [*NEAR_LOSSLESS, "-threads", str(threads)]
    if name == "h264":
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(value), "-pix_fmt", "yuv420p", "-threads", str(threads)]
    if name == "h265":
        return [
            "-c:v", "libx265", "-preset", "superfast", "-crf", str(value), "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
            "-x265-params", f"log-level=none:pools={threads}:frame-threads={threads}",
        ]
    if name == "vp9":
        return [
            "-c:v", "libvpx-vp9", "-b:v", "0", "-crf", str(value), "-deadline", "realtime", "-cpu-used", "6",
            "-row-mt", "1", "-pix_fmt", "yuv420p", "-threads", str(threads),
        ]
    if name == "av1" and min(size) < SVT_AV1_MIN_SIDE:
        return [
            "-c:v", "libaom-av1", "-cpu-used", "8", "-crf", str(value), "-b:v", "0", "-row-mt", "1",
            "-pix_fmt", "yuv420p", "-threads", str(threads),
        ]
    if name == "av1":
        return ["-c:v", "libsvtav1", "-preset", "10", "-crf", str(value), "-pix_fmt", "yuv420p", "-svtav1-params", f"lp={threads}"]
    raise ValueError(f"{name} is not a compression distortion")


def _rate_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


# Every output: video only, no metadata carried over from the source, frames passed as filtered.
_OUTPUT_COMMON = ["-an", "-sn", "-dn", "-map_metadata", "-1", "-fps_mode", "passthrough", "-movflags", "+faststart"]


@dataclass(frozen=True)
class _Stage:
    """Part of a variant done by one encode: filters on the decoded input, then an encoder."""

    filters: tuple[str, ...]
    encoder: tuple[str, ...]


def _stages(variant: Variant, size, rate, seed: int, threads: int) -> list[_Stage]:
    """Split a variant into encodes: every compression step ends one."""
    stages, filters = [], []
    for name, level in variant.steps:
        distortion = CATALOGUE[name]
        if distortion.family == "compression":
            stages.append(_Stage(tuple(filters), tuple(_encoder(name, distortion.value(level), threads, size))))
            filters = []
        else:
            filters.append(filter_chain(name, distortion.value(level), size, rate, seed))
    if filters or not stages:
        stages.append(_Stage(tuple(filters), tuple(_encoder(None, None, threads, size))))
    return stages


def _ffmpeg_env() -> dict:
    # SVT-AV1 prints its configuration to stderr unless told otherwise (1 = errors only).
    return {**os.environ, "SVT_LOG": "1"}


def _run_ffmpeg(cmd: list[str], source: Path) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=_ffmpeg_env())
    if result.returncode != 0:
        _raise_if_transient(result, source, "ffmpeg")
        raise VideoError(source, f"ffmpeg failed: {_last_line(result.stderr)}")
    if "Output file is empty" in result.stderr:
        raise VideoError(source, "no frames could be decoded")


# ffmpeg's words for failures of the machine rather than of the video (strerror of ENOSPC,
# EDQUOT, EACCES, EROFS, EIO, ENOMEM).
_TRANSIENT_MESSAGES = (
    "No space left on device", "Disk quota exceeded", "Permission denied", "Read-only file system",
    "Input/output error", "Cannot allocate memory",
)


def _raise_if_transient(result: subprocess.CompletedProcess, path: Path, program: str) -> None:
    """Raise TransientError when a failed ffmpeg/ffprobe says nothing about the video: it was
    killed by a signal (the OOM killer sends SIGKILL), it was interrupted (ffmpeg exits with 255
    after a SIGINT or SIGTERM reached it but not us), or the disk or memory failed it."""
    code = result.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        raise TransientError(path, f"{program} was killed by {name} (out of memory, or stopped by someone)")
    if code == 255:
        raise TransientError(path, f"{program} was interrupted (exit status 255: it received a signal)")
    for line in result.stderr.splitlines():
        if any(message in line for message in _TRANSIENT_MESSAGES):
            raise TransientError(path, f"{program} failed: {line.strip()}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("Svt[")]
    return lines[-1] if lines else "unknown error"


def render_variants(
    source: str | Path,
    variants: Sequence[Variant],
    out_dir: str | Path,
    *,
    seed: int = 0,
    max_pixels: int | None = None,
    threads: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Render ``variants`` of ``source`` into ``out_dir`` as ``<variant.name>.mp4``.

    The source is decoded once for all variants (``split`` filter, one output per variant; very
    many large outputs are grouped, see :data:`MAX_OUTPUT_PIXELS_PER_PROCESS`); only steps that
    follow a compression step need a second ffmpeg process. See the module doc for
    what the reference is and how each family is rendered.

    Args:
        source: the video to degrade.
        variants: what to render; include ``Variant(())`` to get the reference.
        out_dir: created if missing.
        seed: seeds the noise distortion (same seed, same bytes).
        max_pixels: the reference is scaled down to fit this many pixels (aspect kept).
        threads: threads for the decoder, filters and each encoder.
        overwrite: re-render variants whose file already exists. By default an existing file is
            kept (files only get their final name once complete, so this resumes safely).

    Returns:
        The path of each variant, in the order given.

    Raises:
        VideoError: the source cannot be read or ffmpeg fails on it; names the file and reason.
        TransientError: ffmpeg was killed or interrupted, or the disk is full (a retry may work).
            No file with a final name is left behind for a variant that failed.
    """
    source, out_dir = Path(source), Path(out_dir)
    variants = [v if isinstance(v, Variant) else Variant(tuple(v)) for v in variants]
    paths = [out_dir / f"{v.name}.mp4" for v in variants]
    todo = {v.name: v for v, p in zip(variants, paths) if overwrite or not p.exists()}
    if not todo:
        return paths
    info = probe_source(source)
    size = reference_size(info.width, info.height, max_pixels)
    for variant in todo.values():
        for name, _ in variant.steps:
            if (reason := unsupported(name, size)) is not None:
                raise VideoError(source, reason)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = {name: _stages(v, size, info.rate, seed, threads) for name, v in todo.items()}
    token = secrets.token_hex(4)
    temp = {name: [out_dir / f".{name}.{token}.part{i}.mp4" for i in range(len(st))] for name, st in plans.items()}
    per_process = max(1, MAX_OUTPUT_PIXELS_PER_PROCESS // (size[0] * size[1]))
    names = list(plans)
    try:
        for start in range(0, len(names), per_process):
            group = {name: plans[name] for name in names[start : start + per_process]}
            _render_first_stages(source, info, size, group, temp, threads)
            for name, stages in group.items():
                for i in range(1, len(stages)):
                    _render_stage(temp[name][i - 1], stages[i], temp[name][i], threads, source)
                # Only a complete file gets its final name (atomic on one filesystem).
                os.replace(temp[name][-1], out_dir / f"{name}.mp4")
    finally:
        for files in temp.values():
            for file in files:
                file.unlink(missing_ok=True)
    return paths


def _prepare_chain(info: SourceInfo, size: tuple[int, int]) -> str:
    """Source frames -> fitted size, 8-bit 4:2:0, square pixels; the constant rate comes per
    branch (:func:`_branch_chain`)."""
    width, height = size
    return f"setpts=PTS-STARTPTS,scale={width}:{height}:flags=bicubic,format=yuv420p,setsar=1"


def _branch_chain(filters: Sequence[str], rate: Fraction) -> str:
    """The filters of a first stage, on the source's own frames.

    Frames become constant-rate (``fps=R``) first, except when the first filter is temporal:
    then it drops *source* frames and its own ``fps=R`` fills the gaps. On a variable-frame-rate
    source, ``fps=R`` repeats frames where the source is slower than R; dropping every k-th of
    those repeats would cost nothing whenever k matches their pattern, and a milder frame-rate
    level could then look worse than a stronger one. On a constant-rate source both orders give
    the same frames.
    """
    if filters and filters[0].startswith("select="):
        return ",".join(filters)
    return ",".join([f"fps={_rate_text(rate)}", *filters])


def _render_first_stages(source: Path, info: SourceInfo, size, plans: dict, temp: dict, threads: int) -> None:
    """One ffmpeg: decode once, split, one filtered branch and encoder per variant."""
    names = list(plans)
    graph = [f"[0:v]{_prepare_chain(info, size)},split={len(names)}" + "".join(f"[s{i}]" for i in range(len(names)))]
    outputs: list[str] = []
    for i, name in enumerate(names):
        stage = plans[name][0]
        graph.append(f"[s{i}]{_branch_chain(stage.filters, info.rate)}[o{i}]")
        outputs += ["-map", f"[o{i}]", *stage.encoder, *_OUTPUT_COMMON, str(temp[name][0])]
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-y",
        "-threads", str(threads), "-i", str(source),
        "-filter_complex_threads", str(threads), "-filter_complex", ";".join(graph),
        *outputs,
    ]
    _run_ffmpeg(cmd, source)


def _render_stage(previous: Path, stage: _Stage, output: Path, threads: int, source: Path) -> None:
    """A later stage of a composed variant: decode the previous stage's file, filter, encode."""
    chain = ",".join(stage.filters) or "null"
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-y",
        "-threads", str(threads), "-i", str(previous),
        "-filter_threads", str(threads), "-vf", chain, *stage.encoder, *_OUTPUT_COMMON, str(output),
    ]
    _run_ffmpeg(cmd, source)


def bare_commands(
    source: str | Path, variants: Sequence[Variant], out_dir: str | Path, *, seed: int = 0,
    max_pixels: int | None = None, threads: int = 1,
) -> list[list[str]]:
    """One self-contained ffmpeg command per single-stage variant (each decodes the source itself).

    The same filters and encoders as :func:`render_variants`; used by ``bench/`` as the baseline
    that renders variants one by one.
    """
    source, out_dir = Path(source), Path(out_dir)
    info = probe_source(source)
    size = reference_size(info.width, info.height, max_pixels)
    commands = []
    for variant in variants:
        stages = _stages(variant, size, info.rate, seed, threads)
        if len(stages) != 1:
            raise ValueError(f"{variant.name}: only single-encode variants have a bare command")
        chain = ",".join([_prepare_chain(info, size), _branch_chain(stages[0].filters, info.rate)])
        commands.append([
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-y",
            "-threads", str(threads), "-i", str(source), "-filter_threads", str(threads), "-vf", chain,
            *stages[0].encoder, *_OUTPUT_COMMON, str(out_dir / f"{variant.name}.mp4"),
        ])
    return commands


# ---------------------------------------------------------------------------------------------
# Measuring


_SSIM_LINE = re.compile(r"\[ssim@d(\d+) @ [^\]]*\] SSIM .*All:([0-9.]+|inf|nan)")


def ssim_many(reference: str | Path, distorted: Sequence[str | Path], *, threads: int = 1) -> list[float]:
    """Mean SSIM (ffmpeg ``ssim``, Y/U/V weighted "All") of each distorted video vs ``reference``.

    One ffmpeg process decodes the reference once. A distorted video of another size is scaled
    to the reference's size first.

    Raises:
        VideoError: a video cannot be read (names it).
    """
    reference = Path(reference)
    info = probe_source(reference)
    for path in distorted:
        probe_source(path)
    if not distorted:
        return []
    n = len(distorted)
    graph = [f"[0:v]format=yuv420p,setsar=1,split={n}" + "".join(f"[r{i}]" for i in range(n))]
    inputs, outputs = ["-threads", str(threads), "-i", str(reference)], []
    for i, path in enumerate(distorted):
        inputs += ["-threads", str(threads), "-i", str(path)]
        graph.append(f"[{i + 1}:v]scale={info.width}:{info.height},format=yuv420p,setsar=1[d{i}]")
        graph.append(f"[d{i}][r{i}]ssim@d{i}[o{i}]")
        outputs += ["-map", f"[o{i}]", "-f", "null", "-"]
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        *inputs, "-filter_complex_threads", str(threads), "-filter_complex", ";".join(graph), *outputs,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        _raise_if_transient(result, reference, "ffmpeg ssim")
        raise VideoError(reference, f"ffmpeg ssim failed: {_last_line(result.stderr)}")
    scores: dict[int, float] = {}
    for match in _SSIM_LINE.finditer(result.stderr):
        scores[int(match.group(1))] = 1.0 if match.group(2) == "inf" else float(match.group(2))
    missing = [str(distorted[i]) for i in range(n) if i not in scores]
    if missing:
        raise VideoError(missing[0], "no SSIM computed (no frames decoded?)")
    return [scores[i] for i in range(n)]


def ssim_against(reference: str | Path, distorted: str | Path, *, threads: int = 1) -> float:
    """Mean SSIM of ``distorted`` against ``reference`` (1.0 = identical)."""
    return ssim_many(reference, [distorted], threads=threads)[0]
