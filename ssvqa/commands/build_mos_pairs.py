"""``ssvqa build-mos-pairs``: pairs from human mean opinion scores (the supervised baseline).

The options of :func:`ssvqa.pairs.mos.build_mos_pairs` (its module doc explains the build);
prints the :class:`~ssvqa.pairs.mos.MosPairsReport`.
"""

from __future__ import annotations

import argparse

from ssvqa.commands.options import add_publishing_arguments, publishing_kwargs
from ssvqa.pairs.mos import SIMILAR_Z, SUPERIOR_Z, build_mos_pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (shared by ``ssvqa build-mos-pairs`` and ``python -m``)."""
    parser.add_argument("source", help="a benchmark NAME=ROOT (e.g. lsvq=/data/LSVQ) or a label file ROOT/labels.csv")
    parser.add_argument("-o", "--output-dir", required=True, help="the dataset folder to write (created if missing)")
    read = parser.add_argument_group("reading the scores")
    read.add_argument("--split", default=None, help="split of a named benchmark (LSVQ: train, test, test_1080p; default: its test split)")
    read.add_argument("--name-column", default="name", help="label file: column of the video names (default: name)")
    read.add_argument("--score-column", default="mos", help="label file: column of the MOS (default: mos)")
    read.add_argument("--std-column", default=None, help="label file: column of the raters' standard deviation (default: none)")
    read.add_argument("--on-missing", choices=("error", "skip"), default="error",
                      help="a labelled video not on disk: stop (error, default) or leave it out and list it (skip)")
    read.add_argument("--no-check", action="store_true", help="do not open every video to check it is readable")
    read.add_argument("--num-workers", type=int, default=4, help="threads checking videos (default: 4)")
    what = parser.add_argument_group("pairs and labels")
    what.add_argument("--pairs-per-video", type=int, default=4, help="partners each video proposes (default: 4)")
    what.add_argument("--num-groups", type=int, default=None, help="content groups (default: about 20 videos each, at most 100)")
    what.add_argument("--content-regex", default=None,
                      help="regex whose first group (or match) of a video's name is its source content: versions of one "
                      "content stay in one group (default: the name itself)")
    what.add_argument("--similar-z", type=float, default=SIMILAR_Z, help=f"|z| below this is 'similar' (default: {SIMILAR_Z:.3f})")
    what.add_argument("--superior-z", type=float, default=SUPERIOR_Z, help=f"|z| from this is 'superior' (default: {SUPERIOR_Z:.3f})")
    what.add_argument("--test-fraction", type=float, default=0.2, help="share of content groups in the test split (default: 0.2)")
    what.add_argument("--seed", type=int, default=0, help="seeds the groups, the split and the pairing (default: 0)")
    add_publishing_arguments(parser, private_help="create the Hub repo private (benchmark videos are rarely redistributable)")


def main(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; prints the summary."""
    report = build_mos_pairs(
        args.source, args.output_dir, split=args.split, name_column=args.name_column, score_column=args.score_column,
        std_column=args.std_column, on_missing=args.on_missing, pairs_per_video=args.pairs_per_video,
        num_groups=args.num_groups, content_regex=args.content_regex, similar_z=args.similar_z, superior_z=args.superior_z,
        test_fraction=args.test_fraction, seed=args.seed, check=not args.no_check, num_workers=args.num_workers,
        **publishing_kwargs(args),
    )
    print(report)
    return 0 if report.complete else 1
