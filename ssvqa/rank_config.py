"""RankConfig: the training arguments of :class:`~ssvqa.trainer.RankTrainer`, grouped by concern.

A ``transformers.TrainingArguments`` with what ranking video pairs adds: how videos become frames
(the fields of :class:`~ssvqa.sampling.VideoSampling`, saved with the model), the loss (``ce`` or
``bt``, soft targets, swap augmentation, W2S-VQA's confidence term), what trains in each part of
the model with its own learning rate (:class:`~ssvqa.model_parts.TrainableParts`), and how the
model is built when the trainer gets a model id (``model_init_kwargs``). As TRL keeps
``RewardConfig`` beside ``RewardTrainer``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import TrainingArguments

from ssvqa.model_parts import PART_MODES
from ssvqa.sampling import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, DEFAULT_NUM_FRAMES, SAMPLING_MODES, VideoSampling, processor_frame_multiple


@dataclass
class RankConfig(TrainingArguments):
    r"""Configuration of [`RankTrainer`]: everything of `TrainingArguments`, plus:

    Parameters:
        > Video sampling (the trained model's [`~ssvqa.sampling.VideoSampling`], saved beside its weights)

        num_frames (`int`, defaults to `8`):
            Frames sampled uniformly from each video (short videos repeat frames).
        fps (`float`, *optional*):
            Sample this many frames per second instead of `num_frames` (the paper's "1 fps" setting).
        max_frames (`int`, defaults to `32`):
            Cap on frames per video when sampling by `fps`.
        max_pixels (`int`, defaults to `112 * 112`):
            Pixel budget per frame; frames are resized with aspect kept. Real runs: 448 * 448 or more.
        sampling_mode (`str`, defaults to `"resize"`):
            How frames meet the pixel budget (`ssvqa.sampling.SAMPLING_MODES`).
        frame_multiple (`int`, *optional*):
            Frame sides are rounded to this multiple. It is the processor's (patch size x spatial
            merge: 28 for Qwen2.5-VL); a value given here is checked against it. Processors that
            resize frames themselves (LLaVA-OneVision) use this value, default 28.
        decode_threads (`int`, defaults to `1`):
            FFmpeg threads per decode in the collator.
        video_root (`str`, *optional*):
            The folder that rows holding only a video path (no bytes) are read in; such a path may not
            leave it. None: every row must hold its videos' bytes (as `load_pairs` returns them).

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

        > Trainable parts (see [`~ssvqa.model_parts.TrainableParts`])

        vision_tower (`str`, *optional*):
            `"frozen"`, `"full"` or `"lora"` (LoRA adapters on the vision encoder's attention and MLP
            projections; the LoRA's shape comes from `use_peft`/`lora_r`... or `peft_config`).
            None: frozen with a LoRA config, else full (what the model trained before these fields).
        projector (`str`, *optional*):
            The vision-to-language projector (Qwen's merger(s), LLaVA-OneVision's
            `multi_modal_projector`): `"frozen"` or `"full"`. None: full without a LoRA config; with
            one, frozen unless `model_init_kwargs` has `train_vision_projector: true` (the older spelling).
        language_model (`str`, *optional*):
            `"lora"`, `"frozen"` or `"full"` (decoder, embeddings and `lm_head`). None: `"lora"` with
            a LoRA config, else full. A quantized language model (`load_in_4bit`) never trains in full.
            W2S-VQA's setting: `vision_tower: full`, `projector: full`, `language_model: frozen`.
        vision_tower_learning_rate (`float`, *optional*):
            Peak learning rate of the vision tower's trained weights (its LoRA, or all of it); None:
            `learning_rate`. The scheduler scales it like the others (each part is its own
            optimizer group, weight decay split as usual).
        projector_learning_rate (`float`, *optional*):
            The same for the projector.
        language_model_learning_rate (`float`, *optional*):
            The same for the language model.

        > Model

        model_init_kwargs (`dict`, *optional*):
            Keyword arguments for `ssvqa.modeling.load_ranker` when `model` is a string, e.g.
            `{"dtype": "bfloat16", "train_vision_projector": true}`. As in TRL's trainers,
            `quantization_config` (a `BitsAndBytesConfig` or its dict, e.g. from
            `trl.get_quantization_config`) quantizes the language model.
    """

    num_frames: int = field(default=DEFAULT_NUM_FRAMES, metadata={"help": "Frames sampled uniformly from each video."})
    fps: float | None = field(default=None, metadata={"help": "Sample frames at this rate instead of num_frames."})
    max_frames: int = field(default=DEFAULT_MAX_FRAMES, metadata={"help": "Cap on frames per video when sampling by fps."})
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, metadata={"help": "Pixel budget per frame (aspect kept)."})
    sampling_mode: str = field(default="resize", metadata={"help": f"How frames meet the pixel budget: {', '.join(SAMPLING_MODES)}."})
    frame_multiple: int | None = field(default=None, metadata={"help": "Round frame sides to this multiple (default: the processor's)."})
    decode_threads: int = field(default=1, metadata={"help": "FFmpeg threads per video decode."})
    video_root: str | None = field(
        default=None, metadata={"help": "Folder that path-only video rows are read in (None: rows must hold bytes)."}
    )
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
    vision_tower: str | None = field(
        default=None, metadata={"help": "Vision tower: frozen, full or lora (None: frozen with a LoRA config, else full)."}
    )
    projector: str | None = field(
        default=None, metadata={"help": "Vision-to-language projector: frozen or full (None: as the LoRA config implies)."}
    )
    language_model: str | None = field(
        default=None, metadata={"help": "Language model: lora, frozen or full (None: lora with a LoRA config, else full)."}
    )
    vision_tower_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the vision tower (None: learning_rate)."}
    )
    projector_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the projector (None: learning_rate)."}
    )
    language_model_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the language model (None: learning_rate)."}
    )
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
        self.video_sampling()  # a bad sampling fails here, not at the first batch
        self._check_parts()
        super().__post_init__()

    def _check_parts(self) -> None:
        """Refuse a part mode that does not exist, and a learning rate for a part that is frozen."""
        for part, modes in PART_MODES.items():
            mode, rate = getattr(self, part), getattr(self, f"{part}_learning_rate")
            if mode is not None and mode not in modes:
                raise ValueError(f"{part} must be one of {', '.join(modes)}, got {mode!r}")
            if rate is not None and rate <= 0:
                raise ValueError(f"{part}_learning_rate must be > 0, got {rate}")
            if rate is not None and mode == "frozen":
                raise ValueError(f"{part}_learning_rate={rate} has no effect with {part}='frozen'")

    def trainable_parts(self) -> dict[str, str | None]:
        """``{part: mode}`` as set here (None: not chosen), for
        [`~ssvqa.model_parts.TrainableParts.from_settings`]."""
        return {part: getattr(self, part) for part in PART_MODES}

    def part_learning_rates(self) -> dict[str, float]:
        """``{part: learning rate}`` of the parts given their own (the others use `learning_rate`)."""
        rates = {part: getattr(self, f"{part}_learning_rate") for part in PART_MODES}
        return {part: rate for part, rate in rates.items() if rate is not None}

    def video_sampling(self, processor=None) -> VideoSampling:
        """The [`~ssvqa.sampling.VideoSampling`] of these fields; with ``processor``, its frame multiple."""
        sampling = VideoSampling(
            num_frames=self.num_frames,
            fps=self.fps,
            max_frames=self.max_frames,
            max_pixels=self.max_pixels,
            mode=self.sampling_mode,
            **({"frame_multiple": self.frame_multiple} if self.frame_multiple else {}),
        )
        if processor is None:
            return sampling
        needed = processor_frame_multiple(processor)
        if needed is None:  # the processor resizes frames itself
            return sampling
        if self.frame_multiple and self.frame_multiple != needed:
            raise ValueError(f"frame_multiple={self.frame_multiple} but the processor's patches need {needed}: leave it unset")
        return sampling.with_processor(processor)
