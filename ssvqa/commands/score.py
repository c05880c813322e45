"""``ssvqa score``: score videos 0-100 with a ranker and its anchor videos.

Videos, folders and list files in; a table of scores out (and ``-o`` a CSV/JSON file). Each video
that cannot be scored is reported with its reason; the rest are scored. ``--segments S`` also
scores every S-second segment: quality over time, with a plot. The scoring itself is
:class:`ssvqa.scorer.QualityScorer`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ssvqa.commands.options import add_model_arguments, is_main_process, scorer_from_args
from ssvqa.errors import UsageError
from ssvqa.video import VIDEO_EXTENSIONS, list_videos


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Video paths from command-line inputs: video files, folders (searched recursively), and list
    files (any other existing file: one path per line, relative to the list's folder, ``#`` comments).
    A path that does not exist is kept, so it is reported as not found rather than dropped."""
    videos: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            videos += [str(p) for p in list_videos(path)]
        elif path.is_file() and path.suffix.lower() not in VIDEO_EXTENSIONS and path.suffix.lower() in (".txt", ".lst", ".list", ""):
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    videos.append(str(path.parent / line))
        else:
            videos.append(str(path))
    return list(dict.fromkeys(videos))


def write_scores(
    path: str | os.PathLike, scores: dict[str, float], errors: dict[str, str], segments: dict[str, list] | None = None
) -> Path:
    """Write scores (and the reason each failed video has none) as ``.csv`` or ``.json``.

    With ``segments`` the CSV gains ``start`` and ``end`` columns (empty on a whole-video row) and
    a row per segment; the JSON gains a ``segments`` object.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        record = {"scores": scores, "errors": errors}
        if segments is not None:
            record["segments"] = {v: [vars(s) for s in parts] for v, parts in segments.items()}
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if segments is None:
            writer.writerow(["video", "score", "error"])
            writer.writerows([v, f"{s:.4f}", ""] for v, s in scores.items())
            writer.writerows([v, "", reason] for v, reason in errors.items())
        else:
            writer.writerow(["video", "start", "end", "score", "error"])
            for v, s in scores.items():
                writer.writerow([v, "", "", f"{s:.4f}", ""])
                writer.writerows([v, f"{p.start:.3f}", f"{p.end:.3f}", f"{p.score:.4f}", ""] for p in segments.get(v, []))
            writer.writerows([v, "", "", "", reason] for v, reason in errors.items())
    return path


def plot_segments(results: dict, path: str | os.PathLike) -> Path:
    """A PNG of each video's score over time (segment midpoints), its whole-video score dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    for name, result in results.items():
        times = [(p.start + p.end) / 2 for p in result.segments]
        line, = ax.plot(times, [p.score for p in result.segments], marker="o", label=Path(name).name)
        ax.axhline(result.score, color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set(xlabel="time (s)", ylabel="score (0-100)", ylim=(-2, 102), title="quality over time (dashed: whole video)")
    ax.grid(alpha=0.3)
    if len(results) <= 10:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ssvqa score``."""
    parser.add_argument("inputs", nargs="+", help="video files, folders of videos, or list files (one path per line)")
    add_model_arguments(parser)
    parser.add_argument("-o", "--output", default=None, help="write the scores to this .csv or .json file")
    parser.add_argument(
        "--segments", type=float, default=None, metavar="SECONDS",
        help="also score each SECONDS-long segment of every video (quality over time)",
    )
    parser.add_argument(
        "--plot", default="quality-over-time.png",
        help="with --segments: PNG of the scores over time (default: quality-over-time.png)",
    )
    parser.add_argument("--strict", action="store_true", help="exit with an error if any video could not be scored")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Score the inputs; print a table of scores and the reason for each video that failed.

    Exit status: 0 when at least one video was scored (and, with ``--strict``, none failed); 1 otherwise.
    """
    from ssvqa.evaluation import format_table

    videos = expand_inputs(args.inputs)
    if not videos:
        print("no videos found in the inputs", file=sys.stderr)
        return 1
    scorer = scorer_from_args(args)  # errors (no anchors, a bad anchors file) end in ssvqa.cli
    if args.segments is not None and args.segments <= 0:
        raise UsageError(f"--segments must be a positive number of seconds, got {args.segments}")
    main_process = is_main_process(scorer)
    results, errors = scorer.score_details(videos, segments=args.segments, progress=not args.no_progress and main_process)
    scores = {v: r.score for v, r in results.items()}
    if not main_process:  # under `accelerate launch`: every process has every score; the main one reports
        return 0 if scores and not (args.strict and errors) else 1
    segments = {v: r.segments for v, r in results.items()} if args.segments is not None else None
    if scores:
        print(format_table([{"video": v, "score": round(s, 2)} for v, s in scores.items()], float_digits=2))
    if segments and scores:
        rows = [{"video": v, "start": p.start, "end": p.end, "score": round(p.score, 2)} for v, parts in segments.items() for p in parts]
        print("\n" + format_table(rows, float_digits=2))
        print(f"wrote {plot_segments(results, args.plot)}", file=sys.stderr)
    for path, reason in errors.items():
        print(f"could not score {path}: {reason}", file=sys.stderr)
    if args.output:
        print(f"wrote {write_scores(args.output, scores, errors, segments)}", file=sys.stderr)
    print(f"{len(scores)} scored, {len(errors)} failed ({scorer.comparisons} comparisons)", file=sys.stderr)
    if not scores or (args.strict and errors):
        return 1
    return 0
