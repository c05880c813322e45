"""Run by tests/test_parallel.py under torchrun with 2 CPU processes (gloo): compare_shared on a
tiny model sharded with FSDP2 (fully_shard per decoder layer and the root) against compare on the
whole model in one process."""

import gc
import json

import torch
import torch.distributed as dist
from accelerate import PartialState
from torch.distributed.fsdp import fully_shard

import ssvqa  # noqa: F401  (torchvision shim)
from ssvqa.modeling import compare
from ssvqa.parallel import compare_shared
from ssvqa.testing import build_tiny_model

state = PartialState(cpu=True)
model, processor = build_tiny_model("qwen2_5_vl", seed=0)
full = sum(p.numel() for p in model.parameters())
generator = torch.Generator().manual_seed(0)
clips = [torch.randint(0, 256, (4, 3, 56, 56), dtype=torch.uint8, generator=generator) for _ in range(10)]
firsts, seconds = clips[:5], clips[5:]  # 5 pairs: shares of 3 and 2, padded to 3 forward passes each
reference = compare(model, processor, firsts, seconds, batch_size=2)
for layer in model.model.language_model.layers:
    fully_shard(layer)
fully_shard(model)
local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in model.parameters())
got = compare_shared(model, processor, firsts, seconds, processes=state, batch_size=2)
if state.is_main_process:
    print("RESULT " + json.dumps({"max_abs_diff": float((got - reference).abs().max()), "local_params": local,
                                  "full_params": full, "rows": len(got)}))
# Both ranks meet before teardown, with the sharded model (which holds the process group) freed: rank 1
# once reached destroy_process_group while rank 0 was still printing and aborted ("terminate called
# without an active exception", once in CI; not reproduced in 16 runs here); train_ranker.py does the same.
dist.barrier()
del model
gc.collect()
dist.destroy_process_group()
