"""Labels from teacher scores: align and combine teachers, sample pairs, level them (pseudo labels).

Teachers score videos on scales of their own. Each teacher's scores are first put on one scale:

* ``"logistic"`` (the default, W2S-VQA's rule): each teacher is *aligned* to a reference with
  VQEG's monotonic 4-parameter logistic (:func:`ssvqa.evaluation.fit_logistic`) fitted on the
  videos both scored; the reference is MOS where a labelled set is given, otherwise a chosen
  reference teacher (the first by default). The aligned scores are then standardised with the
  reference's mean and std -- one affine map for all teachers, which changes no level -- so
  spreads are in units of the reference's spread and ``single_teacher_spread``/``noise_floor``
  keep their meaning whatever the reference's scale.
* ``"rank"``: ranks spread uniformly over (0, 1) then mapped through the normal quantile, so
  every teacher becomes a standard-normal score whatever its scale or calibration.
* ``"zscore"``: mean 0, std 1, which keeps each teacher's spacing.

A video's combined score is the (weighted) mean of its scores on that scale, and its *spread*
the (weighted) standard deviation across teachers: how unsure the teachers are about it. A
pair's level then comes from the gap between the two combined scores *relative to their
uncertainty* (the paper's variance-based soft ranking), see :func:`ssvqa.labels.pair_level`:
``σΔ = √(σA² + σB²)``; ``|Δ| ≤ σΔ`` similar, ``≤ 2σΔ`` better/worse, beyond superior/inferior.

How this compares with the rule as W2S-VQA released it: the same by default. Before, ssvqa used
rank normalisation (invariant to any monotone transform, but it discards each teacher's spacing)
and narrower "similar" band (|z| < 0.5) with a noise floor of 0.25; both remain available:
``method="rank"`` and ``LevelThresholds(similar=0.5, superior=2.0, noise_floor=0.25)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from ssvqa.labels import LEVELS, LevelThresholds, pair_level, pair_z

NORMALISATIONS: tuple[str, ...] = ("logistic", "rank", "zscore")
_STANDARD_NORMAL = NormalDist()


def align_teachers(
    teacher_scores: Mapping[str, Mapping[Hashable, float]],
    reference: str | Mapping[Hashable, float] | None = None,
) -> dict[str, dict[Hashable, float]]:
    """Every teacher's scores on the reference's scale, standardised (see the section comment).

    ``reference``: a teacher's name, or a mapping video -> MOS (a labelled subset of the videos
    is enough: at least five shared with each teacher for the logistic, else a straight line), or None for the first teacher. Each
    teacher is mapped with the 4-parameter logistic fitted from its scores to the reference's
    on their common videos (a straight line when the logistic fit fails, as in
    :func:`ssvqa.evaluation.fit_logistic`); the reference teacher maps to itself. The result is
    then standardised with the reference's mean and std over the videos it scored.

    >>> a = {"v1": 1.0, "v2": 2.0, "v3": 3.0, "v4": 4.0, "v5": 5.0, "v6": 6.0}
    >>> aligned = align_teachers({"a": a, "b": {v: 10 * s + 3 for v, s in a.items()}})
    >>> all(abs(aligned["a"][v] - aligned["b"][v]) < 1e-3 for v in a)
    True
    """
    from ssvqa.evaluation import apply_fit, fit_logistic

    if not teacher_scores:
        return {}
    if reference is None:
        reference = next(iter(teacher_scores))
    if isinstance(reference, str):
        if reference not in teacher_scores:
            raise ValueError(f"reference teacher {reference!r} is not among the teachers {sorted(teacher_scores)}")
        target = {v: float(s) for v, s in teacher_scores[reference].items()}
    else:
        target = {v: float(s) for v, s in reference.items()}
    aligned: dict[str, dict[Hashable, float]] = {}
    for name, scores in teacher_scores.items():
        if isinstance(reference, str) and name == reference:
            aligned[name] = dict(target)
            continue
        common = [v for v in scores if v in target]
        if len(common) < 2:
            raise ValueError(f"teacher {name!r} shares {len(common)} videos with the reference: alignment needs "
                             "at least 2 (5 for the logistic; fewer get a straight line)")
        params, kind = fit_logistic([scores[v] for v in common], [target[v] for v in common])
        mapped = apply_fit([float(scores[v]) for v in scores], params, kind)
        aligned[name] = {v: float(m) for v, m in zip(scores, mapped)}
    values = list(target.values())
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    return {name: {v: (s - mean) / std for v, s in scores.items()} for name, scores in aligned.items()}


def normalise_scores(scores: Mapping[Hashable, float], method: str = "rank") -> dict[Hashable, float]:
    """One teacher's scores on a common scale by ranks or z-scores (``"logistic"`` alignment
    needs all teachers at once: :func:`align_teachers`).

    ``"rank"``: average ranks for ties, ``u = (rank - 0.5) / n``, ``z = Phi^-1(u)``.
    ``"zscore"``: ``(x - mean) / std`` (all zeros when every score is equal).

    >>> {k: round(z, 3) for k, z in normalise_scores({"a": 10.0, "b": 30.0, "c": 20.0}).items()}
    {'a': -0.967, 'b': 0.967, 'c': 0.0}
    """
    if method not in ("rank", "zscore"):
        raise ValueError(f"method must be 'rank' or 'zscore', got {method!r}")
    keys = list(scores)
    values = [float(scores[k]) for k in keys]
    if any(not math.isfinite(v) for v in values):
        raise ValueError("scores must be finite (annotate() reports failed videos as skipped instead)")
    if not keys:
        return {}
    if method == "zscore":
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return {k: (v - mean) / std if std > 0 else 0.0 for k, v in zip(keys, values)}
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):  # tied scores share their average rank
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    count = len(values)
    return {k: _STANDARD_NORMAL.inv_cdf((rank - 0.5) / count) for k, rank in zip(keys, ranks)}


@dataclass
class TeacherConsensus:
    """Combined view of several teachers (:func:`combine_teachers`).

    Attributes:
        score: video -> weighted mean of its normalised teacher scores.
        spread: video -> weighted std of those scores across teachers; ``single_teacher_spread``
            for a video that only one teacher scored.
        normalised: teacher -> video -> that teacher's normalised score.
        raw: teacher -> video -> the score the teacher gave (for provenance).
    """

    score: dict[Hashable, float]
    spread: dict[Hashable, float]
    normalised: dict[str, dict[Hashable, float]]
    raw: dict[str, dict[Hashable, float]]


def combine_teachers(
    teacher_scores: Mapping[str, Mapping[Hashable, float]],
    *,
    method: str = "logistic",
    reference: str | Mapping[Hashable, float] | None = None,
    weights: Mapping[str, float] | None = None,
    single_teacher_spread: float = 0.5,
) -> TeacherConsensus:
    """Put the teachers on one scale, then combine per video: weighted mean and spread.

    Args:
        teacher_scores: teacher name -> video -> score (higher is better, any scale). Teachers
            should score the same videos: each is normalised over the videos *it* scored.
        method: ``"logistic"`` (:func:`align_teachers` to ``reference``), ``"rank"`` or
            ``"zscore"`` (:func:`normalise_scores`).
        reference: for ``"logistic"``: a teacher's name or a video -> MOS mapping (default: the
            first teacher).
        weights: teacher -> weight (default 1 each).
        single_teacher_spread: the spread of a video only one teacher scored, where the
            disagreement between teachers cannot be measured. The default 0.5 is the error of a
            fair teacher: a teacher whose normalised scores correlate 0.85 with the truth has
            residual noise of std sqrt(1 - 0.85**2) ~ 0.5 in the same units.

    >>> consensus = combine_teachers({"t1": {"a": 1.0, "b": 2.0}, "t2": {"a": 5.0, "b": 3.0}}, method="rank")
    >>> consensus.score, round(consensus.spread["a"], 3)
    ({'a': 0.0, 'b': 0.0}, 0.674)
    """
    if not teacher_scores:
        raise ValueError("need at least one teacher")
    weights = {name: float((weights or {}).get(name, 1.0)) for name in teacher_scores}
    if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
        raise ValueError("teacher weights must be >= 0 with at least one > 0")
    if method not in NORMALISATIONS:
        raise ValueError(f"method must be one of {NORMALISATIONS}, got {method!r}")
    if method == "logistic":
        normalised = align_teachers(teacher_scores, reference)
    else:
        normalised = {name: normalise_scores(scores, method) for name, scores in teacher_scores.items()}
    videos = list(dict.fromkeys(v for scores in teacher_scores.values() for v in scores))
    score, spread = {}, {}
    for video in videos:
        values = [(normalised[name][video], weights[name]) for name in teacher_scores if video in normalised[name]]
        total = sum(w for _, w in values)
        if total == 0:
            continue  # only zero-weight teachers scored it
        mean = sum(v * w for v, w in values) / total
        score[video] = mean
        voters = sum(1 for _, w in values if w > 0)
        spread[video] = (
            math.sqrt(sum(w * (v - mean) ** 2 for v, w in values) / total) if voters > 1 else single_teacher_spread
        )
    raw = {name: {v: float(s) for v, s in scores.items()} for name, scores in teacher_scores.items()}
    return TeacherConsensus(score=score, spread=spread, normalised=normalised, raw=raw)


def teachers_disagree(
    scores_a: Mapping[str, float], scores_b: Mapping[str, float], threshold: float = 0.5
) -> bool:
    """True when one teacher puts the second video ahead and another puts it behind, each by more
    than ``threshold`` (normalised units). Teachers within the threshold count as neutral.

    >>> teachers_disagree({"t1": 0.0, "t2": 0.0}, {"t1": 1.0, "t2": -1.0})
    True
    >>> teachers_disagree({"t1": 0.0, "t2": 0.0}, {"t1": 1.0, "t2": -0.2})
    False
    """
    gaps = [scores_b[t] - scores_a[t] for t in scores_a if t in scores_b]
    return any(g > threshold for g in gaps) and any(g < -threshold for g in gaps)


def sample_pairs(
    video_ids: Sequence[Hashable],
    combined_scores: Mapping[Hashable, float],
    *,
    max_pairs_per_video: int = 4,
    num_pairs: int | None = None,
    num_strata: int = 3,
    seed: int = 0,
    content_ids: Mapping[Hashable, str] | None = None,
    same_content: bool = False,
    groups: Mapping[Hashable, Hashable] | None = None,
    max_candidates: int = 200_000,
) -> list[tuple[Hashable, Hashable]]:
    """Choose informative pairs: an even mix of small, medium and large score gaps.

    Easy pairs (large gaps) teach little once learnt and hard ones (small gaps) are the noisiest,
    so neither is favoured: candidate pairs are split into ``num_strata`` strata by gap quantile
    and drawn from in turn (round robin, random order inside each stratum), skipping a pair when
    one of its videos already has ``max_pairs_per_video`` pairs. Which video comes first is
    random, so levels are balanced in direction.

    Candidates are every allowed pair, or ``max_candidates`` random ones when there are more.
    Allowed: both videos have a combined score, are in the same ``groups`` value when given (use
    it to keep pairs inside one train/test split), and, when ``content_ids`` is given, have
    different contents unless ``same_content``. Pseudo pairs are normally *across* contents:
    pairs of one content differ by distortion, which the distortion builder labels exactly.

    Returns:
        ``(video_a, video_b)`` tuples, at most ``num_pairs`` (default: as many as the bound allows).
    """
    if max_pairs_per_video < 1 or num_strata < 1:
        raise ValueError("max_pairs_per_video and num_strata must be >= 1")
    ids = [v for v in dict.fromkeys(video_ids) if v in combined_scores]
    rng = random.Random(seed)

    def allowed(a, b) -> bool:
        if groups is not None and groups.get(a) != groups.get(b):
            return False
        if content_ids is not None and not same_content and content_ids.get(a) == content_ids.get(b):
            return False
        return True

    candidates = _candidate_pairs(ids, allowed, groups, max_candidates, rng)
    if not candidates:
        return []
    gaps = [abs(combined_scores[a] - combined_scores[b]) for a, b in candidates]
    order = sorted(range(len(candidates)), key=gaps.__getitem__)
    strata = [[candidates[i] for i in order[k * len(order) // num_strata : (k + 1) * len(order) // num_strata]]
              for k in range(num_strata)]
    for stratum in strata:
        rng.shuffle(stratum)

    limit = num_pairs if num_pairs is not None else len(ids) * max_pairs_per_video // 2
    used: dict[Hashable, int] = {}
    chosen: list[tuple[Hashable, Hashable]] = []
    cursors = [0] * num_strata
    while len(chosen) < limit and any(c < len(s) for c, s in zip(cursors, strata)):
        for k, stratum in enumerate(strata):
            while cursors[k] < len(stratum):  # the next pair of stratum k that fits the bound
                a, b = stratum[cursors[k]]
                cursors[k] += 1
                if used.get(a, 0) < max_pairs_per_video and used.get(b, 0) < max_pairs_per_video:
                    used[a] = used.get(a, 0) + 1
                    used[b] = used.get(b, 0) + 1
                    chosen.append((a, b) if rng.random() < 0.5 else (b, a))
                    break
            if len(chosen) >= limit:
                break
    return chosen


def _candidate_pairs(ids, allowed, groups, max_candidates, rng) -> list[tuple[Hashable, Hashable]]:
    """Every allowed unordered pair, or ``max_candidates`` distinct random ones when there are more."""
    members: dict[Hashable, list[Hashable]] = {}
    for video in ids:
        members.setdefault(groups.get(video) if groups is not None else None, []).append(video)
    possible = sum(len(m) * (len(m) - 1) // 2 for m in members.values())
    if possible <= max_candidates:
        return [(a, b) for m in members.values() for i, a in enumerate(m) for b in m[i + 1 :] if allowed(a, b)]
    # Random pairs: a random video, then a random partner from its group.
    position = {video: i for i, video in enumerate(ids)}
    pool = [v for v in ids if len(members[groups.get(v) if groups is not None else None]) > 1]
    seen: set[tuple[Hashable, Hashable]] = set()
    attempts = 0
    while pool and len(seen) < max_candidates and attempts < 20 * max_candidates:
        attempts += 1
        a = rng.choice(pool)
        b = rng.choice(members[groups.get(a) if groups is not None else None])
        if a != b and allowed(a, b):
            seen.add((a, b) if position[a] < position[b] else (b, a))
    return sorted(seen, key=lambda pair: (position[pair[0]], position[pair[1]]))


@dataclass
class PseudoLabels:
    """What :func:`label_pairs` returns.

    Attributes:
        rows: one dict per kept pair: ``video_a``, ``video_b``, ``label`` (level index), ``prob``,
            ``origin`` (``"pseudo"``) and ``provenance`` (combined scores, spreads, ``z``, and each
            teacher's raw and normalised scores); the pair builder adds ``content_id``.
        counts: ``videos`` (with a combined score), ``sampled`` pairs, ``dropped_disagreement``,
            ``kept``, and ``levels`` (level name -> kept pairs).
        consensus: the :class:`TeacherConsensus` the labels came from.
    """

    rows: list[dict[str, Any]]
    counts: dict[str, Any]
    consensus: TeacherConsensus


def label_pairs(
    teacher_scores: Mapping[str, Mapping[Hashable, float]],
    *,
    method: str = "logistic",
    reference: str | Mapping[Hashable, float] | None = None,
    weights: Mapping[str, float] | None = None,
    thresholds: LevelThresholds = LevelThresholds(),
    disagreement: float | None = 0.5,
    single_teacher_spread: float = 0.5,
    **sampling: Any,
) -> PseudoLabels:
    """Teacher scores -> labelled pseudo pairs: combine, sample, level, drop disagreements.

    1. :func:`combine_teachers` (``method``, ``reference``, ``weights``, ``single_teacher_spread``);
    2. :func:`sample_pairs` on the combined scores, with the keyword arguments in ``sampling``
       (``max_pairs_per_video``, ``num_pairs``, ``num_strata``, ``seed``, ``content_ids``,
       ``same_content``, ``groups``);
    3. drop the pairs on which :func:`teachers_disagree` by more than ``disagreement``
       (``None`` keeps them all; with one teacher nothing can disagree);
    4. :func:`pair_level` with ``thresholds`` for each pair kept.

    >>> labels = label_pairs({"t": {"a": 1.0, "b": 2.0, "c": 3.0}}, max_pairs_per_video=2)
    >>> labels.counts["kept"], sorted(labels.rows[0])
    (3, ['label', 'origin', 'prob', 'provenance', 'video_a', 'video_b'])
    """
    consensus = combine_teachers(
        teacher_scores, method=method, reference=reference, weights=weights,
        single_teacher_spread=single_teacher_spread,
    )
    videos = list(consensus.score)
    pairs = sample_pairs(videos, consensus.score, **sampling)
    rows, dropped = [], 0
    for a, b in pairs:
        teachers_a = {t: scores[a] for t, scores in consensus.normalised.items() if a in scores}
        teachers_b = {t: scores[b] for t, scores in consensus.normalised.items() if b in scores}
        if disagreement is not None and teachers_disagree(teachers_a, teachers_b, disagreement):
            dropped += 1
            continue
        level, prob = pair_level(consensus.score[a], consensus.score[b], consensus.spread[a], consensus.spread[b], thresholds)
        provenance = {
            "score_a": consensus.score[a],
            "score_b": consensus.score[b],
            "spread_a": consensus.spread[a],
            "spread_b": consensus.spread[b],
            "z": pair_z(consensus.score[a], consensus.score[b], consensus.spread[a], consensus.spread[b],
                        thresholds.noise_floor),
            "normalisation": method,
            "teachers": {
                t: {"a": consensus.raw[t][a], "b": consensus.raw[t][b], "norm_a": teachers_a[t], "norm_b": teachers_b[t]}
                for t in teachers_a if t in teachers_b
            },
        }
        rows.append({"video_a": a, "video_b": b, "label": level, "prob": prob, "origin": "pseudo", "provenance": provenance})
    level_counts = {name: 0 for name in LEVELS}
    for row in rows:
        level_counts[LEVELS[row["label"]]] += 1
    counts = {"videos": len(videos), "sampled": len(pairs), "dropped_disagreement": dropped, "kept": len(rows),
              "levels": level_counts}
    return PseudoLabels(rows=rows, counts=counts, consensus=consensus)
