"""Relabelling pairs with a trained ranker (ssvqa.relabel.relabel_with_ranker), and label agreement."""

from __future__ import annotations

import json

import datasets
import pytest

from ssvqa.labels import LEVEL_WEIGHTS
from ssvqa.modeling import compare, load_ranker
from ssvqa.pairs.dataset import load_pairs
from ssvqa.prompts import expected_preference
from ssvqa.relabel import relabel_with_ranker
from ssvqa.rounds.report import label_agreement
from ssvqa.testing import save_tiny_model
from ssvqa.video import decode_frames


@pytest.fixture(scope="module")
def ranker(tmp_path_factory):
    folder = save_tiny_model(tmp_path_factory.mktemp("model") / "qwen", "qwen2_5_vl")
    return load_ranker(str(folder))


def test_relabel_asks_both_orders_and_keeps_the_old_label(ranker, pair_dataset_dir, tmp_path):
    model, processor = ranker
    pairs = load_pairs(pair_dataset_dir, cache_dir=tmp_path / "cache")["train"].select(range(6))
    new = relabel_with_ranker(pairs, model, processor, round=3, num_frames=4, name="ranker-3", batch_size=4)
    assert len(new) == 6 and new.features == pairs.features and set(new["origin"]) == {"relabel"}

    raw = pairs.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
    for row, old, prob, level, provenance in zip(raw, pairs, new["prob"], new["label"], new["provenance"]):
        a = decode_frames(row["video_a"]["bytes"], num_frames=4, max_pixels=112 * 112, multiple=28)
        b = decode_frames(row["video_b"]["bytes"], num_frames=4, max_pixels=112 * 112, multiple=28)
        forward, backward = expected_preference(compare(model, processor, [a, b], [b, a])).tolist()
        assert prob == pytest.approx((forward + 1 - backward) / 2, abs=1e-4)
        assert LEVEL_WEIGHTS[level] == min(LEVEL_WEIGHTS, key=lambda w: abs(w - prob))
        details = json.loads(provenance)
        assert details["round"] == 3 and details["annotator"] == "ranker-3"
        assert details["previous_origin"] == old["origin"] and details["previous_prob"] == pytest.approx(old["prob"])
        assert details["distortion"] == json.loads(old["provenance"])["distortion"]  # the builder's provenance stays

    # Asking about the mirrored pairs gives the mirrored answers: the relabelling has no position bias.
    mirrored = pairs.rename_columns({"video_a": "video_b", "video_b": "video_a"}).select_columns(list(pairs.features))
    again = relabel_with_ranker(mirrored, model, processor, round=3, num_frames=4, batch_size=4)
    assert [p + q for p, q in zip(new["prob"], again["prob"])] == pytest.approx([1.0] * 6, abs=1e-4)

    confident = relabel_with_ranker(pairs, model, processor, round=3, num_frames=4, drop_below_confidence=1.0)
    assert len(confident) == 0  # an untrained model is never fully sure
    with pytest.raises(ValueError, match="drop_below_confidence"):
        relabel_with_ranker(pairs, model, processor, round=3, drop_below_confidence=0.2)


def test_label_agreement_counts_direction_and_half_for_similar():
    hidden = {"a.mp4": 100.0, "b.mp4": 50.0, "c.mp4": 50.0, "d.mp4": 0.0}
    rows = [  # (first, second, level): levels are about the second video
        ("a.mp4", "b.mp4", 1, "pseudo"),   # second worse: right
        ("d.mp4", "a.mp4", 4, "pseudo"),   # second better: right
        ("b.mp4", "d.mp4", 3, "pseudo"),   # says better, truth worse: wrong
        ("a.mp4", "d.mp4", 2, "pseudo"),   # similar: half
        ("b.mp4", "c.mp4", 4, "pseudo"),   # equal hidden quality: left out
        ("a.mp4", "x.mp4", 0, "pseudo"),   # unknown video: left out
        ("d.mp4", "b.mp4", 0, "distortion"),  # other origin: left out when origins are given
    ]
    dataset = datasets.Dataset.from_dict({
        "origin": [r[3] for r in rows], "label": [r[2] for r in rows],
        "provenance": [json.dumps({"source_a": f"pool/{r[0]}", "source_b": r[1]}) for r in rows],
    })
    assert label_agreement(dataset, hidden, origins={"pseudo"}) == {"label_agreement": 2.5 / 4, "agreement_pairs": 4}
    assert label_agreement(dataset, hidden)["agreement_pairs"] == 5
    assert label_agreement(dataset, {}) is None
