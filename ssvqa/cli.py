"""The ``ssvqa`` command: one subcommand per program, each a module of :mod:`ssvqa.commands`.

A subcommand's module provides ``add_arguments(parser)`` and ``main(args) -> int``. Its
``--help`` is written for users, not developers: the short description and the examples of its
:class:`Command` entry here, then its options with their defaults. (The module's docstring stays
the developer's documentation.) To add a command, add an entry to :data:`COMMANDS`. Modules are
imported only when their subcommand runs, so ``ssvqa --help`` is instant and a command's heavy
imports (torch, transformers) are paid only by that command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from ssvqa.console import add_verbose_argument, setup_output
from ssvqa.errors import TRANSIENT_ERRNOS, SsvqaError, UsageError


@dataclass(frozen=True)
class Command:
    """A subcommand: its module, a one-line summary, a short description and 1-3 examples."""

    module: str
    summary: str
    description: str
    examples: tuple[str, ...]


COMMANDS: dict[str, Command] = {
    "make-corpus": Command(
        "ssvqa.commands.make_corpus", "make a corpus of synthetic source clips (no downloads)",
        "Write short source clips of varied content, motion, size and frame rate, made with ffmpeg's synthetic\n"
        "sources: unlabeled videos to build pairs from, without downloading any. Existing clips are kept.",
        ("ssvqa make-corpus corpus/", "ssvqa make-corpus corpus/ --num-clips 40 --size 640x360 --duration 4"),
    ),
    "build-distortion-pairs": Command(
        "ssvqa.commands.build_distortion_pairs", "build a pair dataset from synthetic distortions of source videos",
        "Render each source video at increasing levels of synthetic distortions (blur, noise, codecs, ...) and pair\n"
        "renderings whose order is known by construction: adjacent levels are better/worse, further apart\n"
        "superior/inferior. Writes a dataset folder (train/test split by content) or pushes it to the Hub.",
        ("ssvqa build-distortion-pairs videos/ -o pairs/",
         "ssvqa build-distortion-pairs videos.txt -o pairs/ --types h264,gaussian_blur,noise --num-proc 8",
         "ssvqa build-distortion-pairs user/raw-videos -o pairs/ --push-to-hub user/distortion-pairs"),
    ),
    "build-pseudo-pairs": Command(
        "ssvqa.commands.build_pseudo_pairs", "build a pair dataset from unlabeled videos labelled by quality teachers",
        "Score unlabeled videos with one or more quality teachers (classical statistics, a video LMM, a trained\n"
        "ranker) and label pairs of them from the scores and the teachers' disagreement. No human ratings.",
        ("ssvqa build-pseudo-pairs videos/ -o pseudo/",
         "ssvqa build-pseudo-pairs videos/ -o pseudo/ --teachers classical ranker:outputs/tiny-rounds/round-2/model"),
    ),
    "build-mos-pairs": Command(
        "ssvqa.commands.build_mos_pairs", "build a pair dataset from human mean opinion scores (supervised baseline)",
        "Pair the videos of a human-rated benchmark (or any folder with a label file) and label each pair from\n"
        "the two mean opinion scores. Most benchmarks may not be redistributed: keep the result local or private.",
        ("ssvqa build-mos-pairs konvid-1k=/data/KoNViD_1k -o mos-pairs/",
         "ssvqa build-mos-pairs /data/mine/labels.csv -o mos-pairs/ --score-column mos"),
    ),
    "score": Command(
        "ssvqa.commands.score", "score videos 0-100 with a ranker and anchor videos",
        "Compare each video with the anchor videos saved with the ranker (anchors.json) and turn the answers into\n"
        "a 0-100 score (a logistic fitted to the anchors' known scores: nothing clamps at 0 or 100). Bad files are\n"
        "reported with"
        "their reason and the rest scored. --segments also scores each part of a video: quality over time.",
        ("ssvqa score clip.mp4 --model outputs/tiny-rounds/round-2/model",
         "ssvqa score videos/ --model my-ranker --anchors anchors.json -o scores.csv",
         "ssvqa score long.mp4 --model my-ranker --segments 2 --plot curve.png"),
    ),
    "evaluate": Command(
        "ssvqa.commands.evaluate", "score a human-rated benchmark and report SRCC/PLCC",
        "Score every video of a human-rated benchmark (or a folder with a label file) and report how the\n"
        "scores agree with the human ones: SRCC, PLCC (after a logistic fit), KRCC, RMSE, and a scatter plot.",
        ("ssvqa evaluate --model my-ranker --benchmark konvid-1k --root data/KoNViD_1k -o results/konvid",
         "ssvqa evaluate --model my-ranker --root my_videos --labels labels.csv -o results/mine"),
    ),
    "app": Command(
        "ssvqa.commands.app", "a browser page to score and compare videos (needs ssvqa[app])",
        "Serve a page to score uploaded videos (with each one's preferences against the anchors and, optionally,\n"
        "its score over time), compare two videos, and score a folder into a sortable table with a CSV download.\n"
        "Without --model it uses the newest model `bash run.sh demo` trained. Needs: pip install \"ssvqa[app]\".",
        ("ssvqa app", "ssvqa app --model my-ranker --max-pixels 200704 --host 0.0.0.0 --port 8080"),
    ),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and examples' line breaks; adds ``(default: X)`` to an option's
    help when it has a default worth showing and does not say it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS, []) and not action.option_strings == []
        if shown and "default" not in text.lower():
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: lists the subcommands; the rest of the line goes to the one chosen."""
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:{width}s}  {command.summary}" for name, command in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="ssvqa",
        usage="ssvqa [-h] [--version] COMMAND [ARGS ...]",
        description="ssvqa: self-supervised video quality assessment with video LMM rankers.",
        epilog=f"commands:\n{listing}\n\nRun `ssvqa COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    return parser


def command_parser(name: str):
    """The parser of one subcommand, and its module."""
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(
        prog=f"ssvqa {name}",
        description=command.description,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in command.examples),
        formatter_class=HelpFormatter,
    )
    module.add_arguments(parser)
    add_verbose_argument(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ssvqa`` console script.

    Ordinary mistakes end with one line on stderr, never a traceback. Exit status: 2 for a
    usage error (bad option, missing input: argparse's and :class:`~ssvqa.errors.UsageError`),
    1 for any other expected failure (:class:`~ssvqa.errors.SsvqaError`, a full disk or a
    permission error), 130 on Ctrl-C; otherwise the command's own status.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = "ssvqa"
    try:
        # Only the command name is parsed here (or --help/--version); its own parser reads the rest.
        top = build_parser().parse_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
        prog = f"ssvqa {top.command}"
        # Before the command's module imports its libraries: their bars and notices stay quiet.
        setup_output(verbose="--verbose" in argv[1:])
        parser, module = command_parser(top.command)
        args = parser.parse_args(argv[1:])
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except SsvqaError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in TRANSIENT_ERRNOS:
            raise  # a bug or an unexpected failure: its traceback is what a report needs
        print(f"{prog}: error: {err}; rerun the same command when it is fixed (finished work is kept)", file=sys.stderr)
        return 1


def _version() -> str:
    from ssvqa import __version__

    return __version__


if __name__ == "__main__":
    raise SystemExit(main())
