"""Relabelling and scoring throughput with 2 processes against 1, in one run (ssvqa.parallel).

The script prepares a small ranker (``ssvqa.testing``, ``--size``), ``--videos`` generated clips
and a pair dataset over them, then times, in separate launches on the same files:

* 1 process: ``python bench/bench_parallel.py --worker ...``;
* 2 processes: ``accelerate launch --multi_gpu --num_processes 2 ... --worker ...`` (DDP on
  gloo on a CPU machine; one GPU each on a GPU machine).

Each worker times ``relabel_with_ranker`` on every pair (both orders) and
``QualityScorer.score_with_errors`` on every clip (the anchor block included), best of
``--repeats``, and the main process writes its figures. The report gives pairs/s and videos/s,
the 2-process / 1-process ratio (2.0 at most) and the machine's core count: on a CPU the two
processes share the cores, so the ratio is bounded by how many cores are free (each worker
runs torch with ``--threads`` threads, 1 by default: on a CPU shared with other work,
multi-threaded kernels slow down many-fold whenever one of their threads is descheduled, which
would penalise the 1-process run and inflate the ratio).

Run: ``python bench/bench_parallel.py [--videos 24] [--pairs 48] [--size small] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(folder: Path, out: Path, repeats: int, batch_size: int, threads: int) -> None:
    import datasets
    import torch
    from accelerate import PartialState

    from ssvqa.modeling import load_ranker
    from ssvqa.relabel import relabel_with_ranker
    from ssvqa.scorer import QualityScorer

    state = PartialState(cpu=not torch.cuda.is_available())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(threads)
    spec = json.loads((folder / "spec.json").read_text())
    device = f"cuda:{state.local_process_index}" if torch.cuda.is_available() else None
    model, processor = load_ranker(folder / "model", device_map=device)
    pairs = datasets.load_from_disk(str(folder / "pairs"))
    settings = dict(num_frames=4, max_pixels=112 * 112)

    def relabel():
        relabel_with_ranker(pairs, model, processor, round=1, batch_size=batch_size, processes=state, **settings)

    anchors = [(v, 20.0 * (i + 1)) for i, v in enumerate(spec["anchors"])]

    def score():
        scorer = QualityScorer(model, processor, [a for a, _ in anchors], [s for _, s in anchors], batch_size=batch_size,
                               processes=state, **settings)
        scorer.score_with_errors(spec["videos"])

    figures = {"processes": state.num_processes, "cores": cores, "torch_threads": torch.get_num_threads()}
    for name, fn in (("relabel", relabel), ("score", score)):
        fn()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            state.wait_for_everyone()
            start = time.perf_counter()
            fn()
            state.wait_for_everyone()
            best = min(best, time.perf_counter() - start)
        figures[f"{name}_s"] = best
    if state.is_main_process:
        out.write_text(json.dumps(figures))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def prepare(folder: Path, videos: int, pairs: int, size: str) -> None:
    import datasets

    from ssvqa.corpus import make_corpus
    from ssvqa.pairs.dataset import pair_features
    from ssvqa.testing import save_tiny_model

    save_tiny_model(folder / "model", size=size)
    clips = [str(p) for p in make_corpus(folder / "videos", num_clips=videos + 3, duration=1.0, size=(160, 120))]
    anchors, tests = clips[:3], clips[3:]
    rng = random.Random(0)
    rows = [rng.sample(tests, 2) for _ in range(pairs)]
    table = {"video_a": [a for a, _ in rows], "video_b": [b for _, b in rows], "label": [2] * pairs, "prob": [0.5] * pairs,
             "origin": ["pseudo"] * pairs, "content_id": [str(i) for i in range(pairs)], "provenance": ["{}"] * pairs}
    datasets.Dataset.from_dict(table, features=pair_features(decode=False)).save_to_disk(str(folder / "pairs"))
    (folder / "spec.json").write_text(json.dumps({"anchors": anchors, "videos": tests}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--size", choices=["tiny", "small"], default="small")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.folder, args.worker, args.repeats, args.batch_size, args.threads)
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from conftest import free_port

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder, args.videos, args.pairs, args.size)
        common = [str(Path(__file__).resolve()), "--folder", str(folder), "--repeats", str(args.repeats),
                  "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
        env = dict(os.environ, ACCELERATE_USE_CPU=os.environ.get("ACCELERATE_USE_CPU", "true"))
        results = {}
        for n in (1, 2):
            out = folder / f"figures-{n}.json"
            launch = ([sys.executable] if n == 1 else
                      [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                       "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "--main_process_port", str(free_port())])
            subprocess.run([*launch, *common, "--worker", str(out)], check=True, env=env)
            results[n] = json.loads(out.read_text())
    one, two = results[1], results[2]
    print(f"{args.pairs} pairs (both orders), {args.videos} videos x 3 anchors (+ the anchor block), {args.size} model, "
          f"{one['cores']} cores; torch threads per process: 1 proc {one['torch_threads']}, 2 procs {two['torch_threads']}")
    for name, unit, count in (("relabel", "pairs/s", args.pairs), ("score", "videos/s", args.videos)):
        r1, r2 = count / one[f"{name}_s"], count / two[f"{name}_s"]
        print(f"  {name:<8} 1 process {r1:7.2f} {unit}   2 processes {r2:7.2f} {unit}   ratio {r2 / r1:.2f}")


if __name__ == "__main__":
    main()
