"""A classical no-reference quality teacher: a few cheap measures from signal processing.

It is a *weak* teacher (content changes its measures as much as distortions do), but a real one:
on versions of one source with known distortions it orders them well above chance, it needs no
model, and it runs on a CPU in a few tens of milliseconds per small video (8 runs of 3 frames
decoded and measured).

Measures (``ClassicalAnnotator.features``), all on luma ``Y`` (0-255) unless said otherwise:

=======================  ====================================================  ===========
feature                  how it is measured                                    higher is
=======================  ====================================================  ===========
``sharpness``            1 - blur, with Crété-Roffet's blur effect (how        better
                         little the gradients change when the frame is
                         blurred again), on a 3x3-median-denoised frame so
                         noise is not mistaken for detail
``noise``                log2(1 + noise sigma), sigma by Immerkær's operator   worse
                         over the flattest third of the frame (flat in the
                         denoised frame); log, so strong noise keeps counting
``blockiness``           share of steps that stand out from their neighbours   worse
                         on the 8x8 block grid, minus the same share at
                         mid-block positions (about 0 for natural texture)
``banding``              in gentle ramps, fraction of neighbour steps that     worse
                         are exactly flat (smooth gradients in plateaus)
``bits_per_pixel``       log2 of stream bit rate / (width x height x fps)      better
``duplicate_frames``     fraction of consecutive frames that repeat the        worse
                         previous one (difference < 1/10 of the clip's motion)
``motion_irregularity``  (max - min) / sum of the two frame differences in     worse
                         runs of three consecutive frames (judder, drops)
``clipped``              fraction of pixels crushed to black or blown to white worse
``contrast``             RMS contrast (std of luma / 255)                      better
``colourfulness``        Hasler-Süsstrunk colourfulness (RGB)                  better
=======================  ====================================================  ===========

How they become one score. Each feature ``x`` is standardised by a fixed *typical* centre and
scale (``FEATURE_RANGES``; chosen from the spread of each measure over clean and distorted
synthetic clips, not fitted to any test), clipped to +-3, and signed so higher is better:
``z = sign * clip((x - centre) / scale, -3, 3)``. The weighted mean ``m = sum(w z) / sum(w)``
is mapped to 0-100 by a logistic, ``score = 100 / (1 + exp(-m))``. ``weights`` replaces
``DEFAULT_WEIGHTS`` (features it does not name get weight 0), which is how a second teacher on
a subset of the measures is made.

Frames are measured at their *native* resolution: a frame larger than ``max_pixels`` is centre
cropped (on the 8x8 grid), never resized, because resizing would erase the very blur, noise and
block artefacts being measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ssvqa.errors import VideoError
from ssvqa.hashing import json_fingerprint
from ssvqa.video import open_decoder, probe, short_reason, uniform_indices

# feature -> (centre, scale, sign): z = sign * (x - centre) / scale. Sign +1 when higher is better.
FEATURE_RANGES: dict[str, tuple[float, float, float]] = {
    "sharpness": (0.6, 0.2, +1.0),
    "noise": (1.0, 1.0, -1.0),
    "blockiness": (0.0, 0.1, -1.0),
    "banding": (0.4, 0.25, -1.0),
    "bits_per_pixel": (-3.0, 2.0, +1.0),
    "duplicate_frames": (0.0, 0.25, -1.0),
    "motion_irregularity": (0.1, 0.25, -1.0),
    "clipped": (0.05, 0.1, -1.0),
    "contrast": (0.2, 0.08, +1.0),
    "colourfulness": (40.0, 25.0, +1.0),
}
FEATURES: tuple[str, ...] = tuple(FEATURE_RANGES)

# Hand-set, then checked on a calibration set (13 synthetic ffmpeg sources at 192x144, each with
# five distortion ladders; not the clips the tests use): noise and sharpness carry most of the
# signal; bits per pixel is down-weighted because noise *raises* it; banding, clipping and
# colourfulness are mostly content, so they only nudge.
DEFAULT_WEIGHTS: dict[str, float] = {
    "sharpness": 1.5,
    "noise": 1.5,
    "blockiness": 1.0,
    "banding": 0.1,
    "bits_per_pixel": 0.5,
    "duplicate_frames": 0.5,
    "motion_irregularity": 0.5,
    "clipped": 0.25,
    "contrast": 0.5,
    "colourfulness": 0.1,
}

# Bump when a measure changes: it is part of the fingerprint, so cached scores are not reused.
_VERSION = 1


class ClassicalAnnotator:
    """No-reference teacher from classical measures; see the module docstring.

    Args:
        num_frames: positions sampled uniformly over the clip; at each, a run of three
            consecutive frames is decoded (the first is measured in space, all three in time).
        max_pixels: frames larger than this are centre-cropped to it (not resized).
        weights: feature -> weight, replacing ``DEFAULT_WEIGHTS``; unnamed features get 0.
        name: the teacher's name in caches and provenance.

    >>> teacher = ClassicalAnnotator(weights={"sharpness": 1.0, "noise": 1.0}, name="sharp-noise")
    >>> teacher.weights["blockiness"]
    0.0
    """

    def __init__(
        self,
        num_frames: int = 8,
        max_pixels: int = 640 * 360,
        weights: Mapping[str, float] | None = None,
        name: str = "classical",
    ):
        if num_frames < 1:
            raise ValueError("num_frames must be >= 1")
        if max_pixels < 64:
            raise ValueError("max_pixels must be >= 64 (one 8x8 block)")
        chosen = dict(DEFAULT_WEIGHTS) if weights is None else dict(weights)
        unknown = sorted(set(chosen) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {list(FEATURES)}")
        if any(w < 0 for w in chosen.values()) or not any(w > 0 for w in chosen.values()):
            raise ValueError("weights must be >= 0 with at least one > 0")
        self.num_frames = num_frames
        self.max_pixels = max_pixels
        self.weights = {feature: float(chosen.get(feature, 0.0)) for feature in FEATURES}
        self.name = name

    @property
    def fingerprint(self) -> str:
        """Hash of everything that changes the scores (cache key of :func:`ssvqa.annotators.annotate`)."""
        config = {
            "version": _VERSION,
            "num_frames": self.num_frames,
            "max_pixels": self.max_pixels,
            "weights": self.weights,
            "ranges": FEATURE_RANGES,
        }
        return json_fingerprint(config)

    def score(self, videos: Sequence[str | Path]) -> list[float]:
        """0-100 quality per video (higher is better). Raises VideoError for an unreadable one."""
        return [self.combine(self.features(video)) for video in videos]

    def combine(self, features: Mapping[str, float]) -> float:
        """The 0-100 score of a feature dict (see the module docstring)."""
        total = sum(self.weights.values())
        mean = 0.0
        for feature, weight in self.weights.items():
            if weight:
                centre, scale, sign = FEATURE_RANGES[feature]
                z = max(-3.0, min(3.0, (features[feature] - centre) / scale))
                mean += weight * sign * z
        mean /= total
        return 100.0 / (1.0 + math.exp(-mean))

    def features(self, video: str | Path) -> dict[str, float]:
        """Every measure of one video (keys ``FEATURES``). Raises VideoError."""
        info = probe(video)
        runs = _decode_runs(video, self.num_frames, run_length=3)  # (N, 3, 3, H, W) uint8
        runs = _centre_crop(runs, self.max_pixels)
        rgb = runs.float()
        luma = 0.299 * rgb[..., 0, :, :] + 0.587 * rgb[..., 1, :, :] + 0.114 * rgb[..., 2, :, :]  # (N, 3, H, W)
        still = luma[:, 0]  # the first frame of each run: spatial measures
        denoised = _median3(still)
        values = {
            "sharpness": 1.0 - _blur_effect(denoised),
            "noise": math.log2(1.0 + _noise_sigma(still, denoised)),
            "blockiness": _blockiness(still),
            "banding": _banding(still, denoised),
            "bits_per_pixel": _log2_bits_per_pixel(video, info),
            "clipped": float(((still <= 3) | (still >= 252)).float().mean()),
            "contrast": float(still.std(dim=(-2, -1)).mean() / 255.0),
            "colourfulness": _colourfulness(rgb[:, 0]),
        }
        values.update(_temporal(luma))
        return {feature: float(values[feature]) for feature in FEATURES}


def _decode_runs(path: str | Path, num_runs: int, run_length: int) -> torch.Tensor:
    """``num_runs`` runs of ``run_length`` consecutive frames, spread uniformly over the clip.

    Uses ``ssvqa.video``'s opener (one error vocabulary for every unreadable file); runs are
    clipped at the end of the clip, so a 1-frame video gives runs of copies of its one frame.
    """
    decoder = open_decoder(path)
    available = int(decoder.metadata.num_frames)
    # Runs start early enough to end inside the clip: a run clipped at the last frame would
    # repeat it and look like a duplicated frame.
    starts = uniform_indices(max(1, available - run_length + 1), num_runs)
    indices = [min(available - 1, start + offset) for start in starts for offset in range(run_length)]
    unique = sorted(set(indices))
    try:
        batch = decoder.get_frames_at(unique).data
    except (RuntimeError, IndexError) as err:
        raise VideoError(path, f"decoding failed (truncated or corrupt stream): {short_reason(err)}") from err
    position = {index: i for i, index in enumerate(unique)}
    frames = batch[[position[i] for i in indices]]
    return frames.reshape(num_runs, run_length, *frames.shape[1:])


def _centre_crop(frames: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """Centre crop of at most ``max_pixels`` (aspect kept), offsets and sides on the 8x8 grid."""
    height, width = frames.shape[-2:]
    if height * width <= max_pixels:
        return frames
    scale = math.sqrt(max_pixels / (height * width))
    crop_h = max(8, int(height * scale) // 8 * 8)
    crop_w = max(8, int(width * scale) // 8 * 8)
    top = (height - crop_h) // 2 // 8 * 8
    left = (width - crop_w) // 2 // 8 * 8
    return frames[..., top : top + crop_h, left : left + crop_w]


def _median3(frames: torch.Tensor) -> torch.Tensor:
    """Separable 3x3 median of ``(N, H, W)`` frames (median of 3 along rows, then columns; edges
    replicated): as good as the full 3x3 median at removing noise, and many times cheaper."""

    def median_of_three(a, b, c):
        return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))

    rows = F.pad(frames.unsqueeze(1), (1, 1, 0, 0), mode="replicate").squeeze(1)
    frames = median_of_three(rows[..., :-2], rows[..., 1:-1], rows[..., 2:])
    columns = F.pad(frames.unsqueeze(1), (0, 0, 1, 1), mode="replicate").squeeze(1)
    return median_of_three(columns[..., :-2, :], columns[..., 1:-1, :], columns[..., 2:, :])


def _box_filter(frames: torch.Tensor, size: int, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean over ``size`` pixels along each of ``dims`` (-1 rows, -2 columns), edges replicated."""
    half = size // 2
    out = frames.unsqueeze(1)
    for dim in dims:
        pad = (half, half, 0, 0) if dim == -1 else (0, 0, half, half)
        kernel = (1, size) if dim == -1 else (size, 1)
        out = F.avg_pool2d(F.pad(out, pad, mode="replicate"), kernel_size=kernel, stride=1)
    return out.squeeze(1)


