"""Markdown table of an ablation: one round's figures per variant, over seeds.

Each ``--variant NAME=DIR [DIR ...]`` names a variant and the output folders of its runs (one per
seed; ``recipes/round.py --output_dir``); ``base=seed-{0,1,2}-base`` works too (the shell repeats
the ``base=`` prefix). The figures come from ``DIR/round-K/report.json``; a run's
seed is read from that report, and the differences against the first variant are paired by seed.

    python bench/ablation_table.py --round 0 \\
        --variant base=/work/ablate/seed-{0,1,2}-base --variant conf=/work/ablate/seed-{0,1,2}-conf

Per variant: mean ± sample std (ddof 1) over seeds, then the per-seed values in seed order. Per
later variant: "NAME − FIRST", the per-seed differences and their mean.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

FIGURES = {  # report key -> row label
    "heldout_pair_accuracy": "held-out pair accuracy",
    "label_agreement": "label agreement",
    "srcc": "SRCC",
    "ladder_srcc": "ladder SRCC",
    "real_ladder_srcc": "real-ladder SRCC",
}


def read_run(folder: Path, round_index: int) -> tuple[int, dict]:
    """(seed, figures) of one run; real-ladder types flattened as ``real_ladder_srcc:TYPE``."""
    path = folder / f"round-{round_index}" / "report.json"
    if not path.is_file():
        sys.exit(f"{path}: no report (the round has not finished in this folder)")
    report = json.loads(path.read_text())
    figures = dict(report["figures"])
    for kind, value in (figures.pop("real_ladder_srcc_by_type", None) or {}).items():
        figures[f"real_ladder_srcc:{kind}"] = value
    return report["arguments"]["training"]["seed"], figures


def cell(values: list[float | None], digits: int = 3) -> str:
    """``mean ± std (per-seed values)``; a seed without the figure shows as ``-``."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    spread = f" ± {statistics.stdev(present):.{digits}f}" if len(present) > 1 else ""
    each = ", ".join("-" if v is None else f"{v:.{digits}f}" for v in values)
    return f"{statistics.mean(present):.{digits}f}{spread} ({each})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", nargs="+", required=True, metavar="NAME=DIR",
                        help="a variant's name and its runs' output folders (repeat per variant)")
    parser.add_argument("--round", type=int, default=0, help="which round-K/report.json to read")
    parser.add_argument("--by-type", action="store_true", help="also a row per real-ladder distortion type")
    args = parser.parse_args()

    variants: dict[str, dict[int, dict]] = {}
    for words in args.variant:
        name, sep, _ = words[0].partition("=")
        if not sep:
            parser.error(f"--variant {words[0]!r}: expected NAME=DIR")
        folders = [w.removeprefix(f"{name}=") for w in words]
        if not all(folders) or any("=" in f for f in folders):
            parser.error(f"--variant {' '.join(words)!r}: expected NAME=DIR [DIR ...], one name")
        runs = [read_run(Path(d), args.round) for d in folders]
        seeds = [seed for seed, _ in runs]
        if len(set(seeds)) != len(seeds):
            parser.error(f"variant {name}: two runs share a seed ({seeds})")
        variants[name] = dict(sorted(runs))

    rows = dict(FIGURES)
    if args.by_type:
        kinds = sorted({k for runs in variants.values() for f in runs.values() for k in f if k.startswith("real_ladder_srcc:")})
        rows.update({k: f"real-ladder SRCC: {k.partition(':')[2]}" for k in kinds})
    names = list(variants)
    reference = variants[names[0]]
    header = ["figure", *(f"{n} (seeds {', '.join(map(str, variants[n]))})" for n in names),
              *(f"{n} − {names[0]} (paired)" for n in names[1:])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label in rows.items():
        values = {n: [f.get(key) for f in runs.values()] for n, runs in variants.items()}
        if all(v is None for vs in values.values() for v in vs):
            continue  # e.g. label agreement of a round that has none
        diffs = []
        for n in names[1:]:
            pairs = [(s, f[key] - reference[s][key]) for s, f in variants[n].items()
                     if f.get(key) is not None and s in reference and reference[s].get(key) is not None]
            diffs.append(f"{statistics.mean(d for _, d in pairs):+.3f} ({', '.join(f'{d:+.3f}' for _, d in pairs)})"
                         if pairs else "-")
        lines.append("| " + " | ".join([label, *(cell(values[n]) for n in names), *diffs]) + " |")
    minutes = [cell([f.get("minutes") for f in variants[n].values()], digits=1) for n in names]
    lines.append("| " + " | ".join(["minutes (round)", *minutes, *[""] * (len(names) - 1)]) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
