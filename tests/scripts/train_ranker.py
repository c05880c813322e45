"""Train a RankTrainer for a few steps; run by tests under `accelerate launch` with 2 processes.

    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
        --dynamo_backend no tests/scripts/train_ranker.py MODEL_DIR DATASET_DIR OUTPUT_DIR
"""

import gc
import json
import sys

import ssvqa  # noqa: F401  (torchvision shim)
import datasets
import torch.distributed as dist

from ssvqa.trainer import RankConfig, RankTrainer


def main(model_dir: str, dataset_dir: str, output_dir: str) -> None:
    pairs = datasets.load_dataset(dataset_dir)
    pairs = datasets.concatenate_datasets([pairs[name] for name in pairs])
    args = RankConfig(
        output_dir=output_dir, max_steps=3, per_device_train_batch_size=2, per_device_eval_batch_size=2,
        learning_rate=1e-3, logging_steps=1, save_strategy="no", use_cpu=True, ddp_backend="gloo",
    )
    trainer = RankTrainer(model=model_dir, args=args, train_dataset=pairs, eval_dataset=pairs.select(range(6)))
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model()  # on every rank: Trainer decides who writes (ZeRO-3/FSDP gather collectively)
    if trainer.is_world_process_zero():
        summary = {"world_size": trainer.args.world_size, "eval": metrics, "steps": trainer.state.global_step}
        print("RESULT " + json.dumps(summary))
    # The trainer's DDP wrapper holds the process group: freed after destroy_process_group (when main
    # returns), its gloo teardown waited forever on the other rank in about one run in ten under load.
    del trainer
    gc.collect()
    if dist.is_initialized():
        # Both ranks meet before teardown: a rank that reaches destroy_process_group while the other is
        # still writing can leave gloo waiting forever; without teardown about one run in five aborts.
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