def _blur_effect(frames: torch.Tensor) -> float:
    """Crété-Roffet et al. (2007) blur effect in [0, 1]: 0 sharp, 1 blurry (max over directions)."""
    blur = []
    for dim in (-1, -2):  # horizontal, vertical
        reblurred = _box_filter(frames, 9, (dim,))
        d_frame = frames.diff(dim=dim).abs()
        d_reblurred = reblurred.diff(dim=dim).abs()
        variation = (d_frame - d_reblurred).clamp(min=0)
        total = float(d_frame.sum())
        blur.append((total - float(variation.sum())) / total if total > 1e-6 else 1.0)
    return max(blur)


def _noise_sigma(frames: torch.Tensor, denoised: torch.Tensor) -> float:
    """Immerkær (1996) noise sigma, averaged over the flattest third of each frame."""
    # The operator [[1,-2,1],[-2,4,-2],[1,-2,1]] is the outer product of two second differences.
    second = frames[..., :, :-2] - 2.0 * frames[..., :, 1:-1] + frames[..., :, 2:]
    response = (second[..., :-2, :] - 2.0 * second[..., 1:-1, :] + second[..., 2:, :]).abs()  # (N, H-2, W-2)
    if response.numel() == 0:
        return 0.0
    gradient = _gradient_magnitude(denoised)[:, 1:-1, 1:-1]
    flat = gradient <= torch.quantile(gradient.flatten(1), 1.0 / 3.0, dim=1).reshape(-1, 1, 1)
    return float(math.sqrt(math.pi / 2.0) / 6.0 * response[flat].mean())


