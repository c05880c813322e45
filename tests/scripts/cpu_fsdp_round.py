"""Run ``recipes/round.py`` under FSDP2 on CPU processes (gloo): a test shim, not a user entry point.

accelerate picks FSDP only on accelerator devices; launched with ``use_cpu`` it falls back to
MULTI_CPU, which is plain DDP. This shim sets the distributed type back to FSDP once accelerate has
built its state with the FSDP plugin of the launch config, so ``Trainer`` and accelerate take their
FSDP2 paths (``fully_shard`` of the decoder layers and the root, sharded forward passes, a
FULL_STATE_DICT save) on CPU tensors. What it cannot exercise: NCCL, bf16 mixed precision under
FSDP, CPU-RAM-efficient loading across GPUs.

One CPU-only artefact is mended here too: on CPU, torch's full state dict of an FSDP2 model
(``get_model_state_dict(full_state_dict=True, cpu_offload=True)``, what accelerate calls) comes
back with some tensors still sharded DTensors, which safetensors cannot save ("invalid python
storage"); on a GPU the CPU offload materialises them. The shim gathers those (``full_tensor``, a
collective every process takes part in, as every process saves) and copies the rest.

    OMP_NUM_THREADS=1 ACCELERATE_USE_CPU=true accelerate launch --config_file CONFIG \\
        tests/scripts/cpu_fsdp_round.py --config recipes/tiny/round.yaml ...
"""

import runpy
import sys
from pathlib import Path

from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType
from torch.distributed.tensor import DTensor

_init = AcceleratorState.__init__
_get_state_dict = Accelerator.get_state_dict


def _init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    # Every AcceleratorState() call copies PartialState's fields (MULTI_CPU here) over the shared
    # state before it returns, so the type is set again after each call, not only the first.
    plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None)
    if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = plugin


def _get_state_dict_copied(self, model, unwrap=True):
    state = _get_state_dict(self, model, unwrap)
    return {name: tensor.full_tensor() if isinstance(tensor, DTensor) else tensor.clone() for name, tensor in state.items()}


AcceleratorState.__init__ = _init_with_fsdp_on_cpu
Accelerator.get_state_dict = _get_state_dict_copied
recipe = Path(__file__).resolve().parents[2] / "recipes" / "round.py"
sys.argv = [str(recipe), *sys.argv[1:]]
runpy.run_path(str(recipe), run_name="__main__")
