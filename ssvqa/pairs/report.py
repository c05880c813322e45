"""What a pair builder did: one report for every builder, and the summary its command prints.

:class:`BuildReport` holds what all builders share (pairs per split and level, skipped inputs,
inputs to retry, time, shard, the Hub commit); each builder subclasses it with its own figures
and says them in :meth:`BuildReport.headline` and :meth:`BuildReport.details`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ssvqa.labels import LEVELS

SPLITS = ("train", "test")


def level_counts(labelled: Iterable[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """``{split: {level name: pairs}}`` from ``(split, level index)`` of each pair, splits in
    train/test order, every level present."""
    counts: dict[str, dict[str, int]] = {}
    for split, level in labelled:
        counts.setdefault(split, {name: 0 for name in LEVELS})[LEVELS[level]] += 1
    return {split: counts[split] for split in SPLITS if split in counts}


@dataclass
class BuildReport:
    """What a build did; ``str(report)`` is the summary the command prints."""

    output_dir: Path
    counts: dict[str, dict[str, int]]  # split -> level -> pairs (this shard)
    skipped: list[dict[str, Any]]  # inputs that give no pairs, with the reason
    seconds: float
    shard_index: int = 0
    num_shards: int = 1
    commit_url: str | None = None
    retry: list[dict[str, Any]] = field(default_factory=list)  # failed for a reason that may not last

    @property
    def num_pairs(self) -> int:
        return sum(sum(levels.values()) for levels in self.counts.values())

    @property
    def complete(self) -> bool:
        """Pairs were made and no input is left to retry (the command exits 0 only then)."""
        return self.num_pairs > 0 and not self.retry

    def headline(self) -> str:
        """The summary's first line."""
        return f"{self.num_pairs} pairs in {self.seconds:.1f} s."

    def details(self) -> list[str]:
        """The builder's own lines, after the counts."""
        return []

    def no_pairs_reason(self) -> str:
        return "no input gave a usable video (see the reasons above)"

    def shard(self) -> str:
        return f" (shard {self.shard_index + 1} of {self.num_shards})" if self.num_shards > 1 else ""

    def __str__(self) -> str:
        lines = [self.headline()]
        lines += [f"  {split:5s} " + ", ".join(f"{name} {levels.get(name, 0)}" for name in LEVELS)
                  for split, levels in self.counts.items()]
        lines += self.details()
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} input(s):")
            lines += [f"  {item['input']}: {item['reason'].splitlines()[0]}" for item in self.skipped]
        if self.retry:
            lines.append(f"error: {len(self.retry)} input(s) failed for a reason that may not last; they are not "
                         "recorded as skipped:")
            lines += [f"  {item['input']}: {item['reason'].splitlines()[0]}" for item in self.retry]
            lines.append("Rerun the same command to retry them (finished inputs are reused).")
        if self.num_pairs:
            lines.append(f"Dataset: {self.output_dir}  (ssvqa.pairs.load_pairs({str(self.output_dir)!r}))")
        else:
            lines.append(f"error: no pairs were made: {self.no_pairs_reason()}")
        if self.commit_url:
            lines.append(f"Pushed: {self.commit_url}")
        return "\n".join(lines)
