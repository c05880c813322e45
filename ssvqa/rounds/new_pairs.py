"""New pairs for round ``k > 0``: hard pairs from the unlabeled pool and fresh synthetic ones.

W2S-VQA's stages 2 and 3 grow the data with pairs the current ranker finds hard
(:mod:`ssvqa.pairs.hard`). :func:`make_new_pairs` draws ``new_pairs`` of them for a round:

* ``hard_fraction`` of them are hard, the rest random candidates of the same pool (``0`` gives the
  random control of the ablation, with the same count);
* of the hard ones, ``disagreement_share`` are **student-teacher disagreement** pairs: candidates
  sampled from the pool (``pool``, an even mix of small, medium and large teacher gaps,
  :func:`ssvqa.pseudo_labels.sample_pairs`), scored per video by the previous round's ranker (its anchors,
  Bradley-Terry MAP) and by the teachers (``pool_teachers``), ranked by
  :func:`~ssvqa.pairs.hard.disagreement_pairs`;
* the others are **synthetic pairs the student gets wrong**: fresh distortion pairs of
  ``synthetic_sources_per_round`` sources drawn from ``synthetic_sources`` (two distortion types
  each, rendered for this round with seed ``seed + 1000 k``), asked of the previous
  ranker in both orders and ranked by :func:`~ssvqa.pairs.hard.student_error_pairs`. They keep
  their exact labels (origin ``distortion``).

Who labels the pool pairs (hard and random): ``new_pair_labels: ranker`` uses the previous round's
ranker alone (its per-video scores, standardised, through :func:`ssvqa.labels.pair_level`, as
pseudo labels are made); ``ranker+teachers`` aligns the teachers to the ranker with the
4-parameter logistic and combines them (:func:`ssvqa.pseudo_labels.combine_teachers`), as W2S-VQA's
improved annotator does. Their origin is ``relabel`` (a ranker labelled them), so later rounds
keep their labels. Every row's provenance says why it was chosen (``selected``: ``disagreement``,
``student_error`` or ``random``, with the figures), the round, and the labeller.

The new pairs are saved as ``round-k/new-pairs`` (a pair dataset with its card); round ``k``
trains on the earlier rounds' data plus the new pairs of rounds ``1..k`` (the paper's stages grew
500k -> 600k -> 700k pairs).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ssvqa.rounds.arguments import RoundArguments, round_dir

NEW_PAIRS_DIR = "new-pairs"


def plan(args: RoundArguments, has_synthetic: bool) -> dict[str, int]:
    """How many pairs of each kind: ``{"disagreement": n, "student_error": m, "random": r}``.
    Without synthetic sources every hard pair is a disagreement pair."""
    hard = round(args.new_pairs * args.hard_fraction)
    errors = hard - round(hard * args.disagreement_share) if has_synthetic else 0
    return {"disagreement": hard - errors, "student_error": errors, "random": args.new_pairs - hard}


def earlier_new_pairs(root: Path, k: int) -> list[Path]:
    """The new-pair folders of rounds ``1..k-1`` (those that made some)."""
    folders = [round_dir(root, j) / NEW_PAIRS_DIR for j in range(1, k)]
    return [folder for folder in folders if (folder / "README.md").exists()]


def make_new_pairs(args: RoundArguments, training_args, model, processor, root: Path, existing, state) -> Any:
    """This round's new pairs as a ``datasets.Dataset`` (the same on every process), saved as
    ``round-k/new-pairs`` by the main process; None when ``new_pairs`` is 0. Every process calls it:
    the teachers, the student's scores and its answers on the synthetic pairs are split across them.
    ``existing``: the round's training pairs (pool pairs already in them are not drawn again)."""
    import datasets

    from ssvqa.pairs.card import DatasetCardInfo
    from ssvqa.pairs.dataset import load_pairs, save_pair_splits, write_pair_dataset

    if not args.new_pairs:
        return None
    here = round_dir(root, args.round)
    counts = plan(args, has_synthetic=bool(args.synthetic_sources))
    if state.is_main_process:
        print(f"[data] round {args.round}: {args.new_pairs} new pairs ({', '.join(f'{v} {k}' for k, v in counts.items())})",
              flush=True)
    parts = []
    pool_rows: list = []
    if counts["disagreement"] + counts["random"]:
        pool_rows = _pool_pairs(args, training_args, model, processor, root, existing, counts, state)
        if state.is_main_process and pool_rows:
            write_pair_dataset(pool_rows, here / "candidates" / "pool-pairs", test_fraction=0.0,
                               card=DatasetCardInfo(pretty_name="pool pairs (intermediate)", builder="ssvqa.rounds.new_pairs",
                                                    arguments={}, method="intermediate file of a round"))
        state.wait_for_everyone()
        if pool_rows:
            with state.main_process_first():  # one process fills the datasets cache, the others read it
                parts.append(load_pairs(here / "candidates" / "pool-pairs")["train"])
    if counts["student_error"]:
        parts.append(_synthetic_pairs(args, training_args, model, processor, here, counts["student_error"], state))
    parts = [part.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))
             for part in parts if len(part)]
    new = datasets.concatenate_datasets(parts) if parts else None
    if state.is_main_process and new is not None:
        card = DatasetCardInfo(
            pretty_name=f"ssvqa round {args.round} new pairs", builder="recipes/round.py (ssvqa.rounds.new_pairs)",
            arguments={k: getattr(args, k) for k in ("round", "new_pairs", "hard_fraction", "disagreement_share", "pool",
                                                      "pool_teachers", "synthetic_sources", "new_pair_labels")},
            method=__doc__.split("\n\n", 1)[1], tags=[f"round-{args.round}", "hard-pairs"],
        )
        save_pair_splits({"train": new}, here / NEW_PAIRS_DIR, card=card)
    state.wait_for_everyone()
    return new


