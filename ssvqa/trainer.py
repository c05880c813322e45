"""RankTrainer: teach a video LMM to say how the second video of a pair compares (its arguments: RankConfig).

The model reads two videos and the pre-filled answer "The quality of the second video is"; its
next-token logits over the five level words (``inferior … superior``) are its answer. Two losses:

- ``ce``: cross-entropy of those five logits against the pair's level (one-hot, or a soft target
  spread from ``prob``), the formulation of the paper.
- ``bt``: learning to rank on the expected preference ``p = Σ_k w_k softmax(z)_k`` against the
  pair's ``prob`` with the fidelity loss ``1 − √(p q) − √((1 − p)(1 − q))``, the Bradley–Terry-style
  loss of ranking-based VQA.

``confidence_loss`` adds W2S-VQA's adaptive confidence term to either loss (see
[`confidence_weight`]): ``L = (1 − λ)·L_rank + λ·H`` with ``H`` the mean entropy of the predicted
five-level distribution, so the model learns to commit once the ranking term is fitted.

Example:

```python
from datasets import load_dataset
from peft import LoraConfig
from transformers import BitsAndBytesConfig
from ssvqa import RankConfig, RankTrainer

pairs = load_dataset("my-org/distortion-pairs")
trainer = RankTrainer(
    model="Qwen/Qwen2.5-VL-7B-Instruct",
    args=RankConfig(
        output_dir="ranker", num_frames=8, max_pixels=448 * 448,
        model_init_kwargs={"dtype": "bfloat16", "quantization_config": BitsAndBytesConfig(load_in_4bit=True)},
    ),
    train_dataset=pairs["train"],
    eval_dataset=pairs["test"],
    peft_config=LoraConfig(r=16, lora_alpha=32),  # no target_modules: the language model's projections
)
trainer.train()
```

From a recipe's `trl.ModelConfig`: `ssvqa.model_config.peft_config(model_args)` and
`model_init_kwargs(model_args)` (`trl.get_peft_config`/`get_quantization_config`, checked).

What trains is chosen per part, each with its own learning rate if wanted: W2S-VQA's setting is
`RankConfig(vision_tower="full", projector="full", language_model="frozen",
vision_tower_learning_rate=2e-6, learning_rate=1e-5, ...)` without a `peft_config` (see the
"Trainable parts" fields of [`RankConfig`] and [`~ssvqa.model_parts.TrainableParts`]).

Length: over 400 lines for one class, :class:`RankTrainer`: its losses and gathered metrics, the
optimizer groups per trainable part, resuming, and the model card. Its arguments are in
:mod:`ssvqa.rank_config` and checkpoint loading in :mod:`ssvqa.checkpoints`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F
from peft import PeftConfig
from transformers import Trainer
from transformers.trainer_utils import enable_full_determinism, set_seed

from ssvqa.checkpoints import load_adapter_checkpoint, load_full_checkpoint
from ssvqa.collator import DataCollatorForVideoPairs, check_frame_sampling
from ssvqa.labels import LEVELS
from ssvqa.model_parts import PART_MODES
from ssvqa.pairs.dataset import VIDEO_COLUMNS
from ssvqa.prompts import expected_preference, level_token_ids
from ssvqa.rank_config import RankConfig


def fidelity_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Fidelity loss between two Bernoulli probabilities: 0 when equal, bounded, smooth at 0 and 1."""
    return 1 - torch.sqrt(pred * target + eps) - torch.sqrt((1 - pred) * (1 - target) + eps)


