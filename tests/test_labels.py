"""Labels from teacher scores: normalisation, combination, levels, disagreement, pair sampling,
and the must-show: pseudo labels from the classical teacher agree with hidden quality."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from statistics import NormalDist

import pytest

from ssvqa.annotators import ClassicalAnnotator
from ssvqa.labels import LEVELS, SIMILAR, LevelThresholds, level_prob, mirror_level, pair_level, pair_z
from ssvqa.pseudo_labels import align_teachers, combine_teachers, label_pairs, normalise_scores, sample_pairs, teachers_disagree
from test_annotators import make_hidden_quality_set  # the shared hidden-quality video set

# ----------------------------------------------------------------------------- normalisation


def test_rank_normalisation_maps_uniform_ranks_through_the_normal_quantile():
    scores = {f"v{i}": float(s) for i, s in enumerate([3, 100, -7, 42, 0.5])}
    z = normalise_scores(scores, "rank")
    ordered = sorted(scores, key=scores.get)
    assert [z[v] for v in ordered] == sorted(z.values())  # order kept
    expected = [NormalDist().inv_cdf((rank - 0.5) / 5) for rank in range(1, 6)]
    assert [z[v] for v in ordered] == pytest.approx(expected)
    assert sum(z.values()) == pytest.approx(0.0, abs=1e-12)
    # any monotone rescaling of a teacher gives the same normalised scores
    assert normalise_scores({k: math.exp(v / 10) for k, v in scores.items()}) == pytest.approx(z)


def test_rank_normalisation_gives_ties_one_value_and_zscore_keeps_spacing():
    z = normalise_scores({"a": 1.0, "b": 1.0, "c": 2.0, "d": 0.0})
    assert z["a"] == z["b"] == pytest.approx(0.0)
    assert z["c"] == -z["d"] > 0
    standard = normalise_scores({"a": 1.0, "b": 2.0, "c": 6.0}, "zscore")
    values = list(standard.values())
    assert statistics.fmean(values) == pytest.approx(0.0, abs=1e-12)
    assert statistics.pstdev(values) == pytest.approx(1.0)
    assert (standard["c"] - standard["b"]) == pytest.approx(4 * (standard["b"] - standard["a"]))
    assert normalise_scores({"a": 5.0, "b": 5.0}, "zscore") == {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match="method"):
        normalise_scores({"a": 1.0}, "minmax")
    with pytest.raises(ValueError, match="finite"):
        normalise_scores({"a": math.nan})


def test_combination_is_the_weighted_mean_and_spread_the_std_across_teachers():
    teachers = {"t1": {"a": 1.0, "b": 2.0, "c": 3.0}, "t2": {"a": 30.0, "b": 10.0, "c": 20.0}}
    consensus = combine_teachers(teachers, method="rank")
    n1, n2 = normalise_scores(teachers["t1"]), normalise_scores(teachers["t2"])
    for video in "abc":
        assert consensus.score[video] == pytest.approx((n1[video] + n2[video]) / 2)
        assert consensus.spread[video] == pytest.approx(abs(n1[video] - n2[video]) / 2)
    weighted = combine_teachers(teachers, method="rank", weights={"t1": 3.0, "t2": 1.0})
    assert weighted.score["a"] == pytest.approx((3 * n1["a"] + n2["a"]) / 4)
    # teachers that agree have no spread; one teacher gets the documented fallback
    assert combine_teachers({"t1": teachers["t1"], "copy": teachers["t1"]}, method="rank").spread == pytest.approx({v: 0.0 for v in "abc"})
    alone = combine_teachers({"t1": teachers["t1"]}, method="rank", single_teacher_spread=0.3)
    assert alone.spread == {v: 0.3 for v in "abc"} and alone.score == pytest.approx(n1)
    # a video only one teacher scored gets the fallback too
    partial = combine_teachers({"t1": {**teachers["t1"], "d": 9.0}, "t2": teachers["t2"]}, method="rank")
    assert partial.spread["d"] == 0.5


# ----------------------------------------------------------------------------- levels


@pytest.mark.parametrize(
    "z,level",
    [(0.0, "similar"), (0.99, "similar"), (-0.99, "similar"), (1.01, "better"), (-1.01, "worse"),
     (1.99, "better"), (-1.99, "worse"), (2.01, "superior"), (-2.01, "inferior"), (7.0, "superior")],
)
def test_default_thresholds_map_the_standardised_gap_as_documented(z, level):
    spread_a, spread_b, floor = 0.3, 0.4, LevelThresholds().noise_floor
    scale = math.sqrt(spread_a**2 + spread_b**2 + floor**2)
    got, prob = pair_level(1.0, 1.0 + z * scale, spread_a, spread_b)
    assert LEVELS[got] == level
    assert prob == pytest.approx(NormalDist().cdf(z))
    # the mirrored pair gets the mirrored level and the complementary probability
    mirrored, mirrored_prob = pair_level(1.0 + z * scale, 1.0, spread_b, spread_a)
    assert mirrored == mirror_level(got) and mirrored_prob == pytest.approx(1 - prob)


def test_thresholds_are_configurable_and_validated():
    custom = LevelThresholds(similar=0.1, superior=0.5, noise_floor=0.0)
    assert LEVELS[pair_level(0.0, 0.005, 0.1, 0.0, custom)[0]] == "similar"  # z = 0.05
    assert LEVELS[pair_level(0.0, 0.03, 0.1, 0.0, custom)[0]] == "better"  # z = 0.3
    assert LEVELS[pair_level(0.0, 0.06, 0.1, 0.0, custom)[0]] == "superior"  # z = 0.6
    assert LEVELS[pair_level(0.0, 0.06, 0.1, 0.0)[0]] == "similar"  # the same gap, default thresholds
    # a larger spread turns the same gap into "similar"
    assert pair_level(0.0, 0.6, 10.0, 10.0, custom)[0] == SIMILAR  # z = 0.04
    # zero uncertainty: any gap is decisive and prob is certain
    assert pair_level(0.0, 1e-9, 0.0, 0.0, custom) == (LEVELS.index("superior"), 1.0)
    assert pair_z(0.0, 0.0, 0.0, 0.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        LevelThresholds(similar=2.0, superior=1.0)
    with pytest.raises(ValueError):
        LevelThresholds(noise_floor=-1.0)


def test_probability_agrees_with_the_level_weight_direction():
    rng = random.Random(0)
    for _ in range(200):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        level, prob = pair_level(a, b, abs(rng.gauss(0, 0.5)), abs(rng.gauss(0, 0.5)))
        if level != SIMILAR:
            assert (prob > 0.5) == (level_prob(level) > 0.5)


# ----------------------------------------------------------------------------- disagreement


def test_teachers_disagree_only_on_opposite_signs_beyond_the_threshold():
    a = {"t1": 0.0, "t2": 0.0, "t3": 0.0}
    assert teachers_disagree(a, {"t1": 0.6, "t2": -0.6, "t3": 0.0})
    assert not teachers_disagree(a, {"t1": 0.6, "t2": -0.4, "t3": 0.0})  # t2 within the threshold
    assert not teachers_disagree(a, {"t1": 0.6, "t2": 2.0, "t3": 0.1})  # same direction
    assert teachers_disagree(a, {"t1": 0.3, "t2": -0.3, "t3": 0.0}, threshold=0.2)
    assert not teachers_disagree({"t1": 0.0}, {"t1": 5.0})  # one teacher cannot disagree


def test_disagreement_filter_drops_exactly_the_conflicting_pairs():
    rng = random.Random(3)
    videos = [f"v{i:02d}" for i in range(40)]
    t1 = {v: rng.gauss(0, 1) for v in videos}
    t2 = {v: t1[v] + rng.gauss(0, 1.0) for v in videos}  # a teacher that often but not always agrees
    teachers = {"t1": t1, "t2": t2}
    kept = label_pairs(teachers, method="rank", disagreement=0.5, max_pairs_per_video=5, seed=1)
    everything = label_pairs(teachers, method="rank", disagreement=None, max_pairs_per_video=5, seed=1)
    norm = {name: normalise_scores(scores) for name, scores in teachers.items()}
    conflicting = {
        (row["video_a"], row["video_b"])
        for row in everything.rows
        if (norm["t1"][row["video_b"]] - norm["t1"][row["video_a"]]) * (norm["t2"][row["video_b"]] - norm["t2"][row["video_a"]]) < 0
        and min(abs(norm[t][row["video_b"]] - norm[t][row["video_a"]]) for t in norm) > 0.5
    }
    kept_pairs = {(row["video_a"], row["video_b"]) for row in kept.rows}
    assert conflicting  # the test means something
    assert kept_pairs == {(row["video_a"], row["video_b"]) for row in everything.rows} - conflicting
    assert kept.counts["dropped_disagreement"] == len(conflicting)
    assert kept.counts["kept"] + kept.counts["dropped_disagreement"] == kept.counts["sampled"] == everything.counts["kept"]
    assert sum(kept.counts["levels"].values()) == kept.counts["kept"]


def test_label_rows_carry_provenance_and_consistent_levels():
    labels = label_pairs({"t1": {"a": 1.0, "b": 5.0, "c": 3.0}, "t2": {"a": 2.0, "b": 9.0, "c": 4.0}},
                         max_pairs_per_video=2, disagreement=None)
    assert labels.rows
    for row in labels.rows:
        provenance = row["provenance"]
        assert row["origin"] == "pseudo" and 0.0 <= row["prob"] <= 1.0
        assert set(provenance["teachers"]) == {"t1", "t2"}
        assert provenance["teachers"]["t1"]["a"] == {"a": 1.0, "b": 5.0, "c": 3.0}[row["video_a"]]
        level, prob = pair_level(provenance["score_a"], provenance["score_b"], provenance["spread_a"], provenance["spread_b"])
        assert (level, prob) == (row["label"], row["prob"])


# ----------------------------------------------------------------------------- sampling


def test_sampling_respects_the_bound_and_draws_from_every_gap_stratum():
    rng = random.Random(0)
    videos = [f"v{i:03d}" for i in range(60)]
    scores = {v: rng.gauss(0, 1) for v in videos}
    pairs = sample_pairs(videos, scores, max_pairs_per_video=3, num_strata=3, seed=5)
    uses = {}
    for a, b in pairs:
        assert a != b
        uses[a], uses[b] = uses.get(a, 0) + 1, uses.get(b, 0) + 1
    assert max(uses.values()) <= 3
    assert len(pairs) >= 0.8 * len(videos) * 3 / 2  # the bound, not the sampler, limits the count
    assert len({frozenset(p) for p in pairs}) == len(pairs)  # no pair twice
    # terciles of every candidate gap: the sample draws about a third from each
    gaps = sorted(abs(scores[a] - scores[b]) for a, b in itertools.combinations(videos, 2))
    low, high = gaps[len(gaps) // 3], gaps[2 * len(gaps) // 3]
    per_stratum = [0, 0, 0]
    for a, b in pairs:
        gap = abs(scores[a] - scores[b])
        per_stratum[0 if gap < low else 1 if gap < high else 2] += 1
    assert min(per_stratum) >= 0.25 * len(pairs), per_stratum
    # both orders are used, and the sample is reproducible
    assert 0.3 < sum(scores[b] > scores[a] for a, b in pairs) / len(pairs) < 0.7
    assert sample_pairs(videos, scores, max_pairs_per_video=3, seed=5) == pairs
    assert sample_pairs(videos, scores, max_pairs_per_video=3, seed=6) != pairs
    assert len(sample_pairs(videos, scores, max_pairs_per_video=3, num_pairs=10, seed=5)) == 10


def test_sampling_honours_content_and_groups():
    videos = [f"c{c}-v{i}" for c in range(6) for i in range(4)]
    scores = {v: float(k) for k, v in enumerate(videos)}
    content = {v: v.split("-")[0] for v in videos}
    split = {v: "test" if content[v] in ("c0", "c1") else "train" for v in videos}
    across = sample_pairs(videos, scores, content_ids=content, groups=split, max_pairs_per_video=4)
    assert across and all(content[a] != content[b] and split[a] == split[b] for a, b in across)
    within = sample_pairs(videos, scores, content_ids=content, same_content=True, groups=content, max_pairs_per_video=4)
    assert within and all(content[a] == content[b] for a, b in within)
    # unscored videos are left out
    assert all("c0-v0" not in pair for pair in sample_pairs(videos, {v: s for v, s in scores.items() if v != "c0-v0"}))


def test_sampling_many_videos_uses_random_candidates_and_keeps_the_bound():
    rng = random.Random(1)
    videos = list(range(3000))  # 4.5 M possible pairs: candidates are sampled
    scores = {v: rng.random() for v in videos}
    pairs = sample_pairs(videos, scores, max_pairs_per_video=2, max_candidates=20_000, seed=0)
    counts = {}
    for a, b in pairs:
        counts[a], counts[b] = counts.get(a, 0) + 1, counts.get(b, 0) + 1
    assert max(counts.values()) <= 2 and len(pairs) > 2000


# ----------------------------------------------------------------------------- must-show


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    """The hidden-quality set and, per video, the classical teacher's features (measured once)."""
    rows = make_hidden_quality_set(tmp_path_factory.mktemp("hidden"))
    teacher = ClassicalAnnotator()
    features = {row["path"]: teacher.features(row["path"]) for row in rows}
    return rows, features


