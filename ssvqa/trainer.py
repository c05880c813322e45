"""RankConfig and RankTrainer: teach a video LMM to say how the second video of a pair compares.

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
from peft import LoraConfig
from datasets import load_dataset
from ssvqa.trainer import RankConfig, RankTrainer

pairs = load_dataset("my-org/distortion-pairs")
trainer = RankTrainer(
    model="Qwen/Qwen2.5-VL-7B-Instruct",
    args=RankConfig(output_dir="ranker", model_init_kwargs={"quantization": "4bit"}),
    train_dataset=pairs["train"],
    eval_dataset=pairs["test"],
    peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"),
)
trainer.train()
```
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from ssvqa.collator import DataCollatorForVideoPairs, check_frame_sampling
from ssvqa.labels import LEVEL_WEIGHTS, LEVELS
from ssvqa.prompts import level_token_ids

VIDEO_COLUMNS = ("video_a", "video_b")


@dataclass
class RankConfig(TrainingArguments):
    r"""Configuration of [`RankTrainer`]: everything of `TrainingArguments`, plus:

    Parameters:
        > Video sampling

        num_frames (`int`, defaults to `8`):
            Frames sampled uniformly from each video (short videos repeat frames).
        fps (`float`, *optional*):
            Sample this many frames per second instead of `num_frames` (the paper's "1 fps" setting).
        max_frames (`int`, defaults to `32`):
            Cap on frames per video when sampling by `fps`.
        max_pixels (`int`, defaults to `112 * 112`):
            Pixel budget per frame; frames are resized with aspect kept. Real runs: 448 * 448 or more.
        frame_multiple (`int`, defaults to `28`):
            Frame sides are rounded to this multiple (patch 14 x spatial merge 2 for Qwen-VL).
        decode_threads (`int`, defaults to `1`):
            FFmpeg threads per decode in the collator.

        > Loss

        loss_type (`str`, defaults to `"ce"`):
            `"ce"`: cross-entropy over the five level tokens (the paper); `"bt"`: fidelity loss of the
            expected preference against `prob` (Bradley–Terry learning to rank).
        soft_targets (`bool`, defaults to `False`):
            For `ce`, the target spreads `prob` over the two nearest levels instead of one-hot `label`.
        label_smoothing (`float`, defaults to `0.0`):
            For `ce`, mix the target with the uniform distribution by this much.
        temperature (`float`, defaults to `1.0`):
            Softmax temperature of the level logits when computing the expected preference.
        swap_augmentation (`bool`, defaults to `False`):
            Add each pair's mirror (second, first, mirrored label) to its batch: the model sees both orders.
        confidence_loss (`bool`, defaults to `False`):
            Add the adaptive confidence (entropy) term of W2S-VQA: `L = (1 − λ)·L_rank + λ·H`, with
            `λ = α·min(1, t / T_warm)` and `α = exp(H/τ) / (exp(H/τ) + exp(L_rank/τ))` (see
            [`confidence_weight`]). Logged as `confidence_lambda` and `level_entropy`.
        confidence_warmup_ratio (`float`, defaults to `0.1`):
            `T_warm` as a fraction of the training steps: λ ramps up linearly over it.
        confidence_tau_start (`float`, defaults to `0.5`) and confidence_tau_end (`float`, defaults to `0.1`):
            τ of α goes linearly from the first to the second over the warm-up, then stays.

        > Model

        model_init_kwargs (`dict`, *optional*):
            Keyword arguments for `ssvqa.modeling.load_ranker` when `model` is a string, e.g.
            `{"quantization": "4bit", "dtype": "bfloat16", "train_vision_projector": true}`.
    """

    num_frames: int = field(default=8, metadata={"help": "Frames sampled uniformly from each video."})
    fps: float | None = field(default=None, metadata={"help": "Sample frames at this rate instead of num_frames."})
    max_frames: int = field(default=32, metadata={"help": "Cap on frames per video when sampling by fps."})
    max_pixels: int = field(default=112 * 112, metadata={"help": "Pixel budget per frame (aspect kept)."})
    frame_multiple: int = field(default=28, metadata={"help": "Round frame sides to this multiple."})
    decode_threads: int = field(default=1, metadata={"help": "FFmpeg threads per video decode."})
    loss_type: Literal["ce", "bt"] = field(
        default="ce", metadata={"help": "ce: cross-entropy over level tokens; bt: fidelity loss on preference."}
    )
    soft_targets: bool = field(default=False, metadata={"help": "ce target from prob instead of one-hot label."})
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing of the ce target."})
    temperature: float = field(default=1.0, metadata={"help": "Temperature of the level softmax."})
    swap_augmentation: bool = field(default=False, metadata={"help": "Also train on each pair's mirror."})
    confidence_loss: bool = field(
        default=False, metadata={"help": "Add W2S-VQA's adaptive confidence (entropy) term to the loss."}
    )
    confidence_warmup_ratio: float = field(
        default=0.1, metadata={"help": "Fraction of the steps over which the confidence weight ramps up."}
    )
    confidence_tau_start: float = field(default=0.5, metadata={"help": "Confidence weight temperature at step 0."})
    confidence_tau_end: float = field(default=0.1, metadata={"help": "Confidence weight temperature after warm-up."})
    model_init_kwargs: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "kwargs (or JSON) for ssvqa.modeling.load_ranker when model is a string."}
    )
    # Different defaults from TrainingArguments: the collator needs the raw video columns, and a
    # tiny CPU run should log often.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep video columns for the collator."})
    logging_steps: float = field(default=10, metadata={"help": "Log every X update steps."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Integrations to report to."})

    def __post_init__(self):
        if isinstance(self.model_init_kwargs, str):
            self.model_init_kwargs = json.loads(self.model_init_kwargs)
        if self.loss_type not in ("ce", "bt"):
            raise ValueError(f"loss_type must be 'ce' or 'bt', got {self.loss_type!r}")
        if min(self.confidence_tau_start, self.confidence_tau_end) <= 0:
            raise ValueError("confidence_tau_start and confidence_tau_end must be > 0")
        if not 0.0 < self.confidence_warmup_ratio <= 1.0:
            raise ValueError(f"confidence_warmup_ratio must be in (0, 1], got {self.confidence_warmup_ratio}")
        super().__post_init__()


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
        peft_config: a `peft.LoraConfig`; LoRA adapters are added to the model.
        data_collator: defaults to [`DataCollatorForVideoPairs`] configured from `args`.
    """

    _tag_names = ["ssvqa", "video-quality-assessment", "ranking"]

    def __init__(
        self,
        model,
        args: RankConfig | None = None,
        train_dataset: datasets.Dataset | None = None,
        eval_dataset: datasets.Dataset | dict[str, datasets.Dataset] | None = None,
        processing_class=None,
        peft_config=None,
        data_collator=None,
        callbacks=None,
        optimizers=(None, None),
    ):
        args = args or RankConfig(output_dir="ranker")
        self.model_id = model if isinstance(model, str) else getattr(model.config, "_name_or_path", None)
        if isinstance(model, str):
            from transformers import AutoConfig

            from ssvqa.modeling import load_ranker

            if args.fps is not None:  # refused before gigabytes of weights are read
                init = args.model_init_kwargs or {}
                config = AutoConfig.from_pretrained(model, revision=init.get("revision"),
                                                    trust_remote_code=init.get("trust_remote_code", False))
                check_frame_sampling(config.model_type, args.fps)

            model, loaded_processor = load_ranker(model, lora=peft_config, **(args.model_init_kwargs or {}))
            processing_class = processing_class or loaded_processor
        elif peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        if processing_class is None:
            raise ValueError("processing_class (the model's processor) is required when model is not a string")
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        self.level_ids = level_token_ids(tokenizer)
        if data_collator is None:
            data_collator = DataCollatorForVideoPairs(
                processing_class,
                num_frames=args.num_frames,
                fps=args.fps,
                max_frames=args.max_frames,
                max_pixels=args.max_pixels,
                frame_multiple=args.frame_multiple,
                num_threads=args.decode_threads,
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
        # Sums, not means, so accuracy over an epoch is exact however batches split the ties.
        self._stats = {"train": defaultdict(float), "eval": defaultdict(float)}

    # ------------------------------------------------------------------ loss

    def level_logits(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 5) logits of the level words at the answer position (the last: left padding)."""
        model_inputs = {k: v for k, v in inputs.items() if k not in ("level", "prob", "target")}
        if not bool(model_inputs["attention_mask"][:, -1].all()):
            raise ValueError("RankTrainer needs left-padded batches (the answer must be the last position)")
        # Only the last position's logits are needed: the full (B, L, vocab) tensor is gigabytes on a 7B model.
        outputs = model(**model_inputs, use_cache=False, logits_to_keep=1)
        return outputs.logits[:, -1, self.level_ids].float()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        logits = self.level_logits(model, inputs)
        log_probs = F.log_softmax(logits / self.args.temperature, dim=-1)
        weights = torch.tensor(LEVEL_WEIGHTS, device=logits.device)
        preference = (log_probs.exp() * weights).sum(-1)
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
        self._record(mode, preference, inputs["prob"], log_probs)
        return (loss, {"level_logits": logits}) if return_outputs else loss

    @torch.no_grad()
    def _record(self, mode, preference, prob, log_probs):
        """Gather per-pair results from all processes and add them to this mode's running sums."""
        gather = self.accelerator.gather_for_metrics
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
            if stats["ties"]:
                logs[f"{prefix}tie_preference"] = stats["tie_preference_sum"] / stats["ties"]
            logs[f"{prefix}level_entropy"] = stats["entropy_sum"] / stats["pairs"]
        if stats["loss_batches"]:
            logs[f"{prefix}confidence_lambda"] = stats["confidence_lambda_sum"] / stats["loss_batches"]
        stats.clear()
        super().log(logs, start_time)

    # ------------------------------------------------------------------ saving

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the adapter (or full weights), the processor, and a model card."""
        super().save_model(output_dir, _internal_call)
        output_dir = output_dir or self.args.output_dir
        if self.is_world_process_zero():
            Path(output_dir, "README.md").write_text(self.model_card())

    def model_card(self, extra: str = "", location: str | None = None) -> str:
        """A model card that tells what the model is, how it was trained and how to use it.

        ``extra``: more markdown (e.g. a self-improvement round's figures); ``location``: where
        users load the model from (default: ``hub_model_id``, else ``output_dir``)."""
        args = self.args
        evals = [entry for entry in self.state.log_history if "eval_loss" in entry]
        figures = "\n".join(
            f"| {key.removeprefix('eval_')} | {value:.4f} |"
            for key, value in (evals[-1] if evals else {}).items()
            if key.startswith("eval_") and isinstance(value, float) and math.isfinite(value)
        )
        adapter = hasattr(self.model, "peft_config")
        sampling = f"{args.fps} fps (at most {args.max_frames} frames)" if args.fps else f"{args.num_frames} frames"
        return f"""---
library_name: {"peft" if adapter else "transformers"}
base_model: {self.model_id or "unknown"}
pipeline_tag: video-text-to-text
tags: [ssvqa, video-quality-assessment, ranking{", lora" if adapter else ""}]
---

# Video quality ranker (ssvqa)

A video LMM fine-tuned with ssvqa (self-supervised video quality assessment) to compare the quality of two videos. Given
two videos and the pre-filled answer "The quality of the second video is", its next token is one of
`{", ".join(LEVELS)}` (the second video relative to the first). Scores on 0–100 come from comparisons
against anchor videos (`ssvqa score`).

## Training

- base model: `{self.model_id}`; {"LoRA adapter" if adapter else "full weights"}
- loss: `{args.loss_type}`{" with soft targets" if args.soft_targets else ""}; label smoothing {args.label_smoothing};
  swap augmentation: {args.swap_augmentation}
- video sampling: {sampling}, at most {args.max_pixels} pixels per frame
- optimisation: learning rate {args.learning_rate}, {args.num_train_epochs} epochs, batch {args.per_device_train_batch_size}
  per device x {args.gradient_accumulation_steps} accumulation, {self.state.global_step} steps, seed {args.seed}

## Evaluation (held-out pairs)

| metric | value |
|---|---|
{figures or "| (no evaluation run) | |"}

{extra}
## Use

```python
from ssvqa.modeling import load_ranker, compare
model, processor = load_ranker("{location or args.hub_model_id or args.output_dir}")
```
"""


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
