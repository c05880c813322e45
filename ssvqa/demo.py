"""The embedded CPU default of ssvqa: three self-improvement rounds on generated videos.

    bash run.sh demo                          # what the README's first command runs
    bash run.sh demo --rounds 1 --max_steps 50
    python -m ssvqa.demo --help

It runs rounds 0, 1, 2 of ``recipes/tiny/round.yaml`` (:func:`ssvqa.rounds.run_round`, one call per
round, in one process) on the world this module generates (:class:`DemoArguments`,
:func:`generate_data`; ``recipes/round.py`` does the same with ``generate_data: true``): generated corpus, distortion pairs and a pool of videos whose quality is hidden
from the teachers, a small video LMM built from a config (nothing is downloaded), the RankTrainer,
relabelling by the previous round's ranker, evaluation, and the per-round table. Everything is
resumable: run it again and finished rounds are skipped. Any recipe field can be overridden
(``--max_steps 300``, ``--output_dir elsewhere``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ssvqa.console import add_verbose_argument, setup_output
from ssvqa.io import atomic_write_json

TINY_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "round.yaml"
GENERATED_FILE = "generated.json"  # in output_dir/data: the RoundArguments fields the world fills


@dataclass
class DemoArguments:
    """The demo's world: what :func:`generate_data` makes under ``output_dir/data`` for the rounds."""

    generate_data: bool = field(default=False, metadata={"help": "Make the pair datasets under output_dir/data (the embedded CPU default)."})
    corpus_clips: int = field(default=16, metadata={"help": "generate_data: source clips for distortion pairs."})
    test_fraction: float = field(default=0.25, metadata={"help": "generate_data: share of the distortion pairs' contents held out as their test split (the rounds' held-out pair accuracy draws max_eval_pairs from it)."})
    pool_clips: int = field(default=16, metadata={"help": "generate_data: source clips of the pseudo-label pool."})
    heldout_clips: int = field(default=8, metadata={"help": "generate_data: source clips of the held-out scored set."})
    clip_seconds: float = field(default=2.0, metadata={"help": "generate_data: length of every generated clip (training samples num_frames of it)."})
    versions_per_clip: int = field(default=3, metadata={"help": "generate_data: graded versions of each pool/held-out clip."})
    distortion_types: list[str] = field(default_factory=lambda: ["gaussian_blur", "downscale"], metadata={"help": "generate_data: distortion types."})
    teachers: list[str] = field(default_factory=lambda: ["classical"], metadata={"help": "generate_data: teachers of the pseudo-label pairs."})
    pseudo_pairs_per_video: int = field(default=4, metadata={"help": "generate_data: pseudo pairs per pool video."})
    graded_versions_per_clip: int = field(default=0, metadata={"help": "generate_data: graded versions (random levels and types, as the pool's) of each training clip of the distortion pairs, paired across contents by their known level (origin mos, all train; set eval_origins: [distortion] to keep them out of the warm start). 0 makes none; measured on one seed only (recipes/tiny/README.md)."})
    graded_pairs_per_video: int = field(default=4, metadata={"help": "generate_data: pairs per graded training video."})


def prepare_world(demo: DemoArguments, round_args, training_args) -> None:
    """With ``demo.generate_data``: make the world once (the main process, the others wait) and fill
    the round's fields it makes (:func:`generate_data`) that the recipe leaves empty. Every process
    calls it."""
    if not demo.generate_data:
        return
    from accelerate import PartialState

    state = PartialState(cpu=bool(getattr(training_args, "use_cpu", False)))
    data_dir = Path(training_args.output_dir) / "data"
    with state.main_process_first():
        if state.is_main_process:
            filled = generate_data(demo, data_dir, seed=training_args.seed)
            atomic_write_json(data_dir / GENERATED_FILE, filled, indent=2)  # a kill never leaves half a file
    for key, value in json.loads((data_dir / GENERATED_FILE).read_text()).items():
        setattr(round_args, key, getattr(round_args, key) or value)


