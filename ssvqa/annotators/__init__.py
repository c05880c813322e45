"""Quality teachers ("annotators") and cached, data-parallel annotation of many videos.

* :mod:`ssvqa.annotators.base`: the :class:`Annotator` protocol and :func:`annotate`.
* :mod:`ssvqa.annotators.classical`: :class:`ClassicalAnnotator`, a no-reference teacher made of
  classical signal measures (sharpness, noise, blockiness, bits per pixel, ...).
"""

from ssvqa.annotators.base import AnnotationResult, Annotator, ScoreCache, annotate, annotator_fingerprint
from ssvqa.annotators.classical import ClassicalAnnotator

__all__ = ["AnnotationResult", "Annotator", "ClassicalAnnotator", "ScoreCache", "annotate", "annotator_fingerprint"]
