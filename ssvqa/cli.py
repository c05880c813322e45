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

from ssvqa.errors import TRANSIENT_ERRNOS, SsvqaError, UsageError

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
