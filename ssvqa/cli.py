"""The ``ssvqa`` command: one subcommand per program, each a module with two functions.

A subcommand's module provides ``add_arguments(parser)`` and ``main(args) -> int``; its
docstring is the subcommand's ``--help`` text. To add one, add a line to :data:`COMMANDS`.
Modules are imported only when their subcommand runs, so ``ssvqa --help`` is instant and a
command's heavy imports (torch, transformers) are paid only by that command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ssvqa.console import add_verbose_argument, setup_output

# name -> (module, one-line summary for `ssvqa --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "make-corpus": ("ssvqa.corpus", "make a corpus of synthetic source clips (no downloads)"),
    "build-distortion-pairs": (
        "dataset_builders.distortion_pairs",
        "build a pair dataset from synthetic distortions of source videos",
    ),
    "build-pseudo-pairs": ("dataset_builders.pseudo_label_pairs", "build a pair dataset from unlabeled videos labelled by quality teachers"),
    "build-mos-pairs": ("dataset_builders.mos_pairs", "build a pair dataset from human mean opinion scores (supervised baseline)"),
    "score": ("ssvqa.scorer", "score videos 0-100 with a ranker and anchor videos"),
    "evaluate": ("ssvqa.benchmark_eval", "score a human-rated benchmark and report SRCC/PLCC"),
    "app": ("ssvqa.app", "a browser page to score and compare videos (needs ssvqa[app])"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: lists the subcommands; the rest of the line goes to the one chosen."""
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:{width}s}  {summary}" for name, (_, summary) in COMMANDS.items())
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
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(
        prog=f"ssvqa {name}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    add_verbose_argument(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ssvqa`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the command name is parsed here (or --help/--version); its own parser reads the rest.
    top = build_parser().parse_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    # Before the command's module imports its libraries: their bars and notices stay quiet.
    setup_output(verbose="--verbose" in argv[1:])
    parser, module = command_parser(top.command)
    args = parser.parse_args(argv[1:])
    return int(module.main(args) or 0)


def _version() -> str:
    from ssvqa import __version__

    return __version__


if __name__ == "__main__":
    raise SystemExit(main())