def new_pair_figures(here: Path, hidden: dict[str, float] | None = None) -> dict[str, Any]:
    """A round's new pairs for its report: how many of each kind (``selected``), and how often the
    pool pairs' labels agree with a hidden quality (:func:`ssvqa.rounds.report.label_agreement`)."""
    from collections import Counter

    from ssvqa.pairs.dataset import load_pairs
    from ssvqa.rounds.report import label_agreement

    if not (here / NEW_PAIRS_DIR / "README.md").exists():
        return {}
    new = load_pairs(here / NEW_PAIRS_DIR)["train"]
    figures: dict[str, Any] = {"new_pairs": dict(Counter(json.loads(p).get("selected") for p in new["provenance"]))}
    agreement = label_agreement(new, hidden, origins={"relabel"}) if hidden else None
    if agreement:
        figures["new_pair_label_agreement"] = agreement["label_agreement"]
    return figures


def _pool_pairs(args, training_args, model, processor, root: Path, existing, counts: dict[str, int], state) -> list:
    """Disagreement and random pairs of the pool, labelled (see the module doc), as ``PairRow``s."""
    from ssvqa.annotators.base import annotate
    from ssvqa.labels import pair_level
    from ssvqa.pseudo_labels import combine_teachers, sample_pairs
    from ssvqa.pairs.dataset import PairRow
    from ssvqa.pairs.hard import disagreement_pairs, mix
    from ssvqa.pairs.pseudo import make_teacher
    from ssvqa.pairs.sources import collect_inputs
    from ssvqa.sampling import VideoSampling
    from ssvqa.scorer import ANCHORS_FILE, QualityScorer

    if not args.pool:
        raise SystemExit("new_pairs needs a pool of unlabeled videos (pool: a folder or a list file)")
    previous = round_dir(root, args.round - 1) / "model"
    if not (previous / ANCHORS_FILE).exists():
        raise SystemExit(f"new_pairs scores the pool with the previous ranker's anchors, and {previous} has none "
                         "(set anchors so that every round saves them)")
    with state.main_process_first():
        found = collect_inputs(args.pool, work_dir=root / "data" / ".pool-inputs")
    items = {str(item.path): item.name for item in found.items}
    videos = sorted(items)
    main = state.is_main_process
    teachers, hashes = {}, {}
    for spec in args.pool_teachers:
        result = annotate(videos, make_teacher(spec), cache_dir=root / "data" / "teacher-scores", accelerator=state, progress=main)
        teachers[spec] = result.scores
        hashes.update(result.hashes)
    scorer = QualityScorer.from_pretrained(model, previous, processor=processor, sampling=VideoSampling.from_pretrained(previous),
                                           batch_size=training_args.per_device_eval_batch_size, mirrored=True, processes=state)
    if main:
        print(f"[data] the ranker of round {args.round - 1} scores the {len(videos)} pool videos", flush=True)
    student, _ = scorer.score_with_errors(videos, progress=main)
    usable = [v for v in videos if v in student and all(v in scores for scores in teachers.values())]
    consensus = combine_teachers({name: {v: s[v] for v in usable} for name, s in teachers.items()})
    taken = {frozenset(_names(provenance)) for provenance in existing["provenance"]}
    candidates = [(a, b) for a, b in sample_pairs(usable, consensus.score, max_pairs_per_video=args.candidate_pairs_per_video,
                                                  seed=training_args.seed + args.round)
                  if frozenset((Path(a).name, Path(b).name)) not in taken]
    hard = disagreement_pairs(candidates, student, {name: {v: s[v] for v in usable} for name, s in teachers.items()},
                              counts["disagreement"])
    chosen = mix(hard, candidates, counts["disagreement"] + counts["random"], seed=training_args.seed + args.round)
    scores = {"ranker": {v: student[v] for v in usable}}
    if args.new_pair_labels == "ranker+teachers":
        scores.update({name: {v: s[v] for v in usable} for name, s in teachers.items()})
    labeller = combine_teachers(scores, method="logistic", reference="ranker")
    rows = []
    for choice in chosen:
        a, b = choice.pair
        level, prob = pair_level(labeller.score[a], labeller.score[b], labeller.spread[a], labeller.spread[b])
        provenance = {
            **choice.provenance(), "round": args.round, "labeller": f"{args.new_pair_labels} (round {args.round - 1})",
            "source_a": items[a], "source_b": items[b], "sha256_a": hashes[a], "sha256_b": hashes[b],
            "student_a": student[a], "student_b": student[b],
            "teachers": {name: {"a": s[a], "b": s[b]} for name, s in teachers.items()},
        }
        rows.append(PairRow(a, b, level, prob, "relabel", f"{hashes[a][:16]}+{hashes[b][:16]}", provenance, split="train"))
    return rows


