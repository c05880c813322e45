"""``ssvqa app``: serve the page of :mod:`ssvqa.app` for a ranker (default: the demo's newest).
"""

from __future__ import annotations

import argparse
import sys

from ssvqa.app import DEFAULT_OUTPUT_DIR, build_app, default_model, gradio, theme
from ssvqa.commands.options import add_model_arguments, scorer_from_args
from ssvqa.errors import SsvqaError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ssvqa app``."""
    add_model_arguments(parser, required=False, model_help=f"ranker folder or Hub id (default: the newest {DEFAULT_OUTPUT_DIR}/round-*/model)")
    page = parser.add_argument_group("page")
    page.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1; 0.0.0.0 for every interface)")
    page.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    page.add_argument("--preload", nargs="*", default=[], metavar="VIDEO", help="videos scored (the first two compared) before the page opens")
    page.add_argument("--preload-segments", type=float, default=None, metavar="SECONDS", help="segment length for --preload")


def scorer_for_app(args: argparse.Namespace):
    """The scorer of ``args``: ``--model``, or the demo's newest model. Either is asked the way it
    was trained: its video sampling comes from the model (``video_sampling.json``)."""
    if args.model is None:
        args.model = str(default_model())
        print(f"model: {args.model}", file=sys.stderr)
    return scorer_from_args(args)


def main(args: argparse.Namespace) -> int:
    """Serve the page until interrupted."""
    try:
        gradio()
        scorer = scorer_for_app(args)
    except SsvqaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    page = build_app(scorer, preload=args.preload, preload_segments=args.preload_segments)
    page.launch(server_name=args.host, server_port=args.port, theme=theme())
    return 0
