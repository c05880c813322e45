"""A pair dataset's card: README.md with YAML metadata and how the data was made.

:func:`write_dataset_card` is called by every writer (:func:`ssvqa.pairs.dataset.write_pair_dataset`,
:func:`~ssvqa.pairs.dataset.save_pair_splits`) after the data files: it summarises whatever data
files are present (rows, levels, origins, skipped inputs per split; :func:`summarize`), so shards
written on several machines into one folder get one card. What the builder says about itself
(name, arguments, method, licence) comes in a :class:`DatasetCardInfo`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq

from ssvqa.io import atomic_write_text
from ssvqa.labels import LEVEL_WEIGHTS, LEVELS
from ssvqa.pairs.dataset import SHARD_FILE, SPLITS, pair_features


@dataclass
class DatasetCardInfo:
    """What a builder tells the dataset card about how the data was made.

    Args:
        pretty_name: the dataset's human name.
        builder: the program that built it (e.g. ``ssvqa build-distortion-pairs``).
        arguments: the builder's arguments, shown verbatim (never put tokens here).
        method: markdown prose: how pairs and labels are made.
        sections: extra markdown sections, title -> text (e.g. the distortion catalogue).
        license: SPDX-like license id for the card metadata; ``other`` when unknown.
        tags: extra Hub tags.
    """

    pretty_name: str
    builder: str
    arguments: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    sections: dict[str, str] = field(default_factory=dict)
    license: str = "other"
    tags: list[str] = field(default_factory=list)



@dataclass
class DatasetSummary:
    """Counts read back from the data files present in a dataset folder."""

    rows: Counter = field(default_factory=Counter)  # split -> rows
    labels: dict[str, Counter] = field(default_factory=dict)  # split -> level name -> rows
    origins: Counter = field(default_factory=Counter)
    contents: dict[str, set] = field(default_factory=dict)  # split -> content ids
    shards: set = field(default_factory=set)  # (index, num) present
    skipped: list[dict[str, Any]] = field(default_factory=list)



def summarize(out_dir: str | Path) -> DatasetSummary:
    """Count rows per split, label and origin over every shard present in ``out_dir``.

    Reads only the small columns, never the embedded videos.
    """
    out_dir = Path(out_dir)
    summary = DatasetSummary()
    for path in sorted((out_dir / "data").glob("*.parquet")):
        match = SHARD_FILE.match(path.name)
        if not match:
            continue
        split = match["split"]
        summary.shards.add((int(match["index"]), int(match["num"])))
        table = pq.read_table(path, columns=["label", "origin", "content_id"])
        summary.rows[split] += table.num_rows
        labels = summary.labels.setdefault(split, Counter())
        labels.update(LEVELS[i] for i in table.column("label").to_pylist())
        summary.origins.update(table.column("origin").to_pylist())
        summary.contents.setdefault(split, set()).update(table.column("content_id").to_pylist())
    for path in sorted(out_dir.glob("skipped-*.jsonl")):
        summary.skipped.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return summary



def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"



def write_dataset_card(out_dir: str | Path, card: DatasetCardInfo) -> Path:
    """(Re)write ``README.md``: YAML metadata that ``load_dataset``/the Hub read, then prose.

    Only splits with at least one data file are declared (``load_dataset`` refuses a declared
    split that matches no file). Counts cover every shard present in the folder.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    out_dir = Path(out_dir)
    summary = summarize(out_dir)
    splits = [s for s in SPLITS if summary.rows[s]] + sorted(s for s in summary.rows if s not in SPLITS)
    dataset_info = datasets.DatasetInfo(features=pair_features())._to_yaml_dict()
    metadata = DatasetCardData(
        license=card.license,
        pretty_name=card.pretty_name,
        task_categories=["video-classification"],
        tags=["video-quality-assessment", "pairwise-comparison", "ssvqa", *card.tags],
        size_categories=_size_category(sum(summary.rows.values())),
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
        dataset_info=dataset_info,
    )
    body = _card_body(card, summary, splits)
    text = f"---\n{metadata.to_yaml()}\n---\n\n{body}"
    DatasetCard(text)  # parses the YAML back: a malformed card fails here, not on the Hub
    path = out_dir / "README.md"
    atomic_write_text(path, text)
    return path



def _card_body(card: DatasetCardInfo, summary: DatasetSummary, splits: list[str]) -> str:
    lines = [f"# {card.pretty_name}", ""]
    lines += [
        "Pairs of videos for training a video-quality ranker without human labels "
        "(built with ssvqa, after *Breaking Annotation Barriers*, arXiv 2505.03631). "
        "Each row compares the **second** video (`video_b`) with the first (`video_a`); `label` is one "
        f"of {', '.join(f'`{name}`' for name in LEVELS)} and `prob` is the probability that the second "
        f"video is the better one (level weights {', '.join(str(w) for w in LEVEL_WEIGHTS)}).",
        "",
        "```python",
        "from datasets import load_dataset",
        'pairs = load_dataset("<this repository or folder>")',
        'pairs["train"][0]["video_a"]  # a torchcodec VideoDecoder',
        "```",
        "",
        "## How it was made",
        "",
        card.method.strip(),
        "",
        f"Built by `{card.builder}` with these arguments:",
        "",
        "```json",
        json.dumps(card.arguments, indent=2, sort_keys=True, default=str),
        "```",
        "",
    ]
    for title, text in card.sections.items():
        lines += [f"## {title}", "", text.strip(), ""]
    lines += ["## Contents", ""]
    shards = sorted(summary.shards)
    if shards:
        lines += [f"Shards present: {', '.join(f'{i + 1} of {n}' for i, n in shards)}.", ""]
    lines += ["| split | pairs | contents | " + " | ".join(LEVELS) + " |", "|---" * (3 + len(LEVELS)) + "|"]
    for split in splits:
        counts = summary.labels.get(split, Counter())
        lines.append(
            f"| {split} | {summary.rows[split]} | {len(summary.contents.get(split, ()))} | "
            + " | ".join(str(counts[name]) for name in LEVELS)
            + " |"
        )
    lines += ["", "Train and test never share a `content_id`.", ""]
    if summary.origins:
        lines += ["Origins: " + ", ".join(f"`{o}` {n}" for o, n in sorted(summary.origins.items())) + ".", ""]
    lines += ["## Skipped inputs", ""]
    if not summary.skipped:
        lines += ["None.", ""]
    else:
        lines += [f"{len(summary.skipped)} input(s) gave no pairs (`skipped-*.jsonl` lists them all):", ""]
        for item in summary.skipped[:50]:
            lines.append(f"- `{item.get('input', item.get('key'))}`: {item.get('reason')}")
        if len(summary.skipped) > 50:
            lines.append(f"- ... and {len(summary.skipped) - 50} more")
        lines.append("")
    return "\n".join(lines)
