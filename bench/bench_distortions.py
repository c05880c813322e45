"""Benchmark: render K distorted variants of one source in one ffmpeg process vs K separate ones.

``render_variants`` decodes the source once and feeds every variant's filters and encoder from a
``split``; the baseline runs the very same filters and encoders as K bare ffmpeg commands
(``distortions.bare_commands``), each decoding and scaling the source itself. Both run in this
process, alternately, on the same machine; the best of ``--repeats`` runs is kept for each.

    .venv/bin/python bench/bench_distortions.py [--k 6 --size 1280x720 --duration 3 --threads 1]

Prints wall and CPU times of both ways and their ratios (one process / separate processes; lower
is better, the target is <= 1.0), and whether the two ways produced byte-identical files.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import ssvqa  # noqa: F401
from ssvqa.corpus import KINDS, plan_corpus
from ssvqa.distortions import Variant, bare_commands, render_variants

# Spatial and compression types interleaved, so any K mixes both families.
MIX = [
    ("h264", 2), ("gaussian_blur", 2), ("vp9", 2), ("noise", 2), ("av1", 2), ("downscale", 2),
    ("h265", 2), ("contrast", 2), ("sharpen", 2), ("saturation", 2), ("exposure", 2), ("freeze", 2),
]


def make_source(folder: Path, size: tuple[int, int], duration: float, kind: str) -> Path:
    """One corpus clip of ``kind`` (default: a panned, moving test pattern) at ``size``."""
    recipes = plan_corpus(num_clips=len(KINDS), seed=0, duration=duration, size=[size], fps=30)
    recipe = next(r for r in recipes if r.kind == kind)
    path = folder / recipe.file_name
    subprocess.run(recipe.command(path, threads=2), check=True)
    return path


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes (the ffmpegs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_one_process(source: Path, variants: list[Variant], out: Path, threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds of render_variants."""
    cpu, start = children_cpu(), time.perf_counter()
    render_variants(source, variants, out, threads=threads, overwrite=True)
    return time.perf_counter() - start, children_cpu() - cpu


def time_separate(source: Path, variants: list[Variant], out: Path, threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the K bare commands run one after another."""
    out.mkdir(parents=True, exist_ok=True)
    commands = bare_commands(source, variants, out, threads=threads)
    cpu, start = children_cpu(), time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=6, help="number of variants (default 6)")
    parser.add_argument("--size", default="1280x720", help="source size WxH (default 1280x720)")
    parser.add_argument("--duration", type=float, default=3.0, help="source seconds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="ffmpeg threads per decoder/encoder (default 1)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way, best kept (default 2)")
    parser.add_argument("--kind", default="pattern", choices=sorted(KINDS), help="corpus content (default pattern)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    variants = [Variant((step,)) for step in (MIX * (args.k // len(MIX) + 1))[: args.k]]
    variants = list(dict.fromkeys(variants))  # a K beyond the mix would repeat names

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_source(tmp, size, args.duration, args.kind)
        one, separate = [], []
        for repeat in range(args.repeats):
            # alternate which way goes first, so neither always gets a warm cache
            if repeat % 2 == 0:
                one.append(time_one_process(source, variants, tmp / "one", args.threads))
                separate.append(time_separate(source, variants, tmp / "separate", args.threads))
            else:
                separate.append(time_separate(source, variants, tmp / "separate", args.threads))
                one.append(time_one_process(source, variants, tmp / "one", args.threads))
        identical = sum(
            (tmp / "one" / f"{v.name}.mp4").read_bytes() == (tmp / "separate" / f"{v.name}.mp4").read_bytes()
            for v in variants
        )
    print(f"source: {args.kind} {size[0]}x{size[1]} {args.duration:g} s @30 fps; threads={args.threads}")
    print(f"variants (K={len(variants)}): {', '.join(v.name for v in variants)}")
    for label, index in (("wall", 0), ("CPU", 1)):
        best_one, best_separate = min(t[index] for t in one), min(t[index] for t in separate)
        print(f"{label} one process (render_variants): {best_one:6.2f} s   runs: {', '.join(f'{t[index]:.2f}' for t in one)}")
        print(f"{label} K bare ffmpeg commands:        {best_separate:6.2f} s   runs: {', '.join(f'{t[index]:.2f}' for t in separate)}")
        print(f"{label} ratio one/separate: {best_one / best_separate:.2f}  (target <= 1.0)")
    print(f"byte-identical outputs: {identical}/{len(variants)}")
    print("(CPU time is the fairer figure on a shared machine: wall time depends on how much of the CPU others leave.)")


if __name__ == "__main__":
    main()
