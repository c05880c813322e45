"""Video I/O: probe metadata, decode sampled frames (torchcodec), resize for model input.

Every failure to read a video raises :class:`ssvqa.errors.VideoError`, which names the file and
the reason (0-byte file, not a video, audio only, truncated or corrupt), or, when the file cannot
be opened for a reason that may not last (permission, I/O error), :class:`~ssvqa.errors.TransientError`.

Frame sampling. ``decode_frames(path, num_frames=8)`` returns exactly ``num_frames`` frames
sampled uniformly over the whole video. When the video has fewer frames than asked, frames are
*repeated* (uniform indices over the available frames, rounded), so a 1-frame video gives 8 copies
of its frame: models that expect a fixed frame count keep working, and the clip's temporal
content is still represented faithfully. ``decode_frames(path, fps=1.0)`` samples one frame per
second of presentation time instead (at least one frame; capped by ``max_frames``).
``decode_segments(path, 2.0)`` gives both the whole-video frames and ``num_frames`` frames of
each 2-second segment from one decoder, for quality over time.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ssvqa.errors import TRANSIENT_ERRNOS, TransientError, VideoError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".y4m", ".flv")


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns about a video's first video stream."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    codec: str
    pixel_format: str | None
    bit_rate: float | None

    @property
    def portrait(self) -> bool:
        return self.height > self.width


VideoSource = str | Path | bytes
"""A video file, or a video's encoded bytes (as embedded in a pair dataset's Parquet rows)."""


def open_decoder(source: VideoSource, num_threads: int = 1, name: str | None = None):
    """Open a torchcodec decoder, turning every failure into a VideoError with a reason.

    ``name`` labels in-memory ``bytes`` in error messages (e.g. the row's original file name).
    """
    from torchcodec.decoders import VideoDecoder

    if isinstance(source, (bytes, bytearray, memoryview)):
        path = name or "<video bytes>"
        if len(source) == 0:
            raise VideoError(path, "0-byte file")
        target = bytes(source)
    else:
        path = Path(source)
        if (reason := unusable_reason(path)) is not None:
            raise VideoError(path, reason)
        if path.stat().st_size == 0:
            raise VideoError(path, "0-byte file")
        try:  # a permission or I/O error says nothing about the video: the decoder would call it corrupt
            os.close(os.open(path, os.O_RDONLY))
        except OSError as err:
            kind = TransientError if err.errno in TRANSIENT_ERRNOS else VideoError
            raise kind(path, f"cannot be read: {err.strerror or err}") from err
        target = str(path)
    try:
        # "exact" scans the file once: frame counts and timestamps come from the content, not
        # the header, which is what makes truncated and variable-frame-rate files behave.
        decoder = VideoDecoder(target, seek_mode="exact", num_ffmpeg_threads=num_threads)
    except ValueError as err:  # torchcodec: "best video stream is unknown"
        raise VideoError(path, "no video stream (audio only or not a video)") from err
    except RuntimeError as err:
        raise VideoError(path, f"not a readable video (unknown format, truncated or corrupt): {short_reason(err)}") from err
    if not decoder.metadata.num_frames:
        raise VideoError(path, "video stream has no decodable frames")
    if (reason := truncation(decoder.metadata)) is not None:
        raise VideoError(path, reason)
    return decoder


def truncation(meta) -> str | None:
    """Why a stream looks cut short, or None: it decodes for less time than its header declares.

    ``meta`` is a torchcodec ``VideoStreamMetadata`` of an ``"exact"`` scan. A file cut at the end
    whose index survived (MP4/MOV with the ``moov`` atom first) otherwise decodes without any
    error, just shorter: every tool must refuse it the same way, so this check sits in
    :func:`open_decoder`. Durations are compared, not frame counts: a stream-copied cut keeps the frames
    before its edit list in the header's count but not in its duration. One frame or 2 % of the
    declared duration may be missing (rounding). Matroska/WebM declare no per-stream duration,
    so a cut one is not detected here.
    """
    declared = meta.duration_seconds_from_header
    begin, end = meta.begin_stream_seconds_from_content, meta.end_stream_seconds_from_content
    if not declared or begin is None or end is None:
        return None
    frame = 1.0 / meta.average_fps_from_header if meta.average_fps_from_header else 0.0
    if declared - (end - begin) <= max(frame, 0.02 * declared):
        return None
    frames = f", {meta.num_frames_from_content} of {meta.num_frames_from_header} frames" if meta.num_frames_from_header else ""
    return f"truncated: only {end - begin:.2f} of the {declared:.2f} s its header declares can be decoded{frames}"


def short_reason(err: BaseException) -> str:
    """torchcodec messages start with a C++ source location; keep the human part."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.rsplit(", ", 1)[-1] if "SingleStreamDecoder" in text else text


def probe(path: str | Path) -> VideoInfo:
    """Read a video's metadata (decodes nothing but the index). Raises VideoError."""
    meta = open_decoder(path).metadata
    fps = float(meta.average_fps or 0.0)
    num_frames = int(meta.num_frames)
    duration = float(meta.duration_seconds or (num_frames / fps if fps else 0.0))
    return VideoInfo(
        path=str(path),
        width=int(meta.width),
        height=int(meta.height),
        fps=fps,
        num_frames=num_frames,
        duration=duration,
        codec=str(meta.codec),
        pixel_format=getattr(meta, "pixel_format", None),
        bit_rate=float(meta.bit_rate) if meta.bit_rate else None,
    )


def uniform_indices(available: int, num_frames: int) -> list[int]:
    """``num_frames`` indices spread uniformly over ``available`` frames (centres of equal segments).

    Repeats indices when ``available < num_frames``.

    >>> uniform_indices(10, 4)
    [1, 3, 6, 8]
    >>> uniform_indices(1, 3)
    [0, 0, 0]
    """
    if available < 1 or num_frames < 1:
        raise ValueError("need at least one frame available and one asked")
    step = available / num_frames
    return [min(available - 1, int(step * (i + 0.5))) for i in range(num_frames)]


def fps_timestamps(duration: float, fps: float, max_frames: int | None = None) -> list[float]:
    """Presentation times sampling a clip of ``duration`` seconds at ``fps`` frames per second.

    >>> fps_timestamps(2.0, 2.0)
    [0.25, 0.75, 1.25, 1.75]
    """
    count = max(1, math.floor(duration * fps + 1e-6))
    if max_frames:
        count = min(count, max_frames)
    step = duration / count
    return [step * (i + 0.5) for i in range(count)]


def decode_frames(
    path: VideoSource,
    num_frames: int | None = 8,
    fps: float | None = None,
    max_frames: int | None = None,
    num_threads: int = 1,
    max_pixels: int | None = None,
    multiple: int = 1,
    name: str | None = None,
) -> torch.Tensor:
    """Decode sampled frames as a ``uint8`` tensor of shape ``(T, 3, H, W)`` (RGB).

    Args:
        path: the video file.
        num_frames: frames sampled uniformly over the video (repeats when the video is shorter).
        fps: sample at this rate instead of a fixed count (``num_frames`` is then ignored).
        max_frames: cap on the frame count when sampling by ``fps``.
        num_threads: ffmpeg decoding threads (2 is ~1.7x faster than 1 on 720p).
        max_pixels: when given, frames are resized by :func:`resize_frames` to fit this budget.
        multiple: with ``max_pixels``, round height and width to a multiple of this (28 for Qwen-VL).
        name: how errors name the video when ``path`` is in-memory bytes.

    Raises:
        VideoError: the file cannot be decoded; the message names the file and the reason.
    """
    decoder = open_decoder(path, num_threads, name)
    if isinstance(path, (bytes, bytearray, memoryview)):
        path = name or "<video bytes>"
    try:
        if fps is not None:
            start, end = _stream_bounds(decoder.metadata)
            frames = _frames_played_at(decoder, [start + t for t in fps_timestamps(end - start, fps, max_frames)], end)
        else:
            frames = _uniform_frames(decoder, num_frames)
    except (RuntimeError, IndexError) as err:
        raise VideoError(path, f"decoding failed (truncated or corrupt stream): {short_reason(err)}") from err
    if max_pixels is not None:
        frames = resize_frames(frames, max_pixels, multiple)
    return frames


def segment_bounds(start: float, end: float, seconds: float) -> list[tuple[float, float]]:
    """Consecutive ``seconds``-long segments covering ``[start, end)``; a tail shorter than half a
    segment joins the previous one (a whole video shorter than that is one segment).

    >>> segment_bounds(0.0, 5.0, 2.0)
    [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    >>> segment_bounds(0.0, 4.5, 2.0)
    [(0.0, 2.0), (2.0, 4.5)]
    """
    if seconds <= 0:
        raise ValueError(f"segment length must be positive, got {seconds}")
    count = max(1, math.floor((end - start) / seconds + 0.5))
    return [(start + i * seconds, end if i == count - 1 else start + (i + 1) * seconds) for i in range(count)]


def decode_segments(
    path: str | Path,
    seconds: float,
    num_frames: int = 8,
    *,
    num_threads: int = 1,
    max_pixels: int | None = None,
    multiple: int = 1,
) -> tuple[torch.Tensor, list[tuple[float, float, torch.Tensor]]]:
    """One decoder pass for quality over time: the whole video's ``num_frames`` frames (as
    :func:`decode_frames`) and, for each segment of :func:`segment_bounds`, ``num_frames`` frames
    at the centres of equal parts of it: ``(frames, [(start, end, segment_frames), ...])``.

    Raises:
        VideoError: the file cannot be decoded; the message names the file and the reason.
    """
    decoder = open_decoder(path, num_threads)
    start, end = _stream_bounds(decoder.metadata)
    bounds = segment_bounds(start, end, seconds)
    times = [a + (b - a) * (i + 0.5) / num_frames for a, b in bounds for i in range(num_frames)]
    try:
        whole = _uniform_frames(decoder, num_frames)
        frames = _frames_played_at(decoder, times, end)
    except (RuntimeError, IndexError) as err:
        raise VideoError(path, f"decoding failed (truncated or corrupt stream): {short_reason(err)}") from err
    if max_pixels is not None:
        whole, frames = resize_frames(whole, max_pixels, multiple), resize_frames(frames, max_pixels, multiple)
    parts = frames.split(num_frames)
    return whole, [(a, b, part) for (a, b), part in zip(bounds, parts)]


def _stream_bounds(meta) -> tuple[float, float]:
    start = float(meta.begin_stream_seconds or 0.0)
    end = float(meta.end_stream_seconds or start + meta.num_frames / max(meta.average_fps or 1.0, 1e-6))
    return start, end


def _frames_played_at(decoder, times: list[float], end: float) -> torch.Tensor:
    # Clamp inside the stream: the last timestamp must map to an existing frame.
    return decoder.get_frames_played_at([min(t, end - 1e-6) for t in times]).data


def _uniform_frames(decoder, num_frames: int | None) -> torch.Tensor:
    if not num_frames or num_frames < 1:
        raise ValueError("num_frames must be >= 1 when fps is not given")
    indices = uniform_indices(int(decoder.metadata.num_frames), num_frames)
    unique = sorted(set(indices))
    batch = decoder.get_frames_at(unique).data
    position = {index: i for i, index in enumerate(unique)}
    return batch[[position[i] for i in indices]]


def fit_size(height: int, width: int, max_pixels: int, multiple: int = 1) -> tuple[int, int]:
    """The (height, width) a frame is resized to: aspect kept, at most ``max_pixels`` pixels,
    never upscaled, both sides rounded to ``multiple`` (at least one ``multiple``).

    >>> fit_size(720, 1280, 112 * 112, 28)
    (84, 140)
    >>> fit_size(1280, 720, 112 * 112, 28)
    (140, 84)
    """
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    h = max(multiple, int(height * scale / multiple) * multiple)
    w = max(multiple, int(width * scale / multiple) * multiple)
    return h, w


def resize_frames(frames: torch.Tensor, max_pixels: int, multiple: int = 1) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` uint8 frames with :func:`fit_size` (antialiased bilinear)."""
    height, width = frames.shape[-2:]
    size = fit_size(int(height), int(width), max_pixels, multiple)
    if size == (height, width):
        return frames
    resized = torch.nn.functional.interpolate(frames.float(), size=size, mode="bilinear", antialias=True)
    return resized.round().clamp(0, 255).to(torch.uint8)


def content_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex): identifies a video by content, whatever its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def list_videos(folder: str | Path) -> list[Path]:
    """Entries under ``folder`` named like videos (recursive, by extension), sorted for determinism.

    Zero-byte and odd files are *included*, and so are entries that are not files at all (a
    folder named ``x.mp4``, a symlink loop, a broken symlink): callers report each unusable one
    with its reason (:func:`unusable_reason`) instead of dropping it silently.
    """
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and not _hidden(p, folder))


def unusable_reason(path: str | Path) -> str | None:
    """Why ``path`` cannot be opened as a video file, or None when it is a regular file.

    >>> unusable_reason("/nonexistent/clip.mp4")
    'file does not exist'
    """
    path = Path(path)
    try:
        path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symlink loop (the link points back to itself)"
        if path.is_symlink():
            return f"broken symlink (its target {os.readlink(path)} does not exist)"
        if err.errno == errno.ENOENT:
            return "file does not exist"
        return f"cannot be read: {err.strerror or err}"
    if path.is_dir():
        return "is a directory, not a video file"
    if not path.is_file():
        return "not a regular file"
    return None


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def is_within(path: str | Path, root: str | Path) -> bool:
    """True when ``path`` resolves inside ``root``: dataset rows must not escape their root."""
    return os.path.commonpath([os.path.realpath(path), os.path.realpath(root)]) == os.path.realpath(root)
