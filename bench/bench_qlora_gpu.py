"""QLoRA training step of a random-init Qwen2.5-VL-7B on one GPU: peak memory and pairs/s.

Needs a CUDA GPU (refuses otherwise) and no download: the model is built from its published
config (``bench/model_configs/qwen2_5_vl_7b.json``) with random weights in bf16, saved to a
scratch folder, and loaded back through the project's loader, ``ssvqa.modeling.load_ranker``
(4-bit NF4 language model, LoRA r=32 on the "auto" target, gradient checkpointing), exactly as
the round recipe loads it. The processor is the offline Qwen2.5-VL one of ``ssvqa.testing`` with
its pixel budget raised to the recipe's (448 x 448 per frame): the token ids differ from the real
tokenizer's, which changes nothing for memory or speed.

Two loops on the same batches (``--batch-size`` pairs of ``--frames`` random frames):

* ``ranker`` — what training does per step: ``encode_pairs`` from decoded frames, the forward with
  ``logits_to_keep=1``, cross-entropy over the five level words, backward, AdamW step;
* ``bare``   — the forward and backward alone on the already-encoded batch, no optimizer.

It prints peak allocated memory (``torch.cuda.max_memory_allocated``) per loop, pairs/s and the
ratio ranker/bare, next to ``ssvqa.memory.estimate_memory``'s figure for the same settings.

Run: ``python bench/bench_qlora_gpu.py [--steps 5] [--batch-size 2] [--frames 8] [--scratch /tmp/qwen7b]``
(~17 GB of disk for the random bf16 checkpoint; CI never runs this).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "model_configs" / "qwen2_5_vl_7b.json"


def build_checkpoint(folder: Path, config_file: Path, max_pixels: int) -> Path:
    """Random bf16 weights of ``config_file`` + the offline processor, as a ``from_pretrained`` folder."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    from ssvqa.testing import build_processor

    if (folder / "config.json").exists():
        return folder
    processor = build_processor("qwen2_5_vl")
    processor.video_processor.size = {"shortest_edge": 28 * 28, "longest_edge": max_pixels}
    config = AutoConfig.from_pretrained(config_file)
    tokenizer = processor.tokenizer
    for field, token in (("video_token_id", "<|video_pad|>"), ("image_token_id", "<|image_pad|>"),
                         ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        setattr(config, field, tokenizer.convert_tokens_to_ids(token))
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    del model
    return folder


def run(folder: Path, *, steps: int, batch_size: int, frames: int, side: int, device: str, quantization: str | None = "4bit"):
    """Both loops; returns ``{"ranker": {...}, "bare": {...}}`` with peak bytes and pairs/s."""
    from ssvqa.modeling import batch_to_model, load_ranker
    from ssvqa.prompts import answer_logits, encode_pairs, level_token_ids

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    model, processor = load_ranker(folder, quantization=quantization, lora=True, lora_r=32, lora_alpha=64,
                                   dtype=dtype, gradient_checkpointing=True, device_map=device if cuda else None)
    model.train()
    level_ids = level_token_ids(processor.tokenizer)
    generator = torch.Generator().manual_seed(0)
    clips = [torch.randint(0, 256, (frames, 3, side, side), dtype=torch.uint8, generator=generator) for _ in range(2 * batch_size)]
    targets = torch.arange(batch_size, device=device) % 5
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def loss_of(batch):
        logits = model(**batch, use_cache=False, logits_to_keep=1).logits
        return torch.nn.functional.cross_entropy(answer_logits(logits, batch["attention_mask"], level_ids).float(), targets)

    def ranker_step():
        batch = batch_to_model(encode_pairs(processor, clips[:batch_size], clips[batch_size:],
                                            processor_kwargs={"padding_side": "left"}), model)
        loss_of(batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    encoded = batch_to_model(encode_pairs(processor, clips[:batch_size], clips[batch_size:],
                                          processor_kwargs={"padding_side": "left"}), model)

    def bare_step():
        loss_of(encoded).backward()
        model.zero_grad(set_to_none=True)

    results = {"tokens_per_batch": int(encoded["input_ids"].numel())}
    for name, step in (("bare", bare_step), ("ranker", ranker_step)):
        step()  # warm-up (kernels, allocator, optimizer states)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        results[name] = {"pairs_per_s": steps * batch_size / seconds,
                         "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--side", type=int, default=448, help="frame side in pixels (448: the recipe's max_pixels)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the random checkpoint (kept for reruns)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_qlora_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False): nothing was run. "
                 "For a CPU-only figure use bench/estimate_memory.py.")
    from transformers import AutoConfig

    from ssvqa.memory import GIB, estimate_memory

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="qwen7b-random-"))
    folder = build_checkpoint(scratch, CONFIG, args.side * args.side)
    results = run(folder, steps=args.steps, batch_size=args.batch_size, frames=args.frames, side=args.side, device="cuda:0")
    estimate = estimate_memory(AutoConfig.from_pretrained(CONFIG), batch_size=args.batch_size, num_frames=args.frames,
                               max_pixels=args.side * args.side, lora_r=32)
    print(f"{torch.cuda.get_device_name(0)}; Qwen2.5-VL-7B random init, 4-bit + LoRA r=32, checkpointing, "
          f"batch {args.batch_size} pairs x {args.frames} frames of {args.side}x{args.side}, "
          f"{results['tokens_per_batch']} tokens per batch, {args.steps} steps")
    for name in ("bare", "ranker"):
        r = results[name]
        print(f"  {name:<7} {r['pairs_per_s']:7.2f} pairs/s   peak {r['peak_bytes'] / GIB:6.2f} GiB")
    print(f"  ratio ranker/bare: {results['ranker']['pairs_per_s'] / results['bare']['pairs_per_s']:.2f}; "
          f"estimate (bench/estimate_memory.py, incl. 1 GiB runtime): {estimate.total / GIB:.2f} GiB")


if __name__ == "__main__":
    main()
