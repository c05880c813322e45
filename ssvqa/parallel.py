"""Pair comparisons split across the processes of a launch, gathered back in order.

Under ``accelerate launch`` (or ``torchrun``) with N processes, :func:`compare_shared` gives each
process a contiguous share of the pairs (like ``accelerate``'s ``split_between_processes``),
runs :func:`ssvqa.modeling.compare` on it, and all-gathers the level probabilities, so every
process ends with the same ``(len(pairs), 5)`` tensor, in the input order, as one process would
compute it.

Every share is padded to the same length (with copies of the first pair, whose answers are
dropped): each process then runs the same number of forward passes. Under ZeRO-3 or FSDP a
forward pass gathers the sharded parameters from *all* processes, so unequal counts would hang;
under DDP the padding costs at most one batch per process.

``processes`` is anything with ``num_processes`` and ``process_index`` (``accelerate.PartialState``);
None or one process means no splitting and no communication.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def launch_processes():
    """The processes of the current launch as an ``accelerate.PartialState``, or None when this is
    the only process (no ``accelerate launch``/``torchrun`` with more than one): what the commands
    pass on as ``processes``/``accelerator`` so their work is split across a launch. On a machine
    without CUDA the processes run on CPU (gloo)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def share(n: int, processes=None) -> range:
    """This process's contiguous share of ``n`` items (``ceil(n / N)`` per process, the last ones shorter)."""
    if processes is None or processes.num_processes == 1:
        return range(n)
    per = math.ceil(n / processes.num_processes)
    start = min(n, processes.process_index * per)
    return range(start, min(n, start + per))


def gather_in_order(local: list, processes=None) -> list:
    """Concatenate every process's list, in process order (all-gather: every process gets it)."""
    if processes is None or processes.num_processes == 1:
        return list(local)
    import torch.distributed as dist

    parts: list = [None] * processes.num_processes
    dist.all_gather_object(parts, local)
    return [item for part in parts for item in part]


def compare_shared(model, processor, firsts: Sequence[torch.Tensor], seconds: Sequence[torch.Tensor], *,
                   processes=None, **kwargs) -> torch.Tensor:
    """:func:`ssvqa.modeling.compare` of all pairs, each process doing its share (module doc).

    Every process must call it with the same pairs. Returns the ``(N, 5)`` probabilities on every process.
    """
    from ssvqa.modeling import compare

    if processes is None or processes.num_processes == 1 or not len(firsts):
        return compare(model, processor, firsts, seconds, **kwargs)
    mine = share(len(firsts), processes)
    padding = math.ceil(len(firsts) / processes.num_processes) - len(mine)
    videos_a = [firsts[i] for i in mine] + [firsts[0]] * padding
    videos_b = [seconds[i] for i in mine] + [seconds[0]] * padding
    probs = compare(model, processor, videos_a, videos_b, **kwargs)[: len(mine)]
    rows = gather_in_order(probs.tolist(), processes)
    return torch.tensor(rows, dtype=probs.dtype).reshape(len(firsts), -1)
