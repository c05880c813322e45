"""One self-improvement round of ssvqa: (re)label pairs, train the ranker, evaluate, publish.

Each run is one round ``k`` (``--round k``); artifacts go to ``output_dir/round-k/`` (model with
card and anchors, the round's pair dataset with card, ``report.json``) and, when hub ids are
given, to the Hub at branch ``round-k``. What each step does: ``ssvqa/rounds/``; the
embedded default's world (``generate_data: true``): ``ssvqa/demo.py``.

The embedded CPU default (generated videos, a small model built from a config, no downloads)::

    python recipes/round.py --config recipes/tiny/round.yaml --round 0
    python recipes/round.py --config recipes/tiny/round.yaml --round 1
    python recipes/round.py --config recipes/tiny/round.yaml --round 2

Two CPU processes (DDP on gloo)::

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        recipes/round.py --config recipes/tiny/round.yaml --round 0

Qwen2.5-VL-7B with QLoRA on one GPU (rounds 0, 1, 2 in turn), or bf16 LoRA on eight GPUs::

    accelerate launch --config_file recipes/accelerate_configs/ddp.yaml --num_processes 1 \\
        recipes/round.py --config recipes/qwen2_5_vl_7b/round/config.yaml --round 0
    accelerate launch --config_file recipes/accelerate_configs/ddp.yaml --num_processes 8 \\
        recipes/round.py --config recipes/qwen2_5_vl_7b/round/config_zero3.yaml --round 0

(recipes/README.md has every recipe's launch lines, ZeRO-3 included, and what to build first.)

Any field of the YAML can be overridden on the command line (``--max_steps 50``).
"""

import sys

from ssvqa.console import setup_output

# Before trl, transformers and bitsandbytes are imported: their bars and notices stay quiet.
setup_output(verbose="--verbose" in sys.argv[1:])

from trl import ModelConfig, TrlParser  # noqa: E402

from ssvqa.demo import DemoArguments, prepare_world  # noqa: E402
from ssvqa.errors import SsvqaError  # noqa: E402
from ssvqa.rounds import RoundArguments, run_round  # noqa: E402
from ssvqa.trainer import RankConfig  # noqa: E402


def main(script_args: RoundArguments, training_args: RankConfig, model_args: ModelConfig,
         demo_args: DemoArguments | None = None) -> dict:
    try:
        if demo_args is not None:
            prepare_world(demo_args, script_args, training_args)  # the embedded default's videos and pairs
        return run_round(script_args, training_args, model_args)
    except SsvqaError as error:  # a refused dataset row, a checkpoint that does not fit: said plainly, exit 1
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    parser = TrlParser((RoundArguments, DemoArguments, RankConfig, ModelConfig))
    script_args, demo_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args, demo_args)
