"""Run one round: its data, training (resumable), evaluation, report and publishing."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ssvqa.io import atomic_write_json
from ssvqa.rounds.arguments import RoundArguments, round_dir
from ssvqa.rounds.data import RELABEL_STATS, heldout_pairs, make_round_dataset
from ssvqa.rounds.evaluation import score_round
from ssvqa.rounds.new_pairs import new_pair_figures
from ssvqa.rounds.report import REPORT_FILE, label_agreement, plot_rounds, print_table, write_model_card

ELAPSED_FILE = "elapsed.json"  # beside a round's checkpoints: seconds spent by its earlier attempts


def run_round(args: RoundArguments, training_args, model_args) -> dict[str, Any]:
    """Run (or finish, or only publish) round ``args.round``; returns its report."""
    from accelerate import PartialState

    from ssvqa.model_config import check_model_config

    from ssvqa.model_parts import TrainableParts

    check_model_config(model_args)  # a recipe field that would be ignored fails now, not after the data is made
    if any(training_args.trainable_parts().values()):  # contradictory parts fail now too
        try:
            TrainableParts.from_settings(**training_args.trainable_parts(), lora=bool(model_args.use_peft))
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
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

    if not args.pair_datasets:
        raise SystemExit("name pair_datasets (Hub ids or folders), or generate the demo's (generate_data, ssvqa.demo)")
    clock = _round_clock(here / "checkpoints" / ELAPSED_FILE, write=state.is_main_process)
    if args.round > 0 and not (round_dir(root, args.round - 1) / REPORT_FILE).exists():
        raise SystemExit(f"round {args.round - 1} is not finished in {root}: run it first (--round {args.round - 1})")
    base = _base_model(args, model_args, root, state)

    # 1. data: the round's training pairs, saved before training so a resumed round reuses them
    dataset_dir = here / "dataset"
    missing = not (dataset_dir / "README.md").exists()
    state.wait_for_everyone()  # every process has looked before the main one writes it
    if missing:  # every process takes part: rounds > 0 relabel in parallel
        make_round_dataset(args, training_args, model_args, base, root, dataset_dir, state)
    from ssvqa.pairs.dataset import load_pairs

    with state.main_process_first():  # one process fills the datasets cache, the others read it
        pairs = load_pairs(dataset_dir, cache_dir=here / ".cache")
    heldout = heldout_pairs(pairs, args, training_args.seed)
    clock.save()

    # 2. train
    trainer = round_trainer(args, training_args, model_args, base, root, here, pairs["train"], heldout)
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
                               "processes": state.num_processes,
                               "distributed": str(trainer.accelerator.distributed_type.value)}  # NO, MULTI_GPU, FSDP, DEEPSPEED...
    if heldout is not None:
        if state.is_main_process:
            print(f"[eval] pair accuracy on {len(heldout)} held-out pairs", flush=True)
        figures.update(evaluate_heldout(trainer))
    trainer.save_model(str(here / "model"))
    state.wait_for_everyone()
    benchmarks = score_round(args, training_args, trainer, here, state)  # every process scores a share
    report: dict[str, Any] = {}
    if state.is_main_process:
        if (here / RELABEL_STATS).exists():
            figures.update(json.loads((here / RELABEL_STATS).read_text()))
        if args.hidden_quality:
            from ssvqa.corpus import read_quality

            hidden = read_quality(args.hidden_quality)
            agreement = label_agreement(pairs["train"], hidden, origins=set(args.relabel_origins))
            figures.update(agreement or {})
            figures.update(new_pair_figures(here, hidden))
        figures.update(benchmarks)
        figures["minutes"] = round(clock.seconds() / 60, 2)  # every attempt of the round, an interrupted one too
        report = {
            "round": args.round,
            "figures": figures,
            "lineage": _lineage(args, training_args, model_args, base, root),
            "arguments": {"round": asdict(args), "training": _jsonable(training_args.to_dict()), "model": _jsonable(asdict(model_args))},
            "published": {},
        }
        write_model_card(trainer, here / "model", report)
        if args.push_merged:
            _save_merged(trainer, here / "model" / "merged")
        atomic_write_json(report_path, report)
        plot_rounds(root)
        report = _publish(args, training_args, here, report)
        for scratch in ("checkpoints", ".cache"):  # the round is finished and saved: its checkpoints and its
            shutil.rmtree(here / scratch, ignore_errors=True)  # datasets cache (a copy of its pairs) go
        print_table(root)
    state.wait_for_everyone()
    return report


def pair_type(row) -> str | None:
    """The distortion type of a pair (its provenance's ``distortion``), or None."""
    provenance = row.get("provenance")
    kind = json.loads(provenance).get("distortion") if provenance else None
    return str(kind) if kind else None


def evaluate_heldout(trainer) -> dict[str, Any]:
    """Held-out pair accuracy of the trainer's ``eval_dataset``, overall and per distortion type.

    ``heldout_pair_accuracy`` is the mirrored accuracy (both orders averaged, as relabelling and
    scoring ask the ranker) where the trainer records it, else the single-order one, which is
    ``heldout_pair_accuracy_single_order``. With pairs of two or more types (each pair's provenance
    ``distortion``), ``heldout_pair_accuracy_by_type`` has one figure per type, and when every pair
    has a type the pairs are evaluated once, type by type: the overall figures are the types'
    accuracies weighted by their decided pairs (``prob != 0.5``, the ones accuracy counts), which
    is what one evaluation of all the pairs gives (to rounding: batches of other pairs pad otherwise).
    """
    from ssvqa.console import without_progress

    heldout = trainer.eval_dataset
    kinds = [pair_type({"provenance": provenance}) for provenance in heldout["provenance"]]
    groups: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        if kind:
            groups.setdefault(kind, []).append(i)
    figures: dict[str, Any] = {"heldout_pairs": len(heldout)}

    def accuracy(metrics: dict[str, float]) -> None:
        figures["heldout_pair_accuracy"] = _pair_accuracy(metrics)
        figures["heldout_pair_accuracy_single_order"] = metrics.get("eval_pair_accuracy")

    if len(groups) < 2 or None in kinds:
        accuracy(trainer.evaluate())
        if len(groups) < 2:
            return figures
    probs = heldout["prob"]
    by_type, sums, weight = {}, {}, 0
    with without_progress(trainer):
        for kind, rows in sorted(groups.items()):
            metrics = trainer.evaluate(eval_dataset=heldout.select(rows), metric_key_prefix="eval_type")
            decided = sum(probs[i] != 0.5 for i in rows)
            weight += decided
            for name in ("eval_mirrored_pair_accuracy", "eval_pair_accuracy"):
                if name in metrics:
                    sums[name] = sums.get(name, 0.0) + metrics[name] * decided
            by_type[kind] = _pair_accuracy(metrics)
    figures["heldout_pair_accuracy_by_type"] = by_type
    if "heldout_pair_accuracy" not in figures:  # every pair has a type: the overall figures from the types'
        accuracy({name: total / weight for name, total in sums.items()} if weight else {})
    return figures


def _pair_accuracy(metrics: dict[str, float]) -> float | None:
    """Both orders averaged where the trainer recorded it (swap augmentation), else single order."""
    return metrics.get("eval_mirrored_pair_accuracy", metrics.get("eval_pair_accuracy"))


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


def round_trainer(args, training_args, model_args, base: str, root: Path, here: Path, train, heldout):
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
    exact = exact.select_columns(["video_a", "video_b", "prob", "provenance"])
    group_of = pair_type if args.vision_warm_start_heads == "per_type" else None
    model = trainer.accelerator.unwrap_model(trainer.model)
    print(f"[train] warm start of the vision tower: {args.vision_warm_start_steps} steps on {len(exact)} exact-label pairs"
          f" ({'a head per distortion type' if group_of else 'one head'})", flush=True)
    history = warm_start_vision(model, trainer.processing_class, exact, steps=args.vision_warm_start_steps,
                                sampling=trainer.video_sampling, video_root=training_args.video_root, group_of=group_of,
                                seed=training_args.seed, log_every=max(1, args.vision_warm_start_steps // 3))
    tail = history["accuracy"][-20:]
    print(f"[train] warm start done: head pair accuracy {sum(tail) / len(tail):.2f} over its last {len(tail)} steps", flush=True)


def _lineage(args: RoundArguments, training_args, model_args, base: str, root: Path) -> dict[str, Any]:
    previous = round_dir(root, args.round - 1) / "model" if args.round > 0 else None
    return {
        "base_model": args.tiny_model and f"tiny {args.tiny_model} built from a config (ssvqa.testing)" or base,
        "started_from": str(previous) if previous is not None and args.init_from == "previous" else base,
        "previous_round_model": (f"{training_args.hub_model_id}@round-{args.round - 1}" if training_args.hub_model_id else str(previous)) if previous else None,
        "pair_datasets": args.pair_datasets,
        "labels": "as built" if args.round == 0 else f"{', '.join(args.relabel_origins)} pairs relabelled by round {args.round - 1}",
    }


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


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
