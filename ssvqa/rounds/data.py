"""A round's training pairs: the named datasets, relabelled by the previous round's ranker, and new pairs.

Round 0 trains on the pairs as their builders labelled them; round ``k > 0`` on the same pairs with
those of ``relabel_origins`` relabelled by the ranker of round ``k - 1``
(:func:`ssvqa.relabel.relabel_with_ranker`, every process relabelling its share), plus the new
pairs of rounds ``1..k`` (:mod:`ssvqa.rounds.new_pairs`, with ``new_pairs > 0``). The pairs are
saved as ``round-k/dataset`` with their card before training, so a resumed round reuses them.

With ``relabel_when: better`` a round relabels only with a ranker shown to label better than the
source of the current labels (:func:`relabel_decision`): both are measured on the same held-out
exact-label pairs (labels known by construction, never the hidden quality), the ranker by its
round's held-out pair accuracy, the teachers by how often their scores order the two videos the
right way. A ranker that is not better leaves round k-1's pairs and labels as they are. W2S-VQA
relabels every round; a weak ranker then lowers the labels' quality (the tiny demo: label
agreement 0.73 with the teacher, 0.41 after relabelling by its round-0 ranker).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ssvqa.io import atomic_write_bytes, atomic_write_json
from ssvqa.rounds.arguments import RoundArguments, round_dir
from ssvqa.rounds.new_pairs import earlier_new_pairs, make_new_pairs

RELABEL_STATS = "relabel_stats.json"  # round k > 0: comparisons each process ran while relabelling


def load_round_pairs(args: RoundArguments, cache_dir: Path):
    """All named pair datasets, concatenated per split: ``{"train": ..., "test": ...}``."""
    import datasets

    from ssvqa.pairs.dataset import load_pairs

    splits: dict[str, list] = {}
    for name in args.pair_datasets:
        loaded = load_pairs(name, revision=args.dataset_revision, cache_dir=cache_dir)
        for split, dataset in loaded.items():
            splits.setdefault(split, []).append(_as_paths(dataset))
    if "train" not in splits:
        raise ValueError(f"no train split in {args.pair_datasets}")
    return {split: datasets.concatenate_datasets(parts) for split, parts in splits.items()}


def _as_paths(dataset):
    """Video columns as ``{"path", "bytes"}`` (not decoded), as every part of a round's data."""
    import datasets

    return dataset.cast_column("video_a", datasets.Video(decode=False)).cast_column("video_b", datasets.Video(decode=False))


def make_round_dataset(args, training_args, model_args, base: str, root: Path, dataset_dir: Path, state) -> None:
    """Round 0: the named pairs as they are; round k: ``relabel_origins`` pairs relabelled by round k-1.

    Called by every process. Round 0: the main one writes the dataset while the others wait.
    Round k: every process loads round k-1's model and relabels its share of the pairs
    (:mod:`ssvqa.parallel`); all get the same labels; the main process writes them, and how many
    comparisons each process ran (``RELABEL_STATS``, copied into the report).
    """
    import datasets

    from ssvqa.pairs.dataset import load_pairs

    with state.main_process_first():  # one process fills the datasets cache, the others read it
        pairs = load_round_pairs(args, root / ".cache")
        earlier = [load_pairs(folder)["train"] for folder in earlier_new_pairs(root, args.round)]
    if earlier:  # the data grows round by round: the new pairs of rounds 1..k-1 stay, with their labels
        pairs["train"] = datasets.concatenate_datasets([pairs["train"], *(_as_paths(part) for part in earlier)])
    decision = None
    if args.round > 0:
        from ssvqa.model_config import load_trained_model
        from ssvqa.parallel import gather_in_order
        from ssvqa.relabel import relabel_with_ranker

        decision = relabel_decision(args, training_args, root, pairs, state)
        relabel = decision is None or decision["relabelled"]
        if not relabel:
            if state.is_main_process:
                print(f"[data] round {args.round}: the ranker of round {args.round - 1} (held-out pair accuracy "
                      f"{decision['ranker_heldout_accuracy']:.3f}) does not beat the current labels' source "
                      f"({decision['labeller']}, {decision['labels_heldout_accuracy']:.3f}): round {args.round - 1}'s "
                      "pairs and labels are kept", flush=True)
            with state.main_process_first():  # its new pairs included
                previous_pairs = load_pairs(round_dir(root, args.round - 1) / "dataset", cache_dir=root / ".cache")
            pairs = {split: _as_paths(dataset) for split, dataset in previous_pairs.items()}
        per_process = [0] * state.num_processes
        if relabel or args.new_pairs:  # the previous ranker is needed
            previous = round_dir(root, args.round - 1) / "model"
            model, processor = load_trained_model(previous, base, model_args, use_cpu=bool(getattr(training_args, "use_cpu", False)))
            if relabel:
                train = pairs["train"]
                origins = train["origin"]
                chosen = [i for i, origin in enumerate(origins) if origin in args.relabel_origins]
                kept = [i for i, origin in enumerate(origins) if origin not in args.relabel_origins]
                if state.is_main_process:
                    why = (f" (held-out pair accuracy {decision['ranker_heldout_accuracy']:.3f}, better than the teachers' "
                           "or earlier labels')" if decision else "")
                    print(f"[data] round {args.round}: the ranker of round {args.round - 1}{why} relabels {len(chosen)} "
                          f"pairs on {state.num_processes} process(es)", flush=True)
                stats: dict[str, int] = {}
                relabelled = relabel_with_ranker(
                    train.select(chosen), model, processor, round=args.round,
                    batch_size=training_args.per_device_eval_batch_size, drop_below_confidence=args.drop_below_confidence,
                    name=f"ranker-round-{args.round - 1}", fingerprint=str(previous), progress=state.is_main_process,
                    processes=state, stats=stats,
                )
                per_process = gather_in_order([stats["comparisons"]], state)
                pairs["train"] = datasets.concatenate_datasets([train.select(kept), relabelled])
            new = make_new_pairs(args, training_args, model, processor, root, pairs["train"], state)
            if new is not None:
                pairs["train"] = datasets.concatenate_datasets([pairs["train"], new])
            del model, processor
            _release_memory()
        if state.is_main_process:
            dataset_dir.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(dataset_dir.parent / RELABEL_STATS, {"relabel_comparisons_per_process": per_process,
                                                                   **(decision or {})})
    if state.is_main_process:
        _save_round_dataset(args, pairs, dataset_dir, decision)
    state.wait_for_everyone()
    if state.is_main_process:  # the datasets cache under the run's root holds arrow copies of every input pair
        shutil.rmtree(root / ".cache", ignore_errors=True)  # dataset (a few per round); the round's dataset is saved


