"""Which new pairs a self-improvement round should add: the hard ones (W2S-VQA's stages 2 and 3).

Random new pairs teach a ranker little it does not know; W2S-VQA's ablation gains most from two
kinds of *hard* pair, both chosen here from candidates the caller draws from the unlabeled pool:

* **Student–teacher disagreement** (gMAD-style, :func:`disagreement_pairs`). For each teacher
  (or the teachers' consensus), on scores standardised over the candidates' videos, a pair is
  hard when the student puts its videos far apart and the teacher puts them the other way round
  or close together -- or the teacher puts them far apart and the student does not follow:

      d = max( |Δs| − sign(Δs)·Δt ,  |Δt| − sign(Δt)·Δs , 0 )

  with ``Δs``/``Δt`` the second video's score minus the first's for the student and the teacher.
  ``d`` is 0 when the two gaps are equal; it is the amount by which one of them asserts a gap in
  its direction that the other does not grant (opposite direction counts double). The pair's
  disagreement is the largest over teachers, and the teacher that gave it is recorded.
* **Synthetic pairs the student gets wrong** (:func:`student_error_pairs`). Fresh distortion
  pairs have exact labels; the student's preference ``p`` (P(second better)) against the label's
  ``prob``: ``e = −(p − ½)·sign(prob − ½)`` is positive for a wrong answer and near 0 for a
  low-margin one. Pairs with ``prob = ½`` (no direction) are not candidates.

Every chosen pair comes with the reason it was chosen (``selected`` plus the figures), for the
row's provenance; :func:`mix` fills the rest of a round's budget with random pairs, also marked.
Who labels the chosen pairs is the caller's choice (the previous round's ranker, optionally
combined with the teachers; see ``ssvqa.rounds``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[Hashable, Hashable]


@dataclass(frozen=True)
class Chosen:
    """A chosen pair and why: ``reason`` is ``"disagreement"``, ``"student_error"`` or ``"random"``."""

    pair: Pair
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {"selected": self.reason, **self.figures}


def standardise(scores: Mapping[Hashable, float], videos: Sequence[Hashable]) -> dict[Hashable, float]:
    """z-scores of ``scores`` over ``videos`` (0 for all when they are constant)."""
    values = [float(scores[v]) for v in videos]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((x - mean) ** 2 for x in values) / len(values))
    return {v: (float(scores[v]) - mean) / std if std > 0 else 0.0 for v in videos}


def disagreement(delta_student: float, delta_teacher: float) -> float:
    """gMAD-style disagreement of two gaps (see the module doc).

    >>> disagreement(2.0, 2.0), disagreement(2.0, -1.0), disagreement(2.0, 0.0), disagreement(0.0, -1.5)
    (0.0, 3.0, 2.0, 1.5)
    """
    sign_s = math.copysign(1.0, delta_student) if delta_student else 0.0
    sign_t = math.copysign(1.0, delta_teacher) if delta_teacher else 0.0
    return max(abs(delta_student) - sign_s * delta_teacher, abs(delta_teacher) - sign_t * delta_student, 0.0)


def disagreement_pairs(
    candidates: Sequence[Pair],
    student: Mapping[Hashable, float],
    teachers: Mapping[str, Mapping[Hashable, float]],
    count: int,
    *,
    min_disagreement: float = 0.0,
) -> list[Chosen]:
    """The ``count`` candidates on which the student and a teacher disagree most (ties: input order).

    ``student`` and each teacher map video -> score (higher is better, any scale: each is
    standardised over the candidates' videos). Pairs whose disagreement is not above
    ``min_disagreement`` are never chosen.
    """
    videos = list(dict.fromkeys(v for pair in candidates for v in pair))
    missing = [v for v in videos if v not in student]
    if missing:
        raise ValueError(f"the student has no score for {len(missing)} candidate video(s), e.g. {missing[0]!r}")
    s = standardise(student, videos)
    standardised = {}
    for name, scores in teachers.items():
        lacking = [v for v in videos if v not in scores]
        if lacking:
            raise ValueError(f"teacher {name!r} has no score for {len(lacking)} candidate video(s), e.g. {lacking[0]!r}")
        standardised[name] = standardise(scores, videos)
    ranked = []
    for position, (a, b) in enumerate(candidates):
        delta_s = s[b] - s[a]
        best, by = 0.0, None
        for name, t in standardised.items():
            d = disagreement(delta_s, t[b] - t[a])
            if d > best:
                best, by = d, name
        if by is not None and best > min_disagreement:
            ranked.append((-best, position, Chosen((a, b), "disagreement", {
                "teacher": by, "disagreement": best, "student_gap": delta_s, "teacher_gap": standardised[by][b] - standardised[by][a],
            })))
    ranked.sort(key=lambda item: item[:2])
    return [chosen for _, _, chosen in ranked[:count]]


def student_error_pairs(
    candidates: Sequence[Pair],
    preference: Sequence[float],
    prob: Sequence[float],
    count: int,
    *,
    max_margin: float = 0.5,
) -> list[Chosen]:
    """The ``count`` labelled pairs the student gets most wrong, then those it answers with the
    smallest margin (ties: input order).

    ``preference[i]`` is the student's P(second better) for ``candidates[i]``, ``prob[i]`` the
    label's. Only pairs whose error ``e = −(p − ½)·sign(prob − ½)`` is above ``−max_margin`` are
    candidates (the default keeps every pair with a direction; 0 keeps only wrong answers).
    """
    if not len(candidates) == len(preference) == len(prob):
        raise ValueError("candidates, preference and prob must have the same length")
    ranked = []
    for position, (pair, p, target) in enumerate(zip(candidates, preference, prob)):
        if target == 0.5:
            continue
        error = -(float(p) - 0.5) * math.copysign(1.0, float(target) - 0.5)
        if error > -max_margin:
            ranked.append((-error, position, Chosen(tuple(pair), "student_error", {
                "student_preference": float(p), "label_prob": float(target), "error": error, "wrong": error > 0,
            })))
    ranked.sort(key=lambda item: item[:2])
    return [chosen for _, _, chosen in ranked[:count]]


def mix(hard: Sequence[Chosen], candidates: Sequence[Pair], total: int, seed: int = 0) -> list[Chosen]:
    """``hard`` pairs first (at most ``total``), then random other candidates up to ``total``."""
    chosen = list(hard[:total])
    taken = {frozenset(c.pair) for c in chosen}
    rest = [pair for pair in candidates if frozenset(pair) not in taken]
    random.Random(seed).shuffle(rest)
    chosen += [Chosen(tuple(pair), "random") for pair in rest[: max(0, total - len(chosen))]]
    return chosen
