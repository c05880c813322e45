"""RankTrainer step cost against a bare forward + backward + optimizer loop, and collator cost.

    .venv/bin/python bench/bench_trainer.py [--steps 30] [--batch-size 4] [--size tiny]

Both loops train the same model family on the *same* pre-collated batches, so the ratio is the
trainer's own overhead (loss, gathered metrics, logging, scheduler). Target: <= 1.10. The
collator is timed separately on the same rows (decode + processor), and the count of decodes per
batch is printed next to the distinct videos in it (each video is decoded once per batch).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ssvqa  # noqa: F401  (torchvision shim first)
import datasets
import torch
from transformers import TrainerCallback

from ssvqa.pairs.dataset import load_pairs

import ssvqa.collator as collator_module
from ssvqa.pairs.distortion import build_distortion_pairs
from ssvqa.corpus import make_corpus
from ssvqa.testing import save_tiny_model
from ssvqa.trainer import RankConfig, RankTrainer


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


class Replay:
    """A collator that hands out pre-collated batches in order (both loops see the same batches)."""

    def __init__(self, batches):
        self.batches, self.index = batches, 0

    def __call__(self, rows):
        batch = self.batches[self.index % len(self.batches)]
        self.index += 1
        return {key: value.clone() for key, value in batch.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--size", default="tiny", choices=("tiny", "small"))
    parser.add_argument("--family", default="qwen2_5_vl")
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = make_corpus(tmp / "src", num_clips=4, duration=1.6, size=(160, 120))
        build_distortion_pairs(sources, tmp / "pairs", types=["gaussian_blur", "noise"],
                               types_per_source=2, test_fraction=0.0, max_pixels=160 * 120)
        pairs = load_pairs(tmp / "pairs")["train"]
        for column in ("video_a", "video_b"):
            pairs = pairs.cast_column(column, datasets.Video(decode=False))
        model_dir = save_tiny_model(tmp / "model", args.family, args.size)
        config = dict(output_dir=str(tmp / "out"), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                      learning_rate=1e-4, logging_steps=10, save_strategy="no", use_cpu=True, seed=0)

        # Collator: decode + processor, on real rows.
        trainer = RankTrainer(model=str(model_dir), args=RankConfig(**config), train_dataset=pairs)
        collate = trainer.data_collator
        decodes, real_decode = [], collator_module.decode_frames
        collator_module.decode_frames = lambda *a, **k: (decodes.append(1), real_decode(*a, **k))[1]
        batches, collate_times, distinct = [], [], []
        for start in range(0, args.steps * args.batch_size, args.batch_size):
            rows = [pairs[(start + i) % len(pairs)] for i in range(args.batch_size)]
            distinct.append(len({row[c]["bytes"] for row in rows for c in ("video_a", "video_b")}))
            t0 = time.perf_counter()
            batches.append(collate(rows))
            collate_times.append(time.perf_counter() - t0)
        collator_module.decode_frames = real_decode

        # Bare loop: forward + backward + AdamW on the same batches, same model, same loss.
        model = trainer.model
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        bare = []
        for batch in batches:
            t0 = time.perf_counter()
            inputs = {k: v for k, v in batch.items() if k not in ("level", "prob", "target", "swapped")}
            logits = model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1, trainer.level_ids].float()
            loss = -(batch["target"] * torch.log_softmax(logits, -1)).sum(-1).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            bare.append(time.perf_counter() - t0)

        # RankTrainer on the same batches (fresh model, same weights).
        timer = StepTimer()
        trainer = RankTrainer(model=str(model_dir), args=RankConfig(**config), train_dataset=pairs,
                              data_collator=Replay(batches), callbacks=[timer])
        trainer.train()

    skip = min(3, args.steps // 3)  # warm-up steps (allocator, first-call overheads) on both sides
    bare_step = statistics.median(bare[skip:])
    trainer_step = statistics.median(timer.times[skip:])
    collate_step = statistics.median(collate_times)
    print(f"model {args.family}/{args.size}, batch {args.batch_size} pairs, {args.steps} steps (median of steps {skip}+)")
    print(f"bare forward+backward+optimizer step : {bare_step * 1000:8.1f} ms")
    print(f"RankTrainer step                     : {trainer_step * 1000:8.1f} ms")
    print(f"ratio trainer / bare                 : {trainer_step / bare_step:8.3f}   (target <= 1.10)")
    print(f"collator (decode + processor) / batch: {collate_step * 1000:8.1f} ms = {collate_step / trainer_step:.2f}x a step")
    print(f"decodes {len(decodes)} for {sum(distinct)} distinct videos per batch summed "
          f"({2 * args.batch_size * len(batches)} video slots)")


if __name__ == "__main__":
    main()
