"""What a round reports: its figures, the table across rounds, the plot, and the model card.

:func:`ssvqa.rounds.run_round` writes ``round-k/report.json`` (figures, lineage, arguments, what
was published); this module reads them back for the table printed after every round
(:func:`print_table`) and ``rounds.png`` (:func:`plot_rounds`), writes the round's model card
(:func:`write_model_card`), and measures how often training labels agree with a hidden quality
(:func:`label_agreement`, the demo's test of relabelling).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

REPORT_FILE = "report.json"
PLOT_FILE = "rounds.png"
# Figures of the per-round table, in print order: (report key, column title).
TABLE_COLUMNS = (
    ("round", "round"),
    ("train_pairs", "train pairs"),
    ("label_agreement", "label agreement"),
    ("heldout_pair_accuracy", "held-out pair acc."),
    ("heldout_pair_accuracy_by_type", "held-out pair acc. per type"),
    ("srcc", "SRCC"),
    ("plcc", "PLCC"),
    ("ladder_srcc", "ladder SRCC"),
    ("real_ladder_srcc", "real ladder SRCC"),
    ("real_ladder_srcc_by_type", "real ladder SRCC per type"),
    ("minutes", "minutes"),
)
PLOTTED = ("label_agreement", "heldout_pair_accuracy", "srcc", "plcc", "ladder_srcc", "real_ladder_srcc")  # figures on 0-1


def label_agreement(dataset, hidden: dict[str, float], origins=None) -> dict[str, float] | None:
    """How often pair labels point the way the hidden quality does.

    Over pairs (of ``origins``, if given) whose two videos have a hidden quality (looked up by the
    file names in the provenance, ``source_a``/``source_b``) that differs: a label on the right
    side counts 1, ``similar`` counts 1/2, the wrong side 0. None when no pair qualifies.
    """
    right, n = 0.0, 0
    for origin, level, provenance in zip(dataset["origin"], dataset["label"], dataset["provenance"]):
        details = json.loads(provenance) if provenance else {}
        if origins is not None and details.get("previous_origin", origin) not in origins:
            continue
        a, b = (Path(str(details.get(key, ""))).name for key in ("source_a", "source_b"))
        if a not in hidden or b not in hidden or hidden[a] == hidden[b]:
            continue
        truth = hidden[b] > hidden[a]
        n += 1
        right += 0.5 if level == 2 else float((level > 2) == truth)
    return {"label_agreement": right / n, "agreement_pairs": n} if n else None


def all_reports(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The ``report.json`` of every finished round in ``output_dir``, by round."""
    reports = []
    for path in Path(output_dir).glob(f"round-*/{REPORT_FILE}"):
        reports.append(json.loads(path.read_text()))
    return sorted(reports, key=lambda r: r["round"])


def format_rounds_table(reports: list[dict[str, Any]]) -> str:
    """A Markdown table of the figures of each round."""
    lines = ["| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for report in reports:
        figures = report["figures"]
        lines.append("| " + " | ".join(cell(figures.get(key)) for key, _ in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def print_table(output_dir: str | os.PathLike) -> None:
    """Print the table of every finished round, and where the reports and the plot are."""
    reports = all_reports(output_dir)
    if reports:
        print("\n" + format_rounds_table(reports) + f"\n\nreports: {Path(output_dir)}/round-*/{REPORT_FILE}; "
              f"plot: {Path(output_dir) / PLOT_FILE}", flush=True)


def plot_rounds(output_dir: Path) -> None:
    """``output_dir/rounds.png``: the 0-1 figures of every finished round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = all_reports(output_dir)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    try:
        for key, title in TABLE_COLUMNS:
            if key not in PLOTTED:
                continue
            points = [(r["round"], r["figures"][key]) for r in reports if isinstance(r["figures"].get(key), (int, float))]
            if points:
                ax.plot(*zip(*points), marker="o", label=title)
        ax.set_xlabel("round")
        ax.set_xticks([r["round"] for r in reports])
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("ssvqa self-improvement rounds")
        fig.tight_layout()
        fig.savefig(output_dir / PLOT_FILE)
    finally:
        plt.close(fig)


def cell(value) -> str:
    """A figure as a table cell: floats to 3 digits, dicts as ``key value`` lists."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {cell(item)}" for key, item in value.items())
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return "" if value is None else str(value)


def write_model_card(trainer, model_dir: Path, report: dict[str, Any]) -> None:
    """The round's model card: the trainer's (``RankTrainer.model_card``) plus the round's figures and lineage."""
    figures = report["figures"]
    rows = "\n".join(f"| {key} | {cell(value)} |" for key, value in figures.items() if key != "benchmarks")
    lineage = "\n".join(f"- {key.replace('_', ' ')}: {value}" for key, value in report["lineage"].items())
    extra = f"""## Self-improvement round {report['round']}

| figure | value |
|---|---|
{rows}

Lineage:
{lineage}
"""
    hub, k = trainer.args.hub_model_id, report["round"]
    if hub:  # how to load exactly this round from the Hub
        base = report["lineage"]["base_model"]
        call = (f'load_ranker("{base}", adapter="{hub}", adapter_revision="round-{k}")'
                if (model_dir / "adapter_config.json").exists() else f'load_ranker("{hub}", revision="round-{k}")')
        extra += f"\nThis round on the Hub: `{call}` (`ssvqa.modeling`); branch `main` holds the latest round.\n"
    (model_dir / "README.md").write_text(trainer.model_card(extra=extra, location=str(model_dir)))
