"""The five comparison levels shared by every part of ssvqa, and how labels are made.

A pair is (first, second) = (``video_a``, ``video_b``); the level says how the *second* video
compares with the first, worst to best: ``inferior, worse, similar, better, superior``. Each
level has a preference weight (0, .25, .5, .75, 1): the probability-like value that the second
video is the better one.
"""

from __future__ import annotations

import datasets

LEVELS: tuple[str, ...] = ("inferior", "worse", "similar", "better", "superior")
LEVEL_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
SIMILAR = LEVELS.index("similar")


def level_class_label() -> datasets.ClassLabel:
    """The datasets ``ClassLabel`` holding the five level names (index = position in LEVELS)."""
    return datasets.ClassLabel(names=list(LEVELS))


def level_prob(level: int | str) -> float:
    """Preference weight of a level: P(second video is better)."""
    index = LEVELS.index(level) if isinstance(level, str) else int(level)
    return LEVEL_WEIGHTS[index]


def mirror_level(level: int) -> int:
    """Level of the mirrored pair (second, first): ``better`` <-> ``worse`` and so on."""
    return len(LEVELS) - 1 - int(level)
