"""A trained pair ranker as a teacher: each video compared with K anchors, scored 0-100.

This is how a student of one round becomes a teacher of the next: the ranker's
:class:`~ssvqa.scorer.QualityScorer` (anchors and Bradley-Terry MAP, see :mod:`ssvqa.scorer`)
already turns a video into a 0-100 score, so this class only gives it the
:class:`~ssvqa.annotators.base.Annotator` shape (``name``, ``fingerprint``, ``score``).

>>> teacher = RankerAnnotator.from_pretrained("round-1/", anchors="round-1/anchors.json")   # doctest: +SKIP
>>> annotate(videos, teacher, cache_dir="cache/").scores                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ssvqa.hashing import json_fingerprint


class RankerAnnotator:
    """Teacher from a :class:`~ssvqa.scorer.QualityScorer`.

    Args:
        scorer: a ready scorer (model + anchors).
        name: the teacher's name in caches and provenance.
        model_id: what the scores depend on besides the anchors (a path, Hub id or revision);
            it goes into the fingerprint. ``from_pretrained`` fills it in.
    """

    def __init__(self, scorer, *, name: str = "ranker", model_id: str | None = None):
        self.scorer = scorer
        self.name = name
        self.model_id = model_id if model_id is not None else str(getattr(scorer, "model_dir", "") or "")

    @classmethod
    def from_pretrained(cls, model_or_path: str | os.PathLike, anchors=None, *, name: str = "ranker", **kwargs) -> RankerAnnotator:
        """Load a ranker and its anchors with :meth:`QualityScorer.from_pretrained` (same arguments)."""
        from ssvqa.scorer import QualityScorer

        scorer = QualityScorer.from_pretrained(model_or_path, anchors, **kwargs)
        model_id = str(model_or_path) + (f"+{kwargs['adapter']}" if kwargs.get("adapter") else "")
        return cls(scorer, name=name, model_id=model_id)

    @property
    def fingerprint(self) -> str:
        """Hash of the model, the anchors (files and scores) and the settings that change scores."""
        scorer = self.scorer
        settings = {
            "model": self.model_id,
            "anchors": [[Path(v).name, s] for v, s in zip(scorer.anchor_videos, scorer.anchor_scores)],
            "video_sampling": scorer.sampling.to_dict(),
            "temperature": scorer.temperature,
            "mirrored": scorer.mirrored,
        }
        return json_fingerprint(settings)

    def score(self, videos: Sequence[str | Path]) -> list[float]:
        """0-100 scores, in order; raises :class:`~ssvqa.errors.VideoError` for an unreadable video."""
        return self.scorer.score(videos)