def relabel_decision(args: RoundArguments, training_args, root: Path, pairs: dict, state) -> dict | None:
    """Whether round ``k`` relabels (``relabel_when: better``; None with ``always``), and why.

    The ranker of round k-1 is measured by its round's held-out pair accuracy; the current labels'
    source by the same figure: for round k-1's labels made by a ranker, what that round recorded
    here; for the builders' labels, the teachers (``pool_teachers``, combined as the pseudo pairs'
    builder combines them) on the same held-out exact-label pairs. Returns ``relabelled``,
    ``labeller``, ``labels_heldout_accuracy`` (of the labels the round trains on) and
    ``ranker_heldout_accuracy``.
    """
    import json

    if args.relabel_when != "better":
        return None
    previous = json.loads((round_dir(root, args.round - 1) / "report.json").read_text())["figures"]
    ranker = previous.get("heldout_pair_accuracy")
    if ranker is None:
        raise SystemExit("relabel_when 'better' needs held-out exact-label pairs (eval_origins in a test split) to "
                         f"measure the ranker of round {args.round - 1}, and its report has no held-out pair accuracy")
    if "labels_heldout_accuracy" in previous:
        labeller, current = previous["labeller"], previous["labels_heldout_accuracy"]
    else:
        labeller = "teachers " + "+".join(args.pool_teachers)
        current = _teachers_heldout_accuracy(args, training_args, root, pairs, state)
    if ranker > current:
        labeller, current = f"ranker-round-{args.round - 1}", ranker
        relabelled = True
    else:
        relabelled = False
    return {"relabelled": relabelled, "labeller": labeller, "labels_heldout_accuracy": current,
            "ranker_heldout_accuracy": ranker}


def _teachers_heldout_accuracy(args: RoundArguments, training_args, root: Path, pairs: dict, state) -> float:
    """How often the teachers' combined scores order the two videos of the held-out exact-label
    pairs (the ones a round's held-out pair accuracy uses) the right way; ties count as wrong.
    The pairs' videos are written once under ``data/heldout-videos/`` (from the dataset's own
    bytes) for the teachers to read; their scores are cached like the pool's."""
    import hashlib

    from ssvqa.annotators.base import annotate
    from ssvqa.pairs.pseudo import make_teacher
    from ssvqa.pseudo_labels import combine_teachers

    heldout = heldout_pairs(pairs, args, training_args.seed)
    if heldout is None:
        raise SystemExit("relabel_when 'better' needs held-out exact-label pairs (eval_origins in a test split)")
    folder = root / "data" / "heldout-videos"
    rows = []
    for a, b, prob in zip(heldout["video_a"], heldout["video_b"], heldout["prob"]):
        if prob == 0.5 or a.get("bytes") is None or b.get("bytes") is None:
            continue
        rows.append(([folder / f"{hashlib.sha256(v['bytes']).hexdigest()[:24]}.mp4" for v in (a, b)], [a["bytes"], b["bytes"]], prob))
    if not rows:
        raise SystemExit("relabel_when 'better': the held-out exact-label pairs have no decided pair with both videos' "
                         "bytes in the dataset, so the teachers cannot be measured on them")
    if state.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        for paths, contents, _ in rows:
            for path, content in zip(paths, contents):
                if not path.exists():
                    atomic_write_bytes(path, content)
    state.wait_for_everyone()
    videos = sorted({str(path) for paths, _, _ in rows for path in paths})
    scores = {spec: annotate(videos, make_teacher(spec), cache_dir=root / "data" / "teacher-scores", accelerator=state,
                             progress=False).scores for spec in args.pool_teachers}
    consensus = combine_teachers(scores).score
    right = [consensus.get(str(b), 0.0) > consensus.get(str(a), 0.0) if prob > 0.5 else consensus.get(str(a), 0.0) > consensus.get(str(b), 0.0)
             for (a, b), _, prob in rows if str(a) in consensus and str(b) in consensus]
    if not right:
        raise SystemExit(f"relabel_when 'better': the teachers ({', '.join(args.pool_teachers)}) could not score the "
                         f"held-out pairs' videos (in {folder})")
    return sum(right) / len(right)


