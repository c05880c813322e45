"""Command-line options that several ``ssvqa`` commands share, and what they build.

- :func:`add_builder_arguments`, :func:`add_publishing_arguments`, :func:`builder_kwargs`: the
  inputs, output, sharding and publishing options of every ``build-*-pairs`` command;
- :func:`add_model_arguments`, :func:`scorer_from_args`: the ranker and how it is asked, for
  ``score``, ``evaluate`` and ``app``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ssvqa.bradley_terry import CALIBRATIONS
from ssvqa.errors import InputNotFoundError, SsvqaError, UsageError


def add_builder_arguments(parser: argparse.ArgumentParser, what_title: str):
    """Add the options every pair builder takes: inputs, output folder, sharding, work folder and
    publishing. Returns the ``(what, how)`` argument groups for the builder's own options."""
    parser.add_argument(
        "inputs",
        type=_input_spec,
        help="a folder of videos, a list file (one path per line, relative to the list's folder), "
        "a video file, a dataset folder, or a Hub dataset id with a Video column",
    )
    parser.add_argument("-o", "--output-dir", required=True, help="the dataset folder to write (created if missing)")
    parser.add_argument("--video-column", default="video", help="the Video column of a dataset input (default: video)")
    what = parser.add_argument_group(what_title)
    how = parser.add_argument_group("how to run")
    how.add_argument("--shard-index", type=_count(0), default=0, help="this machine's shard, 0-based (default: 0)")
    how.add_argument("--num-shards", type=_count(1), default=1, help="machines sharing the inputs (default: 1)")
    how.add_argument(
        "--work-dir", default=None, help="resumable work folder and caches (default: OUTPUT_DIR/.work, never uploaded)"
    )
    add_publishing_arguments(parser)
    return what, how


def _input_spec(text: str) -> str:
    """The builders' ``inputs``: an existing path or a Hub dataset id, checked when parsing."""
    from ssvqa.hub import local_or_hub_id

    try:
        return local_or_hub_id(text)
    except InputNotFoundError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= {minimum}")
        return value

    return parse


def add_publishing_arguments(parser: argparse.ArgumentParser, private_help: str = "create the Hub repo private") -> None:
    """The ``publishing`` options every builder shares (``--push-to-hub``, ``--revision``, ...)."""
    hub = parser.add_argument_group("publishing")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="also upload the dataset folder to this Hub dataset repo")
    hub.add_argument("--revision", default=None, help="branch of the Hub repo to upload to (created if missing)")
    hub.add_argument("--private", action="store_true", help=private_help)
    hub.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login); never printed")
    hub.add_argument("--license", default="other", help="license id for the dataset card (default: other)")


def builder_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the options :func:`add_builder_arguments` added, for a builder function."""
    names = ("shard_index", "num_shards", "video_column", "work_dir")
    return {**{name: getattr(args, name) for name in names}, **publishing_kwargs(args)}


def publishing_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``license`` and ``push_to_hub`` (a :class:`~ssvqa.hub.HubPush`) from the publishing options."""
    from ssvqa.hub import HubPush

    push = HubPush(args.push_to_hub, revision=args.revision, private=args.private, token=args.token) if args.push_to_hub else None
    return {"license": args.license, "push_to_hub": push}


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool = True, model_help: str = "ranker folder or Hub id") -> None:
    """Options shared by ``ssvqa score``, ``evaluate`` and ``app``: the ranker and how it is asked."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", required=required, default=None, type=_model_spec, help=model_help)
    group.add_argument("--adapter", default=None, type=_model_spec, help="LoRA adapter folder or Hub id to load on top of --model")
    group.add_argument("--anchors", default=None, type=_anchors_spec, help="an anchors.json (default: the one saved with the adapter or model)")
    group.add_argument("--quantization", choices=["4bit", "8bit"], default=None, help="load the language model quantized")
    sampling = "default: the ranker's training sampling, from its video_sampling.json"
    group.add_argument("--num-frames", type=int, default=None, help=f"frames per video ({sampling})")
    group.add_argument("--fps", type=float, default=None, help=f"sample frames at this rate instead ({sampling})")
    group.add_argument("--max-pixels", type=int, default=None, help=f"pixel budget per frame ({sampling})")
    group.add_argument("--batch-size", type=int, default=8, help="pairs per forward pass (default: 8)")
    group.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of the level logits (default: 1)")
    group.add_argument("--mirrored", action="store_true", help="ask both orders of every pair and average")
    group.add_argument(
        "--calibration", choices=CALIBRATIONS, default="logistic",
        help="latent score to 0-100: logistic fitted to the anchors (default; no clamping) or minmax (the paper's rule)",
    )


def _model_spec(text: str) -> str:
    """``--model`` and ``--adapter``: an existing folder or a Hub id, checked when parsing (a
    mistyped path fails at once instead of after a wait for the Hub)."""
    from ssvqa.hub import local_or_hub_id

    try:
        return local_or_hub_id(text, "model folder")
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _anchors_spec(text: str) -> str:
    """``--anchors``: a readable anchors file (or a folder holding one) with at least 2 anchors."""
    path = Path(text)
    try:
        from ssvqa.scorer import ANCHORS_FILE, read_anchors

        read_anchors(path / ANCHORS_FILE if path.is_dir() else path)
    except SsvqaError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def scorer_from_args(args: argparse.Namespace, anchors=None):
    """A :class:`QualityScorer` from the options of :func:`add_model_arguments`.

    With ``--no-progress`` (``args.no_progress``), transformers' and the Hub client's bars
    (e.g. "Loading weights") are turned off too.
    """
    if getattr(args, "no_progress", False):
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    import torch

    from ssvqa.parallel import launch_processes
    from ssvqa.scorer import QualityScorer

    processes = launch_processes()  # under `accelerate launch`: the comparisons are split across the processes
    device_map = None
    if torch.cuda.is_available():
        device_map = {"": processes.local_process_index} if processes is not None else "auto"
    sampling = {"num_frames": args.num_frames, "fps": args.fps, "max_pixels": args.max_pixels}  # None: the model's own
    return QualityScorer.from_pretrained(
        args.model, anchors if anchors is not None else args.anchors, adapter=args.adapter, **sampling,
        temperature=args.temperature, mirrored=args.mirrored, batch_size=args.batch_size, calibration=args.calibration,
        quantization=args.quantization, device_map=device_map, processes=processes,
    )


def is_main_process(scorer) -> bool:
    """Whether this process prints and writes (the only process, or the launch's main one)."""
    return scorer.processes is None or scorer.processes.is_main_process