def confidence_weight(
    rank_loss: torch.Tensor, entropy: torch.Tensor, step: int, total_steps: int,
    warmup_ratio: float = 0.1, tau: tuple[float, float] = (0.5, 0.1),
) -> torch.Tensor:
    """λ of W2S-VQA's adaptive confidence loss ``L = (1 − λ)·L_rank + λ·H``.

    ``T_warm = max(1, warmup_ratio · total_steps)``; ``τ`` goes linearly from ``tau[0]`` to
    ``tau[1]`` over ``T_warm`` steps; ``α = exp(H/τ) / (exp(H/τ) + exp(L_rank/τ))`` (a two-way
    softmax: the term that is larger now gets the larger share); ``λ = α · min(1, step / T_warm)``.
    ``α`` is computed from detached values: λ weighs the two terms, it is not itself optimised.

    >>> round(float(confidence_weight(torch.tensor(1.0), torch.tensor(1.0), step=50, total_steps=100)), 3)
    0.5
    >>> float(confidence_weight(torch.tensor(1.0), torch.tensor(1.0), step=0, total_steps=100))
    0.0
    """
    warm = max(1.0, warmup_ratio * total_steps)
    progress = min(1.0, step / warm)
    temperature = tau[0] + (tau[1] - tau[0]) * progress
    alpha = torch.sigmoid((entropy.detach() - rank_loss.detach()) / temperature)  # = the two-way softmax
    return alpha * progress


