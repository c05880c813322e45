"""Hard-pair selection for rounds k > 0 (W2S-VQA stages): the pairs chosen are exactly the ones
the student and a teacher disagree on, or the labelled ones the student gets wrong."""

import random

import pytest

from ssvqa.pairs.hard import disagreement, disagreement_pairs, mix, student_error_pairs


def test_selector_picks_exactly_the_pairs_student_and_teacher_disagree_on():
    rng = random.Random(0)
    videos = [f"v{i:02d}" for i in range(40)]
    truth = {v: float(i) for i, v in enumerate(videos)}
    teacher = {v: 3.0 * truth[v] + 1.0 + rng.uniform(-0.05, 0.05) for v in videos}  # agrees, other scale
    candidates = [(videos[i], videos[i + 20]) for i in range(20)]  # each video in one candidate pair
    rng.shuffle(candidates)
    student = dict(truth)
    disputed = [candidates[3], candidates[11]]  # the student orders these two pairs the other way round
    for a, b in disputed:
        student[a], student[b] = truth[b], truth[a]
    chosen = disagreement_pairs(candidates, student, {"teacher": teacher}, count=20, min_disagreement=0.1)
    assert sorted(c.pair for c in chosen) == sorted(disputed)  # exactly those
    assert all(c.reason == "disagreement" and c.figures["teacher"] == "teacher" for c in chosen)
    assert all(c.figures["student_gap"] * c.figures["teacher_gap"] < 0 for c in chosen)
    assert {frozenset(c.pair) for c in disagreement_pairs(candidates, student, {"teacher": teacher}, count=2)} == \
        {frozenset(p) for p in disputed}
    # with two teachers, the one that disagrees is named
    chosen = disagreement_pairs(candidates, student, {"agrees": dict(student), "teacher": teacher}, count=2)
    assert {c.figures["teacher"] for c in chosen} == {"teacher"}
    # a student that agrees with the teacher yields no pair above the threshold
    assert disagreement_pairs(candidates, truth, {"teacher": teacher}, count=5, min_disagreement=0.1) == []


def test_disagreement_counts_denied_gaps_both_ways():
    assert disagreement(1.0, 1.0) == 0.0
    assert disagreement(2.0, 0.0) == disagreement(0.0, 2.0) == 2.0  # one asserts a gap the other denies
    assert disagreement(1.0, -1.0) == 2.0 > disagreement(1.0, 0.0)  # the other way round is worse


def test_student_errors_come_first_then_low_margins():
    pairs = [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("i", "j")]
    preference = [0.9, 0.2, 0.55, 0.6, 0.5]
    prob = [1.0, 1.0, 1.0, 0.0, 0.5]  # the last has no direction: never a candidate
    chosen = student_error_pairs(pairs, preference, prob, count=3)
    assert [c.pair for c in chosen] == [("c", "d"), ("g", "h"), ("e", "f")]
    assert [c.figures["wrong"] for c in chosen] == [True, True, False]
    only_wrong = student_error_pairs(pairs, preference, prob, count=10, max_margin=0.0)
    assert [c.pair for c in only_wrong] == [("c", "d"), ("g", "h")]
    with pytest.raises(ValueError):
        student_error_pairs(pairs, preference[:2], prob, count=1)


def test_mix_fills_the_budget_with_marked_random_pairs():
    candidates = [(f"a{i}", f"b{i}") for i in range(10)]
    hard = student_error_pairs(candidates[:3], [0.1, 0.2, 0.3], [1.0, 1.0, 1.0], count=3)
    chosen = mix(hard, candidates, total=6, seed=1)
    assert len(chosen) == 6 and [c.reason for c in chosen] == ["student_error"] * 3 + ["random"] * 3
    assert len({c.pair for c in chosen}) == 6
    assert chosen[3].provenance() == {"selected": "random"}
    assert mix(hard, candidates, total=6, seed=1) == chosen
