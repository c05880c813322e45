"""The embedded CPU default of ssvqa: three self-improvement rounds on generated videos.

    bash run.sh demo                          # what the README's first command runs
    bash run.sh demo --rounds 1 --max_steps 50
    python -m ssvqa.demo --help

It runs rounds 0, 1, 2 of ``recipes/tiny/round.yaml`` (``recipes/round.py``, one call per round,
in one process): generated corpus, distortion pairs and a pool of videos whose quality is hidden
from the teachers, a small video LMM built from a config (nothing is downloaded), the RankTrainer,
relabelling by the previous round's ranker, evaluation, and the per-round table. Everything is
resumable: run it again and finished rounds are skipped. Any recipe field can be overridden
(``--max_steps 300``, ``--output_dir elsewhere``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssvqa.console import add_verbose_argument, setup_output

TINY_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "round.yaml"


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
        recipe = TrlParser((RoundArguments, RankConfig, ModelConfig))
        script_args, training_args, model_args = recipe.parse_args_and_config(
            args=["--config", args.config, *overrides, "--round", str(k)]
        )
        reports.append(run_round(script_args, training_args, model_args))
    return reports


if __name__ == "__main__":
    main(sys.argv[1:])
