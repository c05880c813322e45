"""Per-GPU training memory of the 7B/8B round recipes, estimated from the models' published configs.

Builds each model on the ``meta`` device from ``bench/model_configs/*.json`` (copies of the
published ``config.json``: Qwen/Qwen2.5-VL-7B-Instruct, Qwen/Qwen3-VL-8B-Instruct,
llava-hf/llava-onevision-qwen2-7b-ov-hf) and applies :func:`ssvqa.memory.estimate_memory` (the
formulas are documented there) to a recipe's batch, frames, pixel budget, LoRA rank, quantization
and checkpointing. No weights and no GPU are needed; ``bench/bench_qlora_gpu.py`` measures.

Run: ``python bench/estimate_memory.py [RECIPE.yaml ...] [--world-size 8] [--sharding zero3]``
(default: the three QLoRA round recipes on one GPU, DDP). A recipe that trains the vision side in
full with the language model frozen (W2S-VQA's parts: ``recipes/*/w2s/config.yaml``) is
estimated for those parts; run it with ``--sharding zero2 --world-size 8``, as it is launched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = {
    "Qwen/Qwen2.5-VL-7B-Instruct": HERE / "model_configs" / "qwen2_5_vl_7b.json",
    "Qwen/Qwen3-VL-8B-Instruct": HERE / "model_configs" / "qwen3_vl_8b.json",
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": HERE / "model_configs" / "llava_onevision_7b.json",
}
RECIPES = [ROOT / "recipes" / name / "round" / "config.yaml" for name in ("qwen2_5_vl_7b", "qwen3_vl_8b", "llava_onevision_7b")]


def estimate_recipe(recipe: Path, world_size: int = 1, sharding: str = "ddp"):
    """The estimate for a round recipe YAML (its model must be one of ``CONFIGS``)."""
    from transformers import AutoConfig

    from ssvqa.memory import estimate_memory
    from ssvqa.model_parts import TrainableParts

    fields = yaml.safe_load(Path(recipe).read_text())
    model = fields["model_name_or_path"]
    if model not in CONFIGS:
        raise SystemExit(f"{recipe}: no stored config for {model!r} (known: {', '.join(CONFIGS)})")
    config = AutoConfig.from_pretrained(CONFIGS[model])
    return estimate_memory(
        config,
        batch_size=fields["per_device_train_batch_size"],
        num_frames=fields.get("max_frames") or fields["num_frames"],
        max_pixels=fields["max_pixels"],
        lora_r=fields.get("lora_r", 16),
        quantized=bool(fields.get("load_in_4bit")),
        dtype_bytes=2 if fields.get("dtype") in ("bfloat16", "float16") else 4,
        gradient_checkpointing=bool(fields.get("activation_checkpointing") or fields.get("gradient_checkpointing")),
        sharding=sharding,
        world_size=world_size,
        parts=TrainableParts.from_settings(
            **{part: fields.get(part) for part in ("vision_tower", "projector", "language_model")},
            lora=bool(fields.get("use_peft")),
            train_vision_projector=bool((fields.get("model_init_kwargs") or {}).get("train_vision_projector")),
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", type=Path, default=RECIPES)
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--sharding", choices=["ddp", "zero2", "zero3"], default="ddp")
    args = parser.parse_args()
    for recipe in args.recipes:
        fields = yaml.safe_load(recipe.read_text())
        estimate = estimate_recipe(recipe, args.world_size, args.sharding)
        c = estimate.counts
        title = (f"{recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else recipe}: {fields['model_name_or_path']}, "
                 f"batch {fields['per_device_train_batch_size']} pairs, {fields.get('max_frames') or fields['num_frames']} frames, "
                 f"max_pixels {fields['max_pixels']}, {args.sharding} x{args.world_size}\n"
                 f"  parameters {c['total'] / 1e9:.2f}B (4-bit-able {c['quantizable'] / 1e9:.2f}B), "
                 + (f"trained in full {c['trained'] / 1e6:.1f}M" if "trained" in c else
                    f"LoRA r={fields.get('lora_r', 16)} {c['lora'] / 1e6:.1f}M")
                 + f"; {c['tokens_per_video']} visual tokens per video, {c['tokens_per_batch']} tokens per micro-batch")
        print(estimate.table(title) + "\n")


if __name__ == "__main__":
    main()
