"""``ssvqa make-corpus``: short synthetic source clips to build pairs from (no downloads).

The options of :func:`ssvqa.corpus.make_corpus`; prints one path per line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ssvqa.corpus import make_corpus


def _size_list(text: str) -> tuple[int, int] | list[tuple[int, int]]:
    """``"320x240"`` -> (320, 240); ``"320x240,1280x720"`` -> a list of sizes."""
    sizes = []
    for part in text.split(","):
        try:
            width, height = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size must look like 320x240, not {part!r}") from None
        if width < 16 or height < 16:
            raise argparse.ArgumentTypeError(f"size {part!r} is too small (16x16 at least)")
        sizes.append((width, height))
    return sizes[0] if len(sizes) == 1 else sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ssvqa make-corpus``."""
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="folder for the clips (created if missing)")
    parser.add_argument("--num-clips", type=int, default=8, help="how many clips (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of content, motion, size and rate (default 0)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per clip (default 2)")
    parser.add_argument(
        "--size", type=_size_list, default=(320, 240),
        help="WxH: varied aspects around this area, clip 1 portrait; or W1xH1,W2xH2,... used in turn (default 320x240)",
    )
    parser.add_argument("--fps", type=float, default=None, help="frame rate of every clip (default: 24, 25 or 30 per clip)")
    parser.add_argument("--threads", type=int, default=1, help="ffmpeg threads per clip (default 1)")


def main(args: argparse.Namespace) -> int:
    """Make the corpus and print one path per line."""
    paths = make_corpus(
        args.out_dir, num_clips=args.num_clips, seed=args.seed, duration=args.duration,
        size=args.size, fps=args.fps, threads=args.threads,
    )
    for path in paths:
        print(path)
    return 0