def _gradient_magnitude(frames: torch.Tensor) -> torch.Tensor:
    """Central-difference gradient magnitude, same shape as ``frames``."""
    padded = F.pad(frames.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    gx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2.0
    gy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2.0
    return torch.sqrt(gx * gx + gy * gy)


def _blockiness(frames: torch.Tensor) -> float:
    """Excess of "standing-out" steps on the 8x8 block grid over steps at mid-block positions.

    A step stands out when it exceeds both neighbouring steps by more than half a level. On the
    block grid of a blocky frame most steps stand out; in natural texture a step stands out as
    often at a mid-block position (offset 3) as on the grid, so the difference is about 0.
    Comparing fractions, not mean steps, keeps strong content edges from dominating.
    """
    height, width = frames.shape[-2:]
    on_grid, mid_block = [], []
    for dim, size in ((-1, width), (-2, height)):
        if size < 16:
            continue
        steps = frames.diff(dim=dim).abs().movedim(dim, -1)  # step k is between pixels k and k+1
        for offset, out in ((7, on_grid), (3, mid_block)):
            centre = torch.arange(offset, size - 2, 8)  # needs a step on each side
            peak = steps[..., centre] > torch.maximum(steps[..., centre - 1], steps[..., centre + 1]) + 0.5
            out.append(peak.float().mean())
    if not on_grid:
        return 0.0
    return float(torch.stack(on_grid).mean() - torch.stack(mid_block).mean())


def _banding(frames: torch.Tensor, denoised: torch.Tensor) -> float:
    """In gentle ramps (smoothed slope 0.2-2 levels/pixel), the fraction of flat 1-pixel steps."""
    smooth = _box_filter(denoised, 9, (-1, -2))
    slope = _gradient_magnitude(smooth)
    ramp = (slope > 0.2) & (slope < 2.0)
    ramp = ramp[:, :-1, :-1]
    if int(ramp.sum()) < 64:
        return 0.0  # no gentle ramps in view: nothing can band
    rounded = frames.round()
    flat = (rounded[:, :-1, 1:] == rounded[:, :-1, :-1]) & (rounded[:, 1:, :-1] == rounded[:, :-1, :-1])
    return float(flat[ramp].float().mean())


def _log2_bits_per_pixel(path: str | Path, info) -> float:
    """log2 of bits per coded pixel: the stream bit rate, else the file size over the frames."""
    pixels = info.width * info.height
    if info.bit_rate and info.fps > 0:
        bits_per_pixel = info.bit_rate / (pixels * info.fps)
    else:
        bits_per_pixel = Path(path).stat().st_size * 8.0 / (pixels * max(1, info.num_frames))
    return math.log2(max(bits_per_pixel, 1e-4))


def _colourfulness(rgb: torch.Tensor) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of ``(N, 3, H, W)`` frames (0-255), mean over frames."""
    red, green, blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = torch.sqrt(rg.var(dim=(-2, -1), unbiased=False) + yb.var(dim=(-2, -1), unbiased=False))
    offset = torch.sqrt(rg.mean(dim=(-2, -1)) ** 2 + yb.mean(dim=(-2, -1)) ** 2)
    return float((spread + 0.3 * offset).mean())


def _temporal(luma: torch.Tensor) -> dict[str, float]:
    """Duplicate frames and motion irregularity from runs of consecutive frames ``(N, L, H, W)``.

    A repeated frame is not bit-identical after encoding (its difference is a few tenths of a
    level where real motion gives several levels), so "duplicate" is relative to the clip's
    motion: a frame difference under a tenth of the clip's typical moving difference (the second
    largest, so that one scene cut does not set the scale).
    """
    differences = (luma[:, 1:] - luma[:, :-1]).abs().mean(dim=(-2, -1))  # (N, L-1), luma levels
    flat = differences.flatten().sort(descending=True).values
    motion = float(flat[1] if flat.numel() > 1 else flat[0])
    if motion < 1.0:  # a still clip (or one frame): nothing can judder
        return {"duplicate_frames": 0.0, "motion_irregularity": 0.0}
    duplicates = float((differences < 0.1 * motion).float().mean())
    total = differences.sum(dim=1)
    moving = total > 0.1 * motion
    spread = (differences.max(dim=1).values - differences.min(dim=1).values) / total.clamp(min=1e-6)
    irregularity = float(spread[moving].mean()) if bool(moving.any()) else 0.0
    return {"duplicate_frames": duplicates, "motion_irregularity": irregularity}