def truth_agreement(labels, truth: dict[str, int]) -> tuple[float, int]:
    """Share of labelled pairs (level not ``similar``, hidden levels differ) whose direction is right."""
    right = total = 0
    for row in labels.rows:
        level_a, level_b = truth[row["video_a"]], truth[row["video_b"]]
        if row["label"] == SIMILAR or level_a == level_b:
            continue
        total += 1
        right += (row["label"] > SIMILAR) == (level_b < level_a)
    return right / total, total


def test_pseudo_labels_from_teachers_agree_with_hidden_quality(hidden):
    rows, features = hidden
    truth = {row["path"]: row["level"] for row in rows}
    source = {row["path"]: row["source"] for row in rows}
    # The truth only orders versions of one source, so pairs stay within a source here.
    options = dict(groups=source, content_ids=source, same_content=True, max_pairs_per_video=8, seed=0)
    classical = {path: ClassicalAnnotator().combine(f) for path, f in features.items()}

    alone = label_pairs({"classical": classical}, **options)
    agreement, pairs = truth_agreement(alone, truth)
    print(f"\nclassical alone: agreement {agreement:.3f} on {pairs} decided pairs; counts {alone.counts}")
    assert agreement > 0.75
    assert alone.counts["levels"]["similar"] < alone.counts["kept"] / 2  # it mostly decides

    # A second classical teacher on a subset of the measures: weaker, so it dilutes.
    subset_teacher = ClassicalAnnotator(weights={"sharpness": 1, "blockiness": 1, "bits_per_pixel": 1, "duplicate_frames": 1})
    subset = {path: subset_teacher.combine(f) for path, f in features.items()}
    subset_alone = truth_agreement(label_pairs({"subset": subset}, **options), truth)[0]
    both = truth_agreement(label_pairs({"classical": classical, "subset": subset}, **options), truth)[0]
    print(f"subset teacher alone {subset_alone:.3f}; classical + subset {both:.3f}")
    assert subset_alone > 0.6

    # A random teacher lowers agreement; dropping the pairs the teachers disagree on raises it
    # again on the pairs kept. A strong teacher (hidden level + noise) raises it. Means over seeds.
    figures = {"noisy": [], "noisy_aligned": [], "noisy_aligned_filtered": [], "noisy_filtered": [], "strong": [], "dropped": []}
    for seed in range(5):
        rng = random.Random(seed)
        noisy = {path: rng.gauss(0, 1) for path in features}
        strong = {path: -truth[path] + rng.gauss(0, 0.7) for path in features}
        # Rank normalisation with ssvqa's earlier thresholds keeps a random teacher's full weight and
        # decides many of its pairs: the filter has work to do. Under the default W2S rule the pairs
        # the filter drops are mostly ones the sigma-delta rule already calls similar (printed below);
        # the logistic alignment maps a random teacher to a near-constant.
        earlier = dict(method="rank", thresholds=LevelThresholds(similar=0.5, superior=2.0, noise_floor=0.25))
        figures["noisy"].append(truth_agreement(label_pairs({"classical": classical, "noisy": noisy}, disagreement=None, **earlier, **options), truth)[0])
        figures["noisy_aligned"].append(truth_agreement(label_pairs({"classical": classical, "noisy": noisy}, disagreement=None, **options), truth)[0])
        figures["noisy_aligned_filtered"].append(truth_agreement(label_pairs({"classical": classical, "noisy": noisy}, disagreement=0.5, **options), truth)[0])
        filtered = label_pairs({"classical": classical, "noisy": noisy}, disagreement=0.5, **earlier, **options)
        figures["noisy_filtered"].append(truth_agreement(filtered, truth)[0])
        figures["dropped"].append(filtered.counts["dropped_disagreement"] / filtered.counts["sampled"])
        figures["strong"].append(truth_agreement(label_pairs({"classical": classical, "strong": strong}, **options), truth)[0])
    means = {name: statistics.fmean(values) for name, values in figures.items()}
    print("classical + noisy {noisy:.3f} (rank, earlier thresholds; default logistic/W2S {noisy_aligned:.3f}, "
          "filtered {noisy_aligned_filtered:.3f}), same with disagreement filter {noisy_filtered:.3f} "
          "(dropped {dropped:.0%} of sampled pairs), classical + strong {strong:.3f}".format(**means))
    assert means["noisy"] < agreement - 0.05
    assert means["noisy_aligned"] > means["noisy"]  # alignment discounts a teacher that tracks nothing
    assert means["noisy_filtered"] > means["noisy"]
    assert means["strong"] > agreement


