"""The five comparison levels shared by every part of ssvqa, and the level rule of a pair.

A pair is (first, second) = (``video_a``, ``video_b``); the level says how the *second* video
compares with the first, worst to best: ``inferior, worse, similar, better, superior``. Each
level has a preference weight (0, .25, .5, .75, 1): the probability-like value that the second
video is the better one.

:func:`pair_level` is the one rule that turns two scores and their spreads into a level and a
``prob`` (``σΔ = √(σA² + σB²)``: ``|Δ| ≤ σΔ`` similar, ``≤ 2σΔ`` better/worse, beyond
superior/inferior, :class:`LevelThresholds`); :func:`level_of_gap` is the same rule for a gap
already in units. Where the scores come from teachers, :mod:`ssvqa.pseudo_labels` aligns and
combines them first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import datasets

LEVELS: tuple[str, ...] = ("inferior", "worse", "similar", "better", "superior")
LEVEL_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
SIMILAR = LEVELS.index("similar")
_STANDARD_NORMAL = NormalDist()


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


def level_of_gap(gap: float, similar: float, superior: float, *, closed: bool = False) -> int:
    """The level of a signed gap (second minus first, in any unit): ``similar`` while
    ``|gap| < similar``, ``better``/``worse`` while ``|gap| < superior``, else
    ``superior``/``inferior`` (``closed``: a gap equal to a threshold takes the smaller level,
    ``<=``, as W2S-VQA's teacher rule ``|Δ| <= σΔ`` does). The one rule every label from a
    continuous value follows (teacher scores, MOS, a ranker's preference); mirrored gaps give
    mirrored levels.

    >>> [LEVELS[level_of_gap(g, 0.5, 2.0)] for g in (-3.0, -1.0, 0.0, 0.49, 2.0)]
    ['inferior', 'worse', 'similar', 'similar', 'superior']
    >>> LEVELS[level_of_gap(2.0, 0.5, 2.0, closed=True)]
    'better'
    """
    if not 0 <= similar <= superior:
        raise ValueError(f"need 0 <= similar <= superior, got {similar}, {superior}")
    size = abs(gap)

    def within(threshold: float) -> bool:
        return size <= threshold if closed else size < threshold

    step = 0 if within(similar) else (1 if within(superior) else 2)
    return SIMILAR + step if gap >= 0 else SIMILAR - step


def level_of_preference(prob: float) -> int:
    """The level whose weight is nearest to a preference ``prob`` = P(second better): the gap
    ``prob - 0.5`` against the midpoints between the weights (0.125, 0.375).

    >>> [LEVELS[level_of_preference(p)] for p in (0.0, 0.3, 0.6, 0.7, 1.0)]
    ['inferior', 'worse', 'similar', 'better', 'superior']
    """
    return level_of_gap(float(prob) - 0.5, 0.125, 0.375)



@dataclass(frozen=True)
class LevelThresholds:
    """How a pair's standardised gap ``z`` maps to a level (see :func:`pair_level`).

    ``z = (s_b - s_a) / sqrt(spread_a**2 + spread_b**2 + noise_floor**2)``, in units of the
    combined uncertainty σΔ. ``|z| <= similar`` -> ``similar``; ``similar < |z| <= superior`` ->
    ``better``/``worse``; ``|z| > superior`` -> ``superior``/``inferior``.

    Defaults are W2S-VQA's: a gap within one σΔ is "too close to call", beyond two is a clear
    win, no noise floor. ``noise_floor`` (in normalised-score units) keeps two teachers that happen
    to agree exactly from making every tiny gap decisive (ssvqa's earlier default was
    ``LevelThresholds(0.5, 2.0, 0.25)``).
    """

    similar: float = 1.0
    superior: float = 2.0
    noise_floor: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.similar < self.superior:
            raise ValueError(f"need 0 <= similar < superior, got similar={self.similar}, superior={self.superior}")
        if self.noise_floor < 0.0:
            raise ValueError(f"noise_floor must be >= 0, got {self.noise_floor}")


def pair_z(score_a: float, score_b: float, spread_a: float, spread_b: float, noise_floor: float) -> float:
    """Gap of the second video over the first in units of their combined uncertainty."""
    scale = math.sqrt(spread_a**2 + spread_b**2 + noise_floor**2)
    gap = score_b - score_a
    if scale == 0.0:
        return 0.0 if gap == 0 else math.copysign(math.inf, gap)
    return gap / scale


def pair_level(
    score_a: float,
    score_b: float,
    spread_a: float,
    spread_b: float,
    thresholds: LevelThresholds = LevelThresholds(),
) -> tuple[int, float]:
    """Level of the second video vs the first, and ``prob`` = P(second is better).

    ``z`` as in :class:`LevelThresholds`; the level by ``|z|`` against the thresholds, its sign
    choosing better/superior or worse/inferior; ``prob = Phi(z)``, the probability that the
    second video is better if each score carried Gaussian noise of its spread (a soft target that
    agrees with the level: ``prob > 0.5`` exactly when the second looks better).

    >>> pair_level(0.0, 0.25, 0.2, 0.2)[0] == LEVELS.index("similar")
    True
    >>> level, prob = pair_level(0.0, 0.7, 0.2, 0.2)
    >>> LEVELS[level], round(prob, 3)
    ('superior', 0.993)
    """
    z = pair_z(score_a, score_b, spread_a, spread_b, thresholds.noise_floor)
    level = level_of_gap(z, thresholds.similar, thresholds.superior, closed=True)
    prob = 1.0 if z == math.inf else 0.0 if z == -math.inf else _STANDARD_NORMAL.cdf(z)
    return level, prob


