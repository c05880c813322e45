"""The embedded CPU default of ssvqa: learn video quality from unlabeled, generated videos.

    bash run.sh demo                    # what the README's first command runs
    python -m ssvqa.demo --help

Steps, each resumable (rerunning skips finished work):

1. a corpus of synthetic source clips (ffmpeg's moving textures, fractals, test patterns…);
2. a distortion-pair dataset from it (no human labels: less distorted = better), split by content;
3. a small video LMM built from a config (no download), with its offline processor;
4. RankTrainer on the train pairs; held-out pair accuracy on the test split (unseen content)
   before and after training is printed as a table and saved to ``report.json``.

Everything runs on CPU in a few minutes; the same code trains Qwen2.5-VL-7B on a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEFAULT_TYPES = ("gaussian_blur", "noise", "downscale", "h264", "contrast", "exposure")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ssvqa-demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output-dir", default="outputs/demo", help="Everything the demo makes goes here.")
    parser.add_argument("--num-clips", type=int, default=12, help="Synthetic source clips in the corpus.")
    parser.add_argument("--types", nargs="+", default=list(DEFAULT_TYPES), help="Distortion types to train on.")
    parser.add_argument("--types-per-source", type=int, default=3, help="Distortion ladders per source clip.")
    parser.add_argument("--family", default="qwen2_5_vl", help="Model family of the tiny model built from a config.")
    parser.add_argument("--model-size", default="tiny", choices=("tiny", "small"), help="Size of that model.")
    parser.add_argument("--max-steps", type=int, default=200, help="Training steps.")
    parser.add_argument("--batch-size", type=int, default=8, help="Pairs per training step.")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--loss", choices=("ce", "bt"), default="ce", help="ce: level cross-entropy; bt: fidelity.")
    parser.add_argument("--num-proc", type=int, default=2, help="Processes for building the pairs.")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from dataset_builders.distortion_pairs import build_distortion_pairs
    from ssvqa.corpus import make_corpus
    from ssvqa.pair_dataset import load_pairs
    from ssvqa.testing import save_tiny_model
    from ssvqa.trainer import RankConfig, RankTrainer

    out = Path(args.output_dir)
    started = time.time()
    print(f"[1/4] corpus of {args.num_clips} synthetic clips -> {out / 'corpus'}", flush=True)
    make_corpus(out / "corpus", num_clips=args.num_clips, seed=args.seed)

    print(f"[2/4] distortion pairs ({', '.join(args.types)}) -> {out / 'pairs'}", flush=True)
    report = build_distortion_pairs(
        out / "corpus", out / "pairs", types=args.types, types_per_source=args.types_per_source,
        test_fraction=0.25, seed=args.seed, max_pixels=160 * 120, num_proc=args.num_proc,
    )
    print(report, flush=True)
    pairs = load_pairs(out / "pairs")
    if "test" not in pairs or "train" not in pairs:
        raise SystemExit("the corpus is too small to hold out any content: raise --num-clips")

    base = out / f"base-{args.family}-{args.model_size}"
    if not (base / "config.json").exists():
        print(f"[3/4] a {args.model_size} {args.family} model built from a config -> {base}", flush=True)
        save_tiny_model(base, args.family, args.model_size, seed=args.seed)
    else:
        print(f"[3/4] reusing the model at {base}", flush=True)

    print(f"[4/4] RankTrainer: {len(pairs['train'])} train pairs, {len(pairs['test'])} held-out pairs", flush=True)
    config = RankConfig(
        output_dir=str(out / "ranker"), max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size, learning_rate=args.learning_rate, lr_scheduler_type="cosine",
        warmup_steps=10, loss_type=args.loss, logging_steps=20, save_strategy="steps", save_steps=50,
        save_total_limit=1, eval_strategy="no", use_cpu=True, seed=args.seed, max_pixels=112 * 112,
    )
    trainer = RankTrainer(model=str(base), args=config, train_dataset=pairs["train"], eval_dataset=pairs["test"])
    before = trainer.evaluate()
    checkpoints = sorted(Path(config.output_dir).glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=bool(checkpoints) or None)
    after = trainer.evaluate()
    trainer.save_model()

    rows = [("held-out pair accuracy", before["eval_pair_accuracy"], after["eval_pair_accuracy"]),
            ("held-out loss", before["eval_loss"], after["eval_loss"])]
    summary = {
        "train_pairs": len(pairs["train"]), "test_pairs": len(pairs["test"]), "steps": trainer.state.global_step,
        "before": before, "after": after, "seconds": round(time.time() - started, 1), "model": config.output_dir,
    }
    Path(out, "report.json").write_text(json.dumps(summary, indent=2))
    print("\n| metric | before training | after training |\n|---|---|---|")
    for name, first, last in rows:
        print(f"| {name} | {first:.3f} | {last:.3f} |")
    print(f"\nchance is 0.500; {summary['seconds']} s in all; ranker saved to {config.output_dir}; "
          f"report in {out / 'report.json'}")
    return summary


if __name__ == "__main__":
    main()