# ----------------------------------------------------------------------------- alignment (W2S-VQA)


def _four_parameter(x):
    """A monotone transform inside the 4-parameter logistic family (a teacher on another scale)."""
    return 20.0 + 60.0 / (1.0 + math.exp(-(x - 0.2) / 0.7))


def test_teachers_related_by_a_monotone_transform_give_identical_levels_after_alignment():
    rng = random.Random(7)
    videos = [f"v{i:02d}" for i in range(60)]
    t2 = {v: rng.gauss(0, 1) for v in videos}
    t1 = {v: _four_parameter(s) for v, s in t2.items()}  # the reference is a 4PL of the other teacher
    options = dict(max_pairs_per_video=4, seed=3, disagreement=None)
    aligned = label_pairs({"t1": t1, "t2": t2}, **options)
    same = label_pairs({"t1": t1, "copy": dict(t1)}, **options)
    assert [(r["video_a"], r["video_b"], r["label"]) for r in aligned.rows] == \
        [(r["video_a"], r["video_b"], r["label"]) for r in same.rows]
    assert max(aligned.consensus.spread.values()) < 1e-3
    # without alignment (z-scores keep each teacher's spacing) the transform leaves a spread
    assert max(combine_teachers({"t1": t1, "t2": t2}, method="zscore").spread.values()) > 0.05


