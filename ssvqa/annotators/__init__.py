"""Quality teachers ("annotators") and cached, data-parallel annotation of many videos.

* :mod:`ssvqa.annotators.base`: the :class:`Annotator` protocol and :func:`annotate`.
* :mod:`ssvqa.annotators.classical`: :class:`ClassicalAnnotator`, a no-reference teacher made of
  classical signal measures (sharpness, noise, blockiness, bits per pixel, ...).
* :mod:`ssvqa.annotators.natural_scene`: :class:`BrisqueAnnotator` and :class:`NiqeAnnotator`, the
  published no-reference image quality models BRISQUE and NIQE on sampled frames.
"""

from ssvqa.annotators.base import AnnotationResult, Annotator, ScoreCache, annotate, annotator_fingerprint
from ssvqa.annotators.classical import ClassicalAnnotator
from ssvqa.annotators.natural_scene import BrisqueAnnotator, NiqeAnnotator

__all__ = ["AnnotationResult", "Annotator", "BrisqueAnnotator", "ClassicalAnnotator", "NiqeAnnotator", "ScoreCache", "annotate", "annotator_fingerprint"]