class RankTrainer(Trainer):
    """Fine-tune a video LMM to compare the quality of two videos (see the module docstring).

    Args:
        model: a model id or local path (loaded with `ssvqa.modeling.load_ranker`, with
            `args.model_init_kwargs` and `peft_config`), or a loaded model.
        args: a [`RankConfig`].
        train_dataset / eval_dataset: pair datasets (`video_a`, `video_b`, `label`, `prob`).
        processing_class: the processor; loaded with the model when `model` is a string.
        peft_config: a `peft.LoraConfig` (e.g. from `trl.get_peft_config`), or None; LoRA adapters
            are added to the model. Without `target_modules` the projections of the parts under LoRA
            are targeted (`args.language_model`/`args.vision_tower`; by default the language
            model's, `ssvqa.model_parts.lora_target_modules`).
        data_collator: defaults to [`DataCollatorForVideoPairs`] with the video sampling of `args`.

    The video sampling (`args.video_sampling(processor)`) is saved beside the weights by
    `save_model` (checkpoints included) as `video_sampling.json`, where scoring and relabelling read it.
    """

    _tag_names = ["ssvqa", "video-quality-assessment", "ranking"]

    def __init__(
        self,
        model,
        args: RankConfig | None = None,
        train_dataset: datasets.Dataset | None = None,
        eval_dataset: datasets.Dataset | dict[str, datasets.Dataset] | None = None,
        processing_class=None,
        peft_config: PeftConfig | None = None,
        data_collator=None,
        callbacks=None,
        optimizers=(None, None),
    ):
        args = args or RankConfig(output_dir="ranker")
        # Seeded before the model is made, as Trainer seeds only in its own __init__: a new LoRA's
        # initial weights are drawn here, and two runs (or an interrupted one and its resumption)
        # must draw the same ones.
        enable_full_determinism(args.seed) if args.full_determinism else set_seed(args.seed)
        if peft_config is not None and not isinstance(peft_config, PeftConfig):
            raise TypeError(f"peft_config must be a peft.LoraConfig (e.g. trl.get_peft_config(model_args)) or None, got {peft_config!r}")
        self.model_id = model if isinstance(model, str) else getattr(model.config, "_name_or_path", None)
        chosen = args.trainable_parts()
        if isinstance(model, str):
            from transformers import AutoConfig

            from ssvqa.modeling import load_ranker

            init = dict(args.model_init_kwargs or {})
            if "quantization_config" in init:  # TRL's name for it
                init["quantization"] = init.pop("quantization_config")
            both = [part for part, mode in chosen.items() if mode is not None and part in init]
            if both:
                raise ValueError(f"{', '.join(both)} set both as a RankConfig field and in model_init_kwargs: set it once")
            if args.fps is not None:  # refused before gigabytes of weights are read
                config = AutoConfig.from_pretrained(model, revision=init.get("revision"),
                                                    trust_remote_code=init.get("trust_remote_code", False))
                check_frame_sampling(config.model_type, args.fps)
            init.update({part: mode for part, mode in chosen.items() if mode is not None})
            model, loaded_processor = load_ranker(model, lora=peft_config, **init)
            processing_class = processing_class or loaded_processor
        else:
            model = _choose_parts(model, peft_config, chosen)
        if processing_class is None:
            raise ValueError("processing_class (the model's processor) is required when model is not a string")
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        self.level_ids = level_token_ids(tokenizer)
        self.video_sampling = args.video_sampling(processing_class)
        model.video_sampling = self.video_sampling  # what scoring this model in memory reads
        if data_collator is None:
            data_collator = DataCollatorForVideoPairs(
                processing_class,
                sampling=self.video_sampling,
                num_threads=args.decode_threads,
                video_root=args.video_root,
                swap_augmentation=args.swap_augmentation,
                soft_targets=args.soft_targets,
                label_smoothing=args.label_smoothing,
            )
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=_undecoded(train_dataset),
            eval_dataset=_undecoded(eval_dataset),
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        if hasattr(self.model, "add_model_tags"):  # pushed with the model (config "tags")
            self.model.add_model_tags(self._tag_names)
        # Sums, not means, so accuracy over an epoch is exact however batches split the ties.
        self._stats = {"train": defaultdict(float), "eval": defaultdict(float)}
        self._part_groups: dict[str, int] = {}  # part -> index of its first optimizer group (create_optimizer)

    # ------------------------------------------------------------------ loss

    def level_logits(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 5) logits of the level words at the answer position (the last: left padding)."""
        model_inputs = {k: v for k, v in inputs.items() if k not in ("level", "prob", "target", "swapped")}
        if not bool(model_inputs["attention_mask"][:, -1].all()):
            raise ValueError("RankTrainer needs left-padded batches (the answer must be the last position)")
        # Only the last position's logits are needed: the full (B, L, vocab) tensor is gigabytes on a 7B model.
        outputs = model(**model_inputs, use_cache=False, logits_to_keep=1)
        return outputs.logits[:, -1, self.level_ids].float()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        logits = self.level_logits(model, inputs)
        log_probs = F.log_softmax(logits / self.args.temperature, dim=-1)
        preference = expected_preference(log_probs.exp())
        if self.args.loss_type == "ce":
            loss = -(inputs["target"].to(log_probs) * log_probs).sum(-1).mean()
        else:
            loss = fidelity_loss(preference, inputs["prob"].to(preference)).mean()
        if self.args.confidence_loss and mode == "train":
            entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
            weight = confidence_weight(loss, entropy, self.state.global_step, self.state.max_steps,
                                       self.args.confidence_warmup_ratio,
                                       (self.args.confidence_tau_start, self.args.confidence_tau_end))
            loss = (1 - weight) * loss + weight * entropy
            self._stats[mode]["confidence_lambda_sum"] += float(weight)
            self._stats[mode]["loss_batches"] += 1
        self._record(mode, preference, inputs["prob"], log_probs, inputs.get("swapped"))
        return (loss, {"level_logits": logits}) if return_outputs else loss

    @torch.no_grad()
    def _record(self, mode, preference, prob, log_probs, swapped=None):
        """Gather per-pair results from all processes and add them to this mode's running sums.

        With swap augmentation (``swapped`` marks the second half of the batch: the same pairs the
        other way round) the mirrored accuracy is recorded too: each pair's preference averaged
        over both orders, ``(p(a, b) + 1 - p(b, a)) / 2``, as relabelling and scoring ask. A
        model whose position bias outweighs what it sees reads exactly 0.5 in single order (a
        pair and its swap, one right) while its mirrored accuracy shows what it learned."""
        gather = self.accelerator.gather_for_metrics
        if swapped is not None and bool(swapped.any()):
            swapped = swapped.to(preference.device)
            both = (preference[~swapped].detach() + 1.0 - preference[swapped].detach()) / 2
            both, truth = gather(both), gather(prob.to(preference.device)[~swapped])
            decided = truth != 0.5
            self._stats[mode]["mirrored_correct"] += float(((both > 0.5) == (truth > 0.5))[decided].sum())
            self._stats[mode]["mirrored_decided"] += float(decided.sum())
        preference, prob = gather(preference.detach()), gather(prob.to(preference.device))
        entropy = gather(-(log_probs.exp() * log_probs).sum(-1).detach())
        decided = prob != 0.5
        stats = self._stats[mode]
        stats["pairs"] += len(prob)
        stats["correct"] += float(((preference > 0.5) == (prob > 0.5))[decided].sum())
        stats["decided"] += float(decided.sum())
        stats["tie_preference_sum"] += float(preference[~decided].sum())
        stats["ties"] += float((~decided).sum())
        stats["entropy_sum"] += float(entropy.sum())

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        stats = self._stats[mode]
        prefix = "eval_" if mode == "eval" else ""
        if stats["pairs"]:
            if stats["decided"]:
                logs[f"{prefix}pair_accuracy"] = stats["correct"] / stats["decided"]
            if stats["mirrored_decided"]:
                logs[f"{prefix}mirrored_pair_accuracy"] = stats["mirrored_correct"] / stats["mirrored_decided"]
            if stats["ties"]:
                logs[f"{prefix}tie_preference"] = stats["tie_preference_sum"] / stats["ties"]
            logs[f"{prefix}level_entropy"] = stats["entropy_sum"] / stats["pairs"]
        if stats["loss_batches"]:
            logs[f"{prefix}confidence_lambda"] = stats["confidence_lambda_sum"] / stats["loss_batches"]
        if mode == "train" and self._part_groups and "learning_rate" in logs:
            rates = [group["lr"] for group in self.optimizer.param_groups]  # as the scheduler set them
            logs.update({f"learning_rate_{part}": rates[index] for part, index in self._part_groups.items()})
        stats.clear()
        super().log(logs, start_time)

    # ------------------------------------------------------------------ optimizer

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """``Trainer``'s optimizer, with separate groups for each part that has its own learning rate.

        Without `vision_tower_learning_rate`/`projector_learning_rate`/`language_model_learning_rate`
        this is ``Trainer.create_optimizer``. With any, the trained parameters are grouped by part
        (:func:`ssvqa.model_parts.parameter_parts`) and, within a part, by weight decay as ``Trainer``
        splits them (`get_decay_parameter_names`); a part's groups carry its rate as ``lr`` (the
        scheduler scales every group from its own), the others `learning_rate`. Groups at
        `learning_rate` come first, so the logged `learning_rate` stays the global one; each
        part's own is logged as `learning_rate_<part>`.

        Raises:
            ValueError: a part has its own rate but none of its parameters trains, or the optimizer
                (`optim`) builds its own parameter groups.
        """
        rates = self.args.part_learning_rates()
        if self.optimizer is not None or not rates:
            return super().create_optimizer(model)
        from transformers.trainer_optimizer import is_optimizer_factory

        from ssvqa.model_parts import parameter_parts

        opt_model = self.model if model is None else model
        owner = parameter_parts(opt_model)
        decay = set(self.get_decay_parameter_names(opt_model))
        grouped: dict[tuple[str, bool], list[torch.nn.Parameter]] = defaultdict(list)
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                grouped[(owner[id(param)], name in decay)].append(param)
        idle = [part for part in rates if not any(key[0] == part for key in grouped)]
        if idle:
            raise ValueError(f"{', '.join(f'{part}_learning_rate' for part in idle)} set, but no parameter of "
                             f"{' or '.join(idle)} trains (see the trainable parts: {self.args.trainable_parts()})")
        keys = sorted(grouped, key=lambda key: key[0] in rates)  # stable: the global-rate groups first
        groups = [{"params": grouped[(part, decays)], "weight_decay": self.args.weight_decay if decays else 0.0,
                   **({"lr": rates[part]} if part in rates else {})} for part, decays in keys]
        self._part_groups = {part: keys.index(next(key for key in keys if key[0] == part)) for part in rates}
        optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs or self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if is_optimizer_factory(optimizer_cls) or {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
            raise ValueError(f"per-part learning rates need an optimizer over parameter groups (e.g. adamw_torch); "
                             f"optim={self.args.optim!r} builds its own groups")
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return super().create_optimizer(model)  # the optimizer exists: only its wrapping (SageMaker) is left

    # ------------------------------------------------------------------ resuming

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Restore every weight a checkpoint holds, or raise :class:`~ssvqa.errors.CheckpointError`.

        ``Trainer`` loads full weights with ``load_state_dict(strict=False)`` under the model's own
        names, but ``save_pretrained`` writes them under the checkpoint-format names (transformers 5
        renames e.g. Qwen2.5-VL's ``model.language_model.*`` to ``model.*``): 1 tensor of 57 was
        restored, with a warning, and training went on from the base weights. Here full weights are
        matched through the renaming that saving applied (:func:`load_full_checkpoint`) and an
        adapter through peft's own state dict (:func:`load_adapter_checkpoint`); optimizer,
        scheduler and RNG states are restored by ``Trainer`` as before. FSDP checkpoints (their
        own format) are left to ``Trainer``.
        """
        if self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.model if model is None else model
        if hasattr(model, "peft_config"):
            load_adapter_checkpoint(model, resume_from_checkpoint)
        else:
            load_full_checkpoint(model, resume_from_checkpoint)

    # ------------------------------------------------------------------ saving

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the adapter (or full weights), the processor, the video sampling and a model card."""
        super().save_model(output_dir, _internal_call)
        output_dir = output_dir or self.args.output_dir
        if self.is_world_process_zero():
            self.video_sampling.save_pretrained(output_dir)
            Path(output_dir, "README.md").write_text(self.model_card())

    def create_model_card(self, model_name: str | None = None, tags: str | list[str] | None = None, **kwargs) -> None:
        """Write the model card (:meth:`model_card`) to ``output_dir``: what ``push_to_hub`` uploads
        (it replaces the generic card of ``transformers.Trainer``)."""
        if not self.is_world_process_zero():
            return
        more = [tags] if isinstance(tags, str) else list(tags or [])
        Path(self.args.output_dir).mkdir(parents=True, exist_ok=True)
        Path(self.args.output_dir, "README.md").write_text(self.model_card(tags=more))

    def model_card(self, extra: str = "", location: str | None = None, tags: list[str] | None = None) -> str:
        """A model card (``huggingface_hub.ModelCard``) that tells what the model is, how it was
        trained and how to use it.

        ``extra``: more markdown (e.g. a self-improvement round's figures); ``location``: where
        users load the model from (default: ``hub_model_id``, else ``output_dir``); ``tags``: more
        Hub tags besides the trainer's. ``base_model`` is the base's Hub id, left out when the base
        is a local folder."""
        from huggingface_hub import ModelCard, ModelCardData

        args = self.args
        evals = [entry for entry in self.state.log_history if "eval_loss" in entry]
        figures = "\n".join(
            f"| {key.removeprefix('eval_')} | {value:.4f} |"
            for key, value in (evals[-1] if evals else {}).items()
            if key.startswith("eval_") and isinstance(value, float) and math.isfinite(value)
        )
        adapter = hasattr(self.model, "peft_config")
        base = _hub_id(self.model_id)
        data = ModelCardData(
            library_name="peft" if adapter else "transformers",
            base_model=base,
            pipeline_tag="video-text-to-text",
            tags=list(dict.fromkeys([*self._tag_names, *(["lora"] if adapter else []), *(tags or [])])),
        )
        length = f"{args.max_steps} steps (max_steps)" if args.max_steps > 0 else f"{args.num_train_epochs:g} epochs"
        where = location or args.hub_model_id or args.output_dir
        load = f'load_ranker("{base or "BASE_MODEL"}", adapter="{where}")' if adapter else f'load_ranker("{where}")'
        body = f"""
# Video quality ranker (ssvqa)

A video LMM fine-tuned with ssvqa (self-supervised video quality assessment) to compare the quality of two videos. Given
two videos and the pre-filled answer "The quality of the second video is", its next token is one of
`{", ".join(LEVELS)}` (the second video relative to the first). Scores on 0–100 come from comparisons
against anchor videos (`ssvqa score`).

## Training

- base model: {f"`{base}`" if base else "a local model"}; {"LoRA adapter" if adapter else "full weights"}
- loss: `{args.loss_type}`{" with soft targets" if args.soft_targets else ""}; label smoothing {args.label_smoothing};
  swap augmentation: {args.swap_augmentation}
- video sampling: {self.video_sampling.describe()} (`video_sampling.json`)
- trained parts: {self._trained_parts()}
- optimisation: learning rate {args.learning_rate}, {length}, batch {args.per_device_train_batch_size}
  per device x {args.gradient_accumulation_steps} accumulation, {self.state.global_step} steps done, seed {args.seed}

## Evaluation (held-out pairs)

| metric | value |
|---|---|
{figures or "| (no evaluation run) | |"}

{extra}
## Use

```python
from ssvqa import QualityScorer, load_ranker
model, processor = {load}
```
"""
        return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))

    def _trained_parts(self) -> str:
        """What trained, counted on the model: e.g. "vision tower 58,816 parameters (learning rate
        2e-06), projector 24,800 parameters, language model frozen"."""
        from ssvqa.model_parts import parameter_parts

        owner, counts = parameter_parts(self.model), dict.fromkeys(PART_MODES, 0)
        for param in self.model.parameters():
            if param.requires_grad:
                counts[owner[id(param)]] += param.numel()
        rates = self.args.part_learning_rates()
        return ", ".join(
            f"{part.replace('_', ' ')} " + (f"{count:,} parameters" if count else "frozen")
            + (f" (learning rate {rates[part]:g})" if count and part in rates else "")
            for part, count in counts.items()
        )


