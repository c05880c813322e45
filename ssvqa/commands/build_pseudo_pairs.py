"""``ssvqa build-pseudo-pairs``: pairs of unlabeled videos labelled by quality teachers.

The options of :func:`ssvqa.pairs.pseudo.build_pseudo_pairs` (its module doc explains the build);
prints the :class:`~ssvqa.pairs.pseudo.PseudoPairsReport`. Under ``accelerate launch`` the
processes share the teachers' scoring and the main one writes the dataset::

    accelerate launch --num_processes 8 -m ssvqa build-pseudo-pairs videos/ out/ --teachers lmm:Qwen/Qwen2.5-VL-7B-Instruct
"""

from __future__ import annotations

import argparse

from ssvqa.commands.options import add_builder_arguments, builder_kwargs
from ssvqa.errors import UsageError
from ssvqa.labels import LevelThresholds
from ssvqa.pseudo_labels import NORMALISATIONS
from ssvqa.pairs.pseudo import build_pseudo_pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (shared by ``ssvqa build-pseudo-pairs`` and ``python -m``)."""
    what, how = add_builder_arguments(parser, "teachers and labels")
    what.add_argument("--teachers", nargs="*", default=["classical"], type=_teacher_spec,
                      help="classical, brisque, niqe (no-reference image quality models on sampled frames), "
                      "lmm:MODEL (zero-shot chat video LMM), ranker:MODEL (trained ranker with anchors.json); "
                      "space- or comma-separated; default: classical")
    what.add_argument("--teacher-scores", nargs="+", default=[], metavar="NAME=PATH_OR_REPO",
                      help="external teachers: a score file (CSV/JSON/Parquet of video,score) or a Hub dataset per "
                      "teacher, e.g. dover=dover_scores.csv")
    what.add_argument("--max-pairs-per-video", type=int, default=4, help="pairs each video takes part in, at most (default: 4)")
    what.add_argument("--normalisation", choices=NORMALISATIONS, default="logistic",
                      help="put teachers on one scale: logistic (align to --reference, W2S-VQA), rank or zscore (default: logistic)")
    what.add_argument("--reference", default=None, help="teacher the others are aligned to (default: the first)")
    what.add_argument("--similar", type=float, default=LevelThresholds.similar,
                      help=f"|z| up to this is 'similar' (default: {LevelThresholds.similar})")
    what.add_argument("--superior", type=float, default=LevelThresholds.superior,
                      help=f"|z| beyond this is 'superior' (default: {LevelThresholds.superior})")
    what.add_argument("--noise-floor", type=float, default=LevelThresholds.noise_floor,
                      help=f"added uncertainty (default: {LevelThresholds.noise_floor})")
    what.add_argument("--disagreement", type=float, default=0.5,
                      help="drop pairs two teachers order oppositely by more than this; negative keeps all (default: 0.5)")
    what.add_argument("--test-fraction", type=float, default=0.2, help="share of videos in the test split (default: 0.2)")
    what.add_argument("--seed", type=int, default=0, help="seeds the split and the pair sampling (default: 0)")
    how.add_argument("--batch-size", type=int, default=8, help="videos per teacher call (default: 8)")


def _teacher_spec(text: str) -> str:
    """``--teachers``: classical, brisque, niqe, lmm:MODEL or ranker:MODEL (or several, comma-
    separated), with MODEL an existing folder or a Hub id (checked when parsing, so a mistyped
    path fails at once)."""
    from ssvqa.hub import local_or_hub_id

    for spec in text.split(","):
        kind, _, target = spec.partition(":")
        try:
            if not (kind in ("classical", "brisque", "niqe") and not target) and not (kind in ("lmm", "ranker") and target):
                raise UsageError(f"unknown teacher {spec!r}: use classical, brisque, niqe, lmm:MODEL or ranker:MODEL")
            if target:
                local_or_hub_id(target, "model folder")
        except UsageError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return text


def main(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; prints the summary.

    Exit status: 0 when pairs were made; 1 when none were (the summary says why)."""
    from ssvqa.parallel import launch_processes

    thresholds = LevelThresholds(similar=args.similar, superior=args.superior, noise_floor=args.noise_floor)
    processes = launch_processes()  # under `accelerate launch`, the processes share the teachers' scoring
    report = build_pseudo_pairs(
        args.inputs, args.output_dir, teachers=args.teachers, max_pairs_per_video=args.max_pairs_per_video,
        test_fraction=args.test_fraction, seed=args.seed, external_teachers=args.teacher_scores,
        normalisation=args.normalisation, reference=args.reference, thresholds=thresholds,
        disagreement=None if args.disagreement < 0 else args.disagreement, batch_size=args.batch_size,
        accelerator=processes, **builder_kwargs(args),
    )
    if processes is None or processes.is_main_process:
        print(report)
    return 0 if report.complete else 1
