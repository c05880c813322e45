"""``ssvqa evaluate``: score a human-rated benchmark with a ranker, correlate with MOS.

Scores every video of the benchmark with :class:`ssvqa.scorer.QualityScorer` and
:func:`ssvqa.evaluation.evaluate_scorer` (what every round does too), then writes into
``--output-dir``:

* ``report.json`` -- :func:`ssvqa.evaluation.correlation_report` (SRCC, KRCC, PLCC, RMSE, ...)
  plus the settings (model, adapter, anchors, video sampling, ...) and the videos that failed;
* ``scores.csv`` -- each video's score and MOS;
* ``scatter.png`` -- scores against MOS with the fitted logistic curve;

and prints the table. Videos that cannot be decoded are left out of the correlation and listed.

Anchors: those saved with the model (``anchors.json``), ``--anchors FILE``, or, with
``--anchors-from-benchmark``, K videos of the benchmark itself spread over its MOS range
(:meth:`QualityScorer.build_anchors`); those K videos are then left out of the correlation,
since their MOS chose them.

Examples::

    ssvqa evaluate --model my-ranker --benchmark konvid-1k --root data/KoNViD_1k -o results/konvid
    ssvqa evaluate --model my-ranker --root my_videos --labels labels.csv -o results/mine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssvqa.errors import SsvqaError
from ssvqa.commands.options import add_model_arguments, is_main_process, scorer_from_args
from ssvqa.scorer import DEFAULT_NUM_ANCHORS


def load_videos(args: argparse.Namespace):
    """The benchmark as a ``datasets.Dataset`` (``video``, ``mos``[, ``mos_std``])."""
    from ssvqa.benchmarks import load_benchmark, load_labelled_folder

    if args.benchmark:
        return load_benchmark(args.benchmark, args.root, split=args.split, labels=args.labels, on_missing=args.on_missing)
    if not args.labels:
        raise SsvqaError("pass --benchmark NAME, or --labels FILE for a folder of videos with a label file")
    return load_labelled_folder(
        args.root, args.labels, name_column=args.name_column, score_column=args.score_column, on_missing=args.on_missing
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ssvqa evaluate``."""
    from ssvqa.benchmarks import benchmark_names

    data = parser.add_argument_group("benchmark")
    data.add_argument("--benchmark", default=None, help=f"one of: {', '.join(benchmark_names())} (or leave out and pass --labels)")
    data.add_argument("--root", required=True, help="the folder holding the benchmark's videos and label file")
    data.add_argument("--split", default=None, help="the benchmark's split (default: its test split)")
    data.add_argument("--labels", default=None, help="a label file (overrides the search; required without --benchmark)")
    data.add_argument("--name-column", default="name", help="video name column of --labels without --benchmark (default: name)")
    data.add_argument("--score-column", default="mos", help="score column of --labels without --benchmark (default: mos)")
    data.add_argument("--on-missing", choices=["error", "skip"], default="error", help="labelled videos not found (default: error)")
    add_model_arguments(parser)
    parser.add_argument(
        "--anchors-from-benchmark", type=int, nargs="?", const=DEFAULT_NUM_ANCHORS, default=None, metavar="K",
        help=f"take K anchors (default {DEFAULT_NUM_ANCHORS}) from the benchmark itself; they are left out of the correlation",
    )
    parser.add_argument("-o", "--output-dir", default="evaluation", help="folder for report.json, scores.csv, scatter.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run the evaluation; returns 0, or 1 when fewer than two videos could be scored."""
    from ssvqa.evaluation import evaluate_scorer, format_table
    from ssvqa.scorer import QualityScorer

    try:
        data = load_videos(args)
        anchors = None
        if args.anchors_from_benchmark:
            anchors = QualityScorer.build_anchors(data, k=args.anchors_from_benchmark)
        scorer = scorer_from_args(args, anchors=anchors)
        settings = {
            "model": str(args.model),
            "adapter": args.adapter and str(args.adapter),
            "anchors": [str(p) for p in scorer.anchor_videos],
            "anchor_scores": scorer.anchor_scores,
            "anchors_from_benchmark": bool(anchors),
            "video_sampling": scorer.sampling.to_dict(),
            **{k: getattr(scorer, k) for k in ("temperature", "mirrored", "batch_size")},
            "split": args.split,
            "root": str(args.root),
        }
        out = Path(args.output_dir)
        main_process = is_main_process(scorer)  # under `accelerate launch`: all score, the main one writes
        result = evaluate_scorer(scorer, data, args.benchmark or Path(args.root).name, out if main_process else None,
                                 exclude=[video for video, _ in anchors or []], settings=settings,
                                 progress=not args.no_progress and main_process)
    except SsvqaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not main_process:
        return 0
    for path, reason in result.errors.items():
        print(f"could not score {path}: {reason}", file=sys.stderr)
    print(format_table([{k: result.report[k] for k in ("benchmark", "n", "srcc", "krcc", "plcc", "rmse")}]))
    print(f"wrote {out / 'report.json'}, {out / 'scores.csv'}, {out / 'scatter.png'}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "main", "load_videos"]
