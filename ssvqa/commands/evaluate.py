"""``ssvqa evaluate``: score a human-rated benchmark with a ranker, correlate with MOS.

Scores every video of the benchmark with :class:`ssvqa.scorer.QualityScorer`, then writes into
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
import csv
import json
import sys
from pathlib import Path

from ssvqa.errors import SsvqaError
from ssvqa.commands.options import add_model_arguments, scorer_from_args
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
    """Run the evaluation; returns 0, or 1 when nothing could be scored."""
    from ssvqa.evaluation import correlation_report, format_table, scatter_plot
    from ssvqa.scorer import QualityScorer

    try:
        data = load_videos(args)
        anchors = None
        if args.anchors_from_benchmark:
            anchors = QualityScorer.build_anchors(data, k=args.anchors_from_benchmark)
        scorer = scorer_from_args(args, anchors=anchors)
    except SsvqaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    excluded = {video for video, _ in anchors} if anchors else set()
    rows = [(row["video"], row["mos"]) for row in data if row["video"] not in excluded]
    scores, errors = scorer.score_with_errors([video for video, _ in rows], progress=not args.no_progress)
    scored = [(video, scores[video], mos) for video, mos in rows if video in scores]
    for path, reason in errors.items():
        print(f"could not score {path}: {reason}", file=sys.stderr)
    if len(scored) < 2:
        print(f"error: only {len(scored)} video(s) scored; need at least 2 to correlate", file=sys.stderr)
        return 1

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = [s for _, s, _ in scored]
    mos = [m for _, _, m in scored]
    name = args.benchmark or Path(args.root).name
    report = correlation_report(pred, mos)
    report["benchmark"] = name
    report["settings"] = {
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
    report["failed"] = errors
    report["comparisons"] = scorer.comparisons
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    with (out / "scores.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "score", "mos"])
        writer.writerows([v, f"{s:.4f}", m] for v, s, m in scored)
    scatter_plot(pred, mos, out / "scatter.png", title=name)
    print(format_table([{k: report[k] for k in ("benchmark", "n", "srcc", "krcc", "plcc", "rmse")}]))
    print(f"wrote {out / 'report.json'}, {out / 'scores.csv'}, {out / 'scatter.png'}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "main", "load_videos"]