def _save_round_dataset(args: RoundArguments, pairs, dataset_dir: Path, decision: dict | None = None) -> None:
    """Write the round's pairs with their dataset card (main process)."""
    from ssvqa.pairs.card import DatasetCardInfo
    from ssvqa.pairs.dataset import save_pair_splits

    card = DatasetCardInfo(
        pretty_name=f"ssvqa round {args.round} training pairs", builder="recipes/round.py",
        arguments={"round": args.round, "pair_datasets": args.pair_datasets, "relabel_origins": args.relabel_origins,
                   "drop_below_confidence": args.drop_below_confidence, "new_pairs": args.new_pairs,
                   "hard_fraction": args.hard_fraction, "new_pair_labels": args.new_pair_labels},
        method=_dataset_method(args, decision), tags=[f"round-{args.round}"],
    )
    save_pair_splits(pairs, dataset_dir, card=card)


def _release_memory() -> None:
    """After the relabel model's last reference is dropped, before training loads its own copy:
    a 4-bit PeftModel sits in reference cycles, so only ``gc.collect()`` frees it; then the CUDA
    cache gives the memory back."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _dataset_method(args: RoundArguments, decision: dict | None = None) -> str:
    sources = ", ".join(f"`{name}`" for name in args.pair_datasets)
    if args.round == 0:
        return f"Round 0 of an ssvqa self-improvement run: the pairs of {sources}, with the labels their builders gave."
    if decision is not None and not decision["relabelled"]:
        return (
            f"Round {args.round} of an ssvqa self-improvement run: the pairs and labels of round {args.round - 1}, kept "
            f"(`relabel_when: better`): the ranker of round {args.round - 1} ranked "
            f"{decision['ranker_heldout_accuracy']:.3f} of the held-out exact-label pairs right, the labels' source "
            f"({decision['labeller']}) {decision['labels_heldout_accuracy']:.3f}.{_new_pairs_method(args)}"
        )
    confidence = (f" Pairs the ranker was less than {args.drop_below_confidence:.0%} sure of were dropped."
                  if args.drop_below_confidence else "")
    return (
        f"Round {args.round} of an ssvqa self-improvement run: the pairs of {sources}. Pairs of origin "
        f"{', '.join(args.relabel_origins)} were relabelled by the ranker of round {args.round - 1}, asked about each "
        "pair in both orders (`ssvqa.relabel.relabel_with_ranker`); their origin is now `relabel` and their previous "
        f"label is in the provenance. The other pairs keep their labels.{confidence}{_new_pairs_method(args)}"
    )


def _new_pairs_method(args: RoundArguments) -> str:
    if not args.new_pairs:
        return ""
    return (f" The new pairs of rounds 1..{args.round} (`round-j/new-pairs`, {args.new_pairs} per round: "
            f"{args.hard_fraction:.0%} hard, the rest random; `ssvqa.rounds.new_pairs`) were added, labelled by "
            f"{args.new_pair_labels} (pool pairs) or by construction (synthetic pairs); each row's provenance says why "
            "it was chosen (`selected`).")


def heldout_pairs(pairs, args: RoundArguments, seed: int):
    """The test pairs of ``eval_origins`` (exact labels), at most ``max_eval_pairs`` of them (seeded); None if there are none."""
    test = pairs.get("test")
    if test is None or len(test) == 0:
        return None
    keep = [i for i, origin in enumerate(test["origin"]) if origin in args.eval_origins]
    if not keep:
        return None
    test = test.select(keep)
    if args.max_eval_pairs and len(test) > args.max_eval_pairs:
        test = test.shuffle(seed=seed).select(range(args.max_eval_pairs))
    return test