def test_alignment_to_mos_maps_each_teacher_onto_the_mos_scale():
    rng = random.Random(8)
    videos = [f"v{i:02d}" for i in range(40)]
    teacher = {v: rng.gauss(0, 1) for v in videos}
    truth = {v: 1.0 + 4.0 * (_four_parameter(s) - 20.0) / 60.0 for v, s in teacher.items()}  # MOS on 1..5
    labelled = {v: truth[v] for v in videos[:20]}  # MOS known for half the videos
    aligned = align_teachers({"t": teacher}, reference=labelled)["t"]
    mean = statistics.fmean(labelled.values())
    std = statistics.pstdev(labelled.values())
    for video in videos:  # the unlabelled half too
        assert aligned[video] * std + mean == pytest.approx(truth[video], abs=0.05)
    with pytest.raises(ValueError, match="reference teacher"):
        align_teachers({"t": teacher}, reference="missing")


def test_w2s_level_rule_by_sigma_delta():
    # sigma per video is the teachers' spread; sigma_delta = sqrt(sa^2 + sb^2) = 0.5 here
    sa, sb = 0.3, 0.4
    assert LEVELS[pair_level(0.0, 0.5, sa, sb)[0]] == "similar"  # |gap| <= sigma_delta
    assert LEVELS[pair_level(0.0, 0.75, sa, sb)[0]] == "better"
    assert LEVELS[pair_level(0.0, -1.0, sa, sb)[0]] == "worse"  # <= 2 sigma_delta
    assert LEVELS[pair_level(0.0, 1.01, sa, sb)[0]] == "superior"
    assert LEVELS[pair_level(0.0, -1.5, sa, sb)[0]] == "inferior"