def generate_data(args: DemoArguments, data_dir: Path, seed: int = 0) -> dict[str, str]:
    """The embedded default's data, made once under ``data_dir`` (each step resumes).

    * ``corpus/`` synthetic clips -> ``distortion-pairs/`` (exact labels, split by content);
    * ``pool/``: other clips in graded versions whose quality is hidden in ``quality.csv``
      (:func:`ssvqa.corpus.make_graded_pool`) -> ``pseudo-pairs/`` labelled by the teachers
      (all pool videos are training data; the teachers never see the hidden quality);
    * ``heldout/``: graded versions of yet other clips, the scored set for SRCC;
    * with ``graded_versions_per_clip``: ``graded/``, graded versions of the distortion pairs'
      *training* contents (the test split's never) -> ``graded-pairs/``: pairs of two videos,
      mostly of different contents, labelled by their known levels (:func:`ssvqa.pairs.build_mos_pairs`
      on ``mos = 100 (1 - level / 4)``, origin ``mos``, all in train). Distortion pairs only ever
      compare two versions of one content; scoring against anchors and relabelling the pool compare
      different contents. The labels rest on the catalogue's calibration across types (a level is a
      similar SSIM loss), the same scale the pool's hidden quality uses -- the demo's stand-in for a
      little human-labelled data (MOS pairs), never the pool's or the held-out set's own labels;
    * ``anchors/``: one version of each of five training clips, at levels 0-4 in turn (each a
      random type of ``distortion_types``): the scores' anchors span quality, contents and types.

    Returns the ``RoundArguments`` fields it fills: ``pair_datasets``, ``benchmarks``,
    ``anchors``, ``hidden_quality``, and where rounds ``k > 0`` draw new pairs from: ``pool`` (the
    pool's videos), ``synthetic_sources`` (the training clips) and ``synthetic_types``.
    """
    from ssvqa.corpus import make_corpus, make_graded_pool
    from ssvqa.pairs import build_distortion_pairs, build_pseudo_pairs

    total = args.corpus_clips + args.pool_clips + args.heldout_clips
    clips = make_corpus(data_dir / "corpus", num_clips=total, seed=seed, duration=args.clip_seconds)
    train_clips = clips[: args.corpus_clips]
    pool_clips = clips[args.corpus_clips : args.corpus_clips + args.pool_clips]
    heldout_clips = clips[args.corpus_clips + args.pool_clips :]
    (data_dir / "sources").mkdir(parents=True, exist_ok=True)
    for name, sources in (("train", train_clips), ("pool", pool_clips), ("heldout", heldout_clips)):
        (data_dir / "sources" / f"{name}.txt").write_text("".join(f"{p.resolve()}\n" for p in sources))

    distortion_dir = data_dir / "distortion-pairs"
    if not (distortion_dir / "README.md").exists():
        print(f"[data] distortion pairs of {len(train_clips)} clips -> {distortion_dir}", flush=True)
        build_distortion_pairs(data_dir / "sources" / "train.txt", distortion_dir, types=args.distortion_types,
                               types_per_source=len(args.distortion_types), test_fraction=args.test_fraction, seed=seed,
                               max_pixels=160 * 120, num_proc=min(4, os.cpu_count() or 1))
    pool = make_graded_pool(pool_clips, data_dir / "pool", types=args.distortion_types,
                            versions_per_source=args.versions_per_clip, seed=seed + 1)
    pseudo_dir = data_dir / "pseudo-pairs"
    if not (pseudo_dir / "README.md").exists():
        print(f"[data] pseudo-label pairs of the pool, teachers {', '.join(args.teachers)} -> {pseudo_dir}", flush=True)
        videos = sorted(p for p in (data_dir / "pool").glob("*.mp4"))
        # every pool video trains: the pool has no test split (held-out accuracy uses exact labels)
        build_pseudo_pairs(videos, pseudo_dir, teachers=args.teachers, max_pairs_per_video=args.pseudo_pairs_per_video,
                           test_fraction=0.0, seed=seed, progress=False)
    datasets = [str(distortion_dir), str(pseudo_dir)]
    if args.graded_versions_per_clip:
        datasets.append(str(_graded_pairs(args, train_clips, distortion_dir, data_dir, seed)))
    # every level of every held-out clip: the scores of each clip's ladder should fall with severity
    heldout = make_graded_pool(heldout_clips, data_dir / "heldout", types=args.distortion_types,
                               versions_per_source=5, seed=seed + 2)
    anchor_clips = train_clips[:5]
    spread = [round(4 * i / max(1, len(anchor_clips) - 1)) for i in range(len(anchor_clips))]  # levels 0..4
    anchors = make_graded_pool(anchor_clips, data_dir / "anchors", types=args.distortion_types, levels=spread, seed=seed + 3)
    return {"pair_datasets": datasets, "benchmarks": [str(heldout)],
            "anchors": str(anchors), "hidden_quality": str(pool), "pool": str(data_dir / "pool"),
            "synthetic_sources": str(data_dir / "sources" / "train.txt"), "synthetic_types": list(args.distortion_types),
            "synthetic_max_pixels": 160 * 120}


