"""``ssvqa build-distortion-pairs``: pairs of one source at known distortion severities.

The options of :func:`ssvqa.pairs.distortion.build_distortion_pairs` (its module doc explains the
build); prints the :class:`~ssvqa.pairs.distortion.DistortionPairsReport`.
"""

from __future__ import annotations

import argparse

from ssvqa.commands.options import add_builder_arguments, builder_kwargs
from ssvqa.distortions import CATALOGUE
from ssvqa.errors import UsageError
from ssvqa.pairs.distortion import DEFAULT_MAX_PIXELS, build_distortion_pairs, check_type


def _type_list(text: str) -> list[str]:
    """``--types``: comma-separated catalogue names, checked now (close names suggested)."""
    try:
        return [check_type(part.strip()) for part in text.split(",") if part.strip()]
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _level(text: str) -> int:
    """``--levels``: a level every ladder has (1..4, 1 = mildest)."""
    top = min(d.num_levels for d in CATALOGUE.values())
    if not text.isdigit() or not 1 <= int(text) <= top:
        raise argparse.ArgumentTypeError(f"{text!r}: levels are 1..{top} (1 = mildest)")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (shared by ``ssvqa build-distortion-pairs`` and ``python -m``)."""
    what, how = add_builder_arguments(parser, "what pairs to make")
    what.add_argument("--types", type=_type_list, default=None,
                      help=f"comma-separated distortion types to draw from (default: all): {', '.join(CATALOGUE)}")
    what.add_argument("--types-per-source", type=int, default=3, help="distortion types per source (default: 3)")
    what.add_argument("--levels", type=_level, nargs="+", default=None, help="ladder levels to render (default: all, 1 = mildest)")
    what.add_argument("--composed", type=int, default=0, help="extra variants per source composing two of its types (default: 0)")
    what.add_argument("--test-fraction", type=float, default=0.2, help="share of contents in the test split (default: 0.2)")
    what.add_argument("--seed", type=int, default=0, help="seeds every random choice (default: 0)")
    what.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                      help=f"scale sources down to fit this many pixels, aspect kept; 0 keeps the size (default: {DEFAULT_MAX_PIXELS})")
    how.add_argument("--num-proc", type=int, default=1, help="worker processes (default: 1)")
    how.add_argument("--threads", type=int, default=1, help="ffmpeg threads per worker (default: 1)")


def main(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; prints the summary.

    Exit status: 0 when pairs were made and no input is left to retry; 1 otherwise (the summary
    says why: nothing usable, or inputs that failed for a reason that may not last).
    """
    report = build_distortion_pairs(
        args.inputs, args.output_dir, types=args.types, types_per_source=args.types_per_source, levels=args.levels,
        composed=args.composed, test_fraction=args.test_fraction, seed=args.seed, max_pixels=args.max_pixels or None,
        threads=args.threads, num_proc=args.num_proc, **builder_kwargs(args),
    )
    print(report)
    return 0 if report.complete else 1
