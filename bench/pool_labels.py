"""How right are the teacher's labels and a ranker's on the demo pool's pseudo pairs?

A round's label agreement (`label_agreement` in its report) is one number for the labels it trains
on. This bench puts the two candidate labellers of round 1 side by side on the same pairs: the
teacher's labels as the pseudo-pair builder made them, and those of a trained ranker
(:func:`ssvqa.relabel.relabel_with_ranker`, both orders, as a round relabels), against the pool's
hidden quality (pairs of equal hidden quality are left out). It also prints how often each is
right about the direction alone, how many of its labels are ``similar`` (label agreement counts
them half right), and two combinations: the teacher's own preference put through the ranker's
level rule, and the mean of the two preferences.

    export PYTHONPATH=$PWD
    python bench/pool_labels.py outputs/tiny-rounds                       # round-0 ranker of that run
    python bench/pool_labels.py outputs/tiny-rounds --model outputs/tiny-rounds/round-1/model
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def agreement(levels, truths) -> float:
    """Label agreement as a round reports it: right side 1, ``similar`` 1/2, wrong side 0."""
    return sum(0.5 if level == 2 else float((level > 2) == truth) for level, truth in zip(levels, truths)) / len(truths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a demo's output_dir (its data/pseudo-pairs and data/pool/quality.csv are read)")
    parser.add_argument("--model", default=None, help="the ranker (default: RUN/round-0/model)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    from ssvqa.corpus import read_quality
    from ssvqa.labels import level_of_preference
    from ssvqa.modeling import load_ranker
    from ssvqa.pairs.dataset import load_pairs
    from ssvqa.relabel import relabel_with_ranker

    run = Path(args.run)
    folder = args.model or str(run / "round-0" / "model")
    hidden = read_quality(run / "data" / "pool" / "quality.csv")
    with tempfile.TemporaryDirectory() as cache:
        pairs = load_pairs(str(run / "data" / "pseudo-pairs"), cache_dir=cache)["train"]
        model, processor = load_ranker(folder)  # with the sampling it was trained with, as a round relabels
        ranked = relabel_with_ranker(pairs, model, processor, round=1, batch_size=8)
        rows = []
        for level, prob, provenance, r_level, r_prob in zip(pairs["label"], pairs["prob"], pairs["provenance"],
                                                            ranked["label"], ranked["prob"]):
            details = json.loads(provenance)
            a, b = (Path(details[key]).name for key in ("source_a", "source_b"))
            if a in hidden and b in hidden and hidden[a] != hidden[b]:
                rows.append((hidden[b] > hidden[a], level, prob, r_level, r_prob))
    if not rows:
        raise SystemExit(f"no pseudo pair of {run} has two videos of different hidden quality")
    truth = [row[0] for row in rows]
    figures = {
        "pairs": len(rows),
        "teacher": agreement([row[1] for row in rows], truth),
        "teacher_direction": sum((row[2] > 0.5) == t for row, t in zip(rows, truth)) / len(rows),
        "teacher_similar_share": sum(row[1] == 2 for row in rows) / len(rows),
        "ranker": agreement([row[3] for row in rows], truth),
        "ranker_direction": sum((row[4] > 0.5) == t for row, t in zip(rows, truth)) / len(rows),
        "ranker_similar_share": sum(row[3] == 2 for row in rows) / len(rows),
        "teacher_by_ranker_rule": agreement([level_of_preference(row[2]) for row in rows], truth),
        "mean_preference": agreement([level_of_preference((row[2] + row[4]) / 2) for row in rows], truth),
    }
    print(", ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}" for key, value in figures.items()))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