def _graded_pairs(args: DemoArguments, clips: list[Path], distortion_dir: Path, data_dir: Path, seed: int) -> Path:
    """``graded-pairs/``: graded versions of those ``clips`` that are training contents of the
    distortion pairs (their content id, the clip's hash, is in the train split), paired by level."""
    from ssvqa.corpus import make_graded_pool
    from ssvqa.pairs import build_mos_pairs
    from ssvqa.pairs.card import summarize
    from ssvqa.video import content_hash

    folder = data_dir / "graded-pairs"
    if (folder / "README.md").exists():
        return folder
    train = summarize(distortion_dir).contents.get("train", set())
    sources = [clip for clip in clips if content_hash(clip)[:16] in train]  # the distortion builder's content id
    print(f"[data] graded versions of {len(sources)} training clips, pairs across contents -> {folder}", flush=True)
    quality = make_graded_pool(sources, data_dir / "graded", types=args.distortion_types,
                               versions_per_source=args.graded_versions_per_clip, seed=seed + 4)
    # versions of one source share the name's index: their group keeps a content's versions together
    build_mos_pairs(str(quality), folder, pairs_per_video=args.graded_pairs_per_video, content_regex=r"^(\d+)-",
                    test_fraction=0.0, seed=seed)
    return folder


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="bash run.sh demo",
        description=(
            "Three self-improvement rounds of a small video LMM on CPU, from videos it generates (no downloads):\n"
            "distortion pairs, teachers' pseudo labels, training, relabelling by the last round's ranker, scores.\n"
            "Prints a line per stage and a table per round; finished rounds are skipped when run again."
        ),
        epilog=(
            "Other options are fields of the recipe (python recipes/round.py --help lists them all).\n\n"
            "examples:\n  bash run.sh demo\n  bash run.sh demo --rounds 1 --max_steps 50\n"
            "  python -m ssvqa.demo --output_dir elsewhere --verbose"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="run rounds 0 .. ROUNDS-1 (default: 3)")
    parser.add_argument("--config", default=str(TINY_RECIPE), help="the recipe (default: recipes/tiny/round.yaml)")
    add_verbose_argument(parser)
    args, overrides = parser.parse_known_args(argv)
    if any(flag in overrides for flag in ("--round", "--config")):
        parser.error("--round is chosen by --rounds; pass the recipe with --config")
    setup_output(args.verbose)

    from trl import ModelConfig, TrlParser

    from ssvqa.rounds import RoundArguments, run_round
    from ssvqa.trainer import RankConfig

    reports = []
    for k in range(args.rounds):
        print(f"=== round {k} ===", flush=True)
        recipe = TrlParser((RoundArguments, DemoArguments, RankConfig, ModelConfig))
        script_args, demo_args, training_args, model_args = recipe.parse_args_and_config(
            args=["--config", args.config, *overrides, "--round", str(k)]
        )
        prepare_world(demo_args, script_args, training_args)
        reports.append(run_round(script_args, training_args, model_args))
    return reports


if __name__ == "__main__":
    main(sys.argv[1:])