def _synthetic_pairs(args, training_args, model, processor, here: Path, count: int, state):
    """Fresh distortion pairs of ``synthetic_sources``, the ``count`` the previous ranker gets most wrong."""
    from ssvqa.pairs import build_distortion_pairs, load_pairs
    from ssvqa.pairs.hard import student_error_pairs
    from ssvqa.pairs.sources import collect_inputs
    from ssvqa.relabel import relabel_with_ranker

    folder = here / "candidates" / "synthetic"
    with state.main_process_first():
        if state.is_main_process and not (folder / "README.md").exists():
            found = collect_inputs(args.synthetic_sources, work_dir=folder.parent / ".synthetic-inputs")
            rng = random.Random(training_args.seed + 1000 * args.round)
            sources = sorted(rng.sample([str(item.path) for item in found.items], min(args.synthetic_sources_per_round, len(found.items))))
            print(f"[data] fresh distortion pairs of {len(sources)} sources of {args.synthetic_sources} -> {folder}", flush=True)
            max_pixels = {"max_pixels": args.synthetic_max_pixels} if args.synthetic_max_pixels else {}
            build_distortion_pairs(sources, folder, types=args.synthetic_types or None, types_per_source=2, test_fraction=0.0,
                                   seed=training_args.seed + 1000 * args.round, **max_pixels)
        fresh = load_pairs(folder)["train"]
    # the ranker's answer on each fresh pair, both orders; "candidate" keeps each row's place
    indexed = fresh.add_column("candidate", list(range(len(fresh))))
    answered = relabel_with_ranker(indexed, model, processor, round=args.round, batch_size=training_args.per_device_eval_batch_size,
                                   name=f"ranker-round-{args.round - 1}", progress=state.is_main_process, processes=state)
    exact = fresh["prob"]
    ranked = student_error_pairs([(i,) for i in answered["candidate"]], answered["prob"],
                                 [exact[i] for i in answered["candidate"]], count)
    rows = fresh.select([choice.pair[0] for choice in ranked])  # as rendered: exact labels, origin distortion
    provenance = [json.dumps({**json.loads(row), **choice.provenance(), "round": args.round}, sort_keys=True)
                  for row, choice in zip(rows["provenance"], ranked)]
    rows = rows.remove_columns(["provenance"]).add_column("provenance", provenance, feature=fresh.features["provenance"])
    return rows.select_columns(list(fresh.features))


def _names(provenance: str) -> tuple[str, str]:
    details = json.loads(provenance) if provenance else {}
    return tuple(Path(str(details.get(key, ""))).name for key in ("source_a", "source_b"))
