"""ssvqa.parallel: contiguous shares, and comparisons on an FSDP-sharded model across 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import free_port
from ssvqa.parallel import gather_in_order, share

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, world", [(5, 2), (4, 2), (1, 2), (0, 3), (10, 3), (7, 1)])
def test_shares_are_contiguous_cover_everything_once_and_differ_by_at_most_one_padding(n, world):
    shares = [share(n, SimpleNamespace(num_processes=world, process_index=r)) for r in range(world)]
    assert [i for s in shares for i in s] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= -(-n // world)
    assert gather_in_order([1, 2]) == [1, 2]  # one process: no communication


def test_fsdp_sharded_model_compares_like_one_process():
    """Two CPU processes on gloo, the tiny model sharded with FSDP2: each holds half the weights,
    both run the same number of forward passes on their (padded) shares, and the gathered
    probabilities equal the unsharded model's in one process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         str(ROOT / "tests" / "scripts" / "fsdp_compare.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["rows"] == 5 and result["max_abs_diff"] < 1e-5
    assert result["local_params"] < 0.6 * result["full_params"]