def _choose_parts(model, peft_config, chosen: dict[str, str | None]):
    """What trains in a model given already loaded (``chosen``: `RankConfig.trainable_parts`);
    returns the model (a new ``PeftModel`` when a LoRA is added).

    With ``peft_config`` a new LoRA is added for the chosen parts; a model that already has an
    adapter (a saved round loaded trainable) trains what its adapter holds, which must be a LoRA
    if parts are chosen; a plain model gets ``requires_grad`` per part. Nothing chosen and no
    ``peft_config``: the model trains as it comes.
    """
    from ssvqa.model_parts import TrainableParts, add_lora, set_trainable_parts

    has_adapter = hasattr(model, "peft_config")
    if peft_config is not None:
        if has_adapter:
            raise ValueError("peft_config given for a model that already has an adapter")
        return add_lora(model, peft_config, parts=TrainableParts.from_settings(**chosen, lora=True))
    if any(chosen.values()):
        parts = TrainableParts.from_settings(**chosen, lora=has_adapter)  # refuses parts an adapter cannot train
        if not has_adapter:
            set_trainable_parts(model, parts)
    return model


def _hub_id(model_id: str | None) -> str | None:
    """``model_id`` when it names a Hub repository; None for a local folder (or nothing)."""
    if not model_id or Path(model_id).exists():
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model_id)
    except HFValidationError:
        return None
    return model_id


def _undecoded(dataset):
    """Keep video columns as bytes/paths: the collator decodes only the frames it needs."""
    if dataset is None:
        return None
    if isinstance(dataset, dict):
        return {name: _undecoded(split) for name, split in dataset.items()}
    features = getattr(dataset, "features", None) or {}
    for column in VIDEO_COLUMNS:
        if isinstance(features.get(column), datasets.Video) and features[column].decode:
            dataset = dataset.cast_column(column, datasets.Video(decode=False))
    return dataset
