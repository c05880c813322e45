"""Loading a video LMM as a pair ranker: plain, LoRA, or QLoRA (4-bit base + LoRA), and what trains.

:func:`load_ranker` is the one entry point. It loads any model that
``AutoModelForImageTextToText`` + ``AutoProcessor`` load (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
LLaVA-OneVision, ...), always from safetensors, and:

1. checks that the five level words are single tokens of the tokenizer (:class:`LevelTokenError`
   before any weight is read);
2. optionally quantizes the *language model* to 4-bit NF4 with double quantization (QLoRA) or to
   8 bits, keeping the vision tower, the projector and ``lm_head`` unquantized;
3. chooses what trains, per part (:class:`~ssvqa.model_parts.TrainableParts`): the vision tower (frozen, full or
   LoRA), the vision-to-language projector (frozen or full) and the language model (LoRA, frozen or
   full); LoRA adapters go on the attention and MLP projections of the parts that ask for them
   (:func:`~ssvqa.model_parts.lora_target_modules`, :func:`~ssvqa.model_parts.vision_lora_target_modules`);
4. optionally loads a saved adapter on top (inference or continued training).

The parts of a model and what trains in each: :mod:`ssvqa.model_parts`.

:func:`compare` is batched inference: N pairs in, ``(N, 5)`` level probabilities out.

CPU note (bitsandbytes 0.50). On a CPU with AVX512-BF16, ``Linear4bit`` repacks its weights in
place the first time it runs in eval mode under ``no_grad``; that fails for layers narrower than
64 inputs and leaves weights that the next training step cannot use. :func:`load_ranker` turns
the repacking off on every ``Linear4bit`` (``support_avx512bf16_for_cpu = False``), so
train -> eval -> train works. GPUs are unaffected.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from typing import Literal

import torch

from ssvqa.prompts import (
    QUESTION,
    answer_logits,
    encode_pairs,
    level_distribution,
    level_token_ids,
)
from ssvqa.model_parts import (
    TrainableParts,
    add_lora,
    base_model,
    check_quantized_parts,
    non_language_modules,
    set_trainable_parts,
)
from ssvqa.sampling import UNIFORM_FRAME_RATE


def load_ranker(
    model_id_or_path: str | os.PathLike,
    *,
    quantization: Literal["4bit", "8bit"] | dict | object | None = None,
    lora: bool | object | None = None,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    lora_target: str | list[str] = "auto",
    train_vision_projector: bool = False,
    vision_tower: str | None = None,
    projector: str | None = None,
    language_model: str | None = None,
    dtype: str | torch.dtype = "auto",
    attn_implementation: str | None = None,
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
    adapter: str | os.PathLike | None = None,
    adapter_trainable: bool = False,
    adapter_revision: str | None = None,
    gradient_checkpointing: bool = False,
    revision: str | None = None,
):
    """Load a video LMM and its processor, ready to rank pairs or to be trained.

    Args:
        model_id_or_path: Hub id or local folder (``from_pretrained`` layout, safetensors).
        quantization: ``"4bit"`` (NF4, double quantization, compute in bf16 where the GPU
            supports it, else float32), ``"8bit"``, a ``BitsAndBytesConfig`` or its dict (e.g.
            from ``trl.get_quantization_config``), or None. The vision tower, projector and
            ``lm_head`` stay unquantized unless the config names its own ``llm_int8_skip_modules``.
        lora: True for a LoRA from ``lora_r``/``lora_alpha``/``lora_dropout``/``lora_target``, a
            ready ``peft.LoraConfig`` (see :func:`add_lora`), or None/False for no adapter.
        lora_target: ``"auto"`` (the language model's attention and MLP projections, see
            :func:`lora_target_modules`), ``"all-linear"`` (peft: every linear layer but the
            output layer, vision included), a regex, or a list of module names.
        train_vision_projector: with LoRA, also train the vision-to-language projector in full
            (Qwen: ``visual.merger`` and Qwen3-VL's deepstack mergers; LLaVA-OneVision:
            ``multi_modal_projector``); saved with the adapter (peft ``modules_to_save``). The
            same as ``projector="full"``.
        vision_tower, projector, language_model: what trains in each part (:class:`TrainableParts`;
            None: as ``lora``/``train_vision_projector`` imply, see
            :meth:`TrainableParts.from_settings`). ``"lora"`` needs ``lora``. Not with ``adapter``
            (a saved adapter trains what it was made with). When nothing of this is asked (no
            ``lora``, no part) the model is returned as loaded.
        dtype: dtype of the unquantized weights (``"auto"``: as stored).
        attn_implementation: e.g. ``"sdpa"``, ``"flash_attention_2"``; None lets transformers choose.
        device_map: passed to ``from_pretrained``. With quantization on a GPU machine it defaults
            to this process's GPU (``LOCAL_RANK``), so each DDP worker holds its own copy;
            otherwise the model stays on the CPU (a Trainer moves it; for inference alone pass
            ``"cuda"`` or ``"auto"``).
        trust_remote_code: run code from the model repository (off unless you trust it).
        adapter: folder or Hub id of a saved LoRA adapter to load on top of the base model.
        adapter_trainable: load ``adapter`` with trainable weights (continued training) rather
            than frozen (inference).
        adapter_revision: Hub revision of ``adapter`` (e.g. ``"round-2"``).
        gradient_checkpointing: enable gradient checkpointing (non-reentrant) for training.
        revision: Hub revision (branch, tag or commit) of ``model_id_or_path``.

    Returns:
        ``(model, processor)``; ``model`` is a ``peft.PeftModel`` when a LoRA or adapter was asked.
        ``model.video_sampling`` is the :class:`~ssvqa.sampling.VideoSampling` saved with the
        adapter or else the model (None when neither has one).

    Raises:
        LevelTokenError: a level word is not a single token of the model's tokenizer.
        ValueError: contradictory parts (:meth:`TrainableParts.from_settings`), or a quantized
            language model asked to train in full or without a LoRA.
        InputNotFoundError: ``model_id_or_path`` or ``adapter`` is neither an existing folder nor
            a Hub id (:func:`ssvqa.hub.local_or_hub_id`).
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from ssvqa.hub import local_or_hub_id
    from ssvqa.sampling import saved_sampling

    for spec in (model_id_or_path, adapter):
        if spec is not None:
            local_or_hub_id(spec, "model folder")  # a mistyped path fails now, not after a wait for the Hub
    if lora and adapter is not None:
        raise ValueError("pass either `lora` (a new adapter) or `adapter` (a saved one), not both")
    chosen = {"vision_tower": vision_tower, "projector": projector, "language_model": language_model}
    parts = None
    if lora or train_vision_projector or any(chosen.values()):
        if adapter is not None:
            raise ValueError(f"{', '.join(k for k, v in chosen.items() if v)} cannot be chosen with a saved `adapter`: "
                             "it trains what it was made with")
        parts = TrainableParts.from_settings(**chosen, lora=bool(lora), train_vision_projector=train_vision_projector)
    if parts is not None and quantization not in (None, False):
        check_quantized_parts(parts)
    hub = dict(trust_remote_code=trust_remote_code, revision=revision)

    processor = AutoProcessor.from_pretrained(model_id_or_path, **hub)
    tokenizer = processor.tokenizer
    level_token_ids(tokenizer)  # fail before reading gigabytes of weights
    if tokenizer.pad_token is None:  # batching pairs needs a pad token; the models ignore its id
        tokenizer.pad_token = tokenizer.eos_token

    config = AutoConfig.from_pretrained(model_id_or_path, **hub)
    quantization_config = _quantization_config(quantization, config, trust_remote_code)
    if quantization_config is not None and device_map is None and torch.cuda.is_available():
        device_map = {"": int(os.environ.get("LOCAL_RANK", 0))}
    kwargs = dict(dtype=dtype, device_map=device_map, use_safetensors=True, **hub)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    model = AutoModelForImageTextToText.from_pretrained(model_id_or_path, **kwargs)
    _disable_cpu_weight_repacking(model)

    quantized = quantization_config is not None
    if quantized and (parts is not None or adapter_trainable):
        _freeze_for_kbit_training(model)
    if gradient_checkpointing:
        # Non-reentrant checkpointing needs no inputs that require grad (LoRA on frozen embeddings),
        # so no input-grad hook on the embeddings is registered.
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=adapter_trainable, revision=adapter_revision)
    elif parts is not None and parts.uses_lora:
        from peft import LoraConfig

        if isinstance(lora, LoraConfig):
            lora_config = lora
        else:
            lora_config = LoraConfig(
                r=lora_r,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                target_modules=None if lora_target == "auto" else lora_target,
                task_type="CAUSAL_LM",
            )
        model = add_lora(model, lora_config, parts=parts)
    elif parts is not None:
        set_trainable_parts(model, parts)
    _disable_cpu_weight_repacking(model)
    model.video_sampling = saved_sampling(adapter, model_id_or_path, revision=adapter_revision if adapter else revision)
    return model, processor


@torch.no_grad()
def compare(
    model,
    processor,
    videos_a: Sequence[torch.Tensor],
    videos_b: Sequence[torch.Tensor],
    *,
    batch_size: int = 8,
    temperature: float = 1.0,
    question: str = QUESTION,
    frame_rate: float = UNIFORM_FRAME_RATE,
) -> torch.Tensor:
    """Level probabilities of N pairs: ``(N, 5)``, rows sum to 1, columns in LEVELS order.

    Runs in eval mode (the model's mode is restored afterwards), left-padded batches of
    ``batch_size`` pairs, and asks the model for the last position's logits only. ``frame_rate``:
    the rate the frames play at (:attr:`ssvqa.sampling.VideoSampling.frame_rate` of their sampling).

    >>> probs = compare(model, processor, [frames_a], [frames_b])      # doctest: +SKIP
    >>> expected_preference(probs)                                      # doctest: +SKIP
    tensor([0.4987])
    """
    if len(videos_a) != len(videos_b):
        raise ValueError(f"videos_a has {len(videos_a)} videos but videos_b has {len(videos_b)}")
    level_ids = level_token_ids(processor.tokenizer)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(videos_a), batch_size):
            batch = encode_pairs(
                processor,
                videos_a[start : start + batch_size],
                videos_b[start : start + batch_size],
                question=question,
                processor_kwargs={"padding_side": "left"},
                frame_rate=frame_rate,
            )
            level_logits = answer_token_logits(model, batch, level_ids)
            out.append(level_distribution(level_logits, temperature).cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.empty(0, 5)
    return torch.cat(out)


def answer_token_logits(model, batch, token_ids) -> torch.Tensor:
    """``(B, len(token_ids))`` logits of ``token_ids`` at each sequence's answer position.

    ``batch`` is a processor batch (moved to the model with :func:`batch_to_model`); only the last
    position's logits are computed where the model allows it (``logits_to_keep``), so the batch
    should be left padded.
    """
    batch = batch_to_model(batch, model)
    keep_last = "logits_to_keep" in inspect.signature(base_model(model).forward).parameters
    logits = model(**batch, use_cache=False, **({"logits_to_keep": 1} if keep_last else {})).logits
    return answer_logits(logits, batch["attention_mask"], token_ids)


def batch_to_model(batch, model):
    """Move a processor batch to the model's device; pixel tensors take the dtype of the model's
    floating weights (bf16 models get bf16 pixels), everything else keeps its dtype."""
    device = next(model.parameters()).device
    dtype = _float_dtype(model)
    moved = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            pixels = key.startswith("pixel_values") and value.is_floating_point()
            value = value.to(device=device, dtype=dtype if pixels else None)
        moved[key] = value
    return type(batch)(moved) if hasattr(batch, "convert_to_tensors") else moved


def _float_dtype(model) -> torch.dtype:
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def _quantization_config(quantization, config, trust_remote_code: bool = False):
    """A ``BitsAndBytesConfig`` from ``"4bit"``/``"8bit"``, skipping the vision tower, projector
    and ``lm_head``. A ``BitsAndBytesConfig`` (or its dict) given by the caller is used as it is,
    with those modules skipped when it names no ``llm_int8_skip_modules`` of its own."""
    if quantization is None or quantization is False:
        return None
    from transformers import BitsAndBytesConfig

    if isinstance(quantization, dict):
        quantization = BitsAndBytesConfig(**quantization)
    if isinstance(quantization, BitsAndBytesConfig):
        if quantization.llm_int8_skip_modules is None:
            quantization.llm_int8_skip_modules = non_language_modules(config, trust_remote_code)
        return quantization
    skip = non_language_modules(config, trust_remote_code)
    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype(),
            bnb_4bit_quant_storage=torch.uint8,
            llm_int8_skip_modules=skip,
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    raise ValueError(f"quantization must be '4bit', '8bit', a BitsAndBytesConfig or None, got {quantization!r}")


def compute_dtype() -> torch.dtype:
    """bf16 on GPUs that support it, float32 otherwise (CPU bf16 matmuls are slow or emulated)."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _freeze_for_kbit_training(model) -> None:
    """Freeze every base weight of a quantized model before LoRA, *without* upcasting.

    ``peft.prepare_model_for_kbit_training`` also casts every non-quantized weight (vision tower,
    projector, embeddings, ``lm_head``, norms) to float32: about +3 GiB of frozen weights on a 7B
    model, and float32 activations through the vision tower. Here they keep the dtype they were
    loaded in (``dtype``, bf16 in the recipes); the LoRA weights peft adds are float32 as usual
    (``autocast_adapter_dtype``), and the 4-bit layers compute in ``bnb_4bit_compute_dtype``.
    """
    for param in model.parameters():
        param.requires_grad_(False)


def _disable_cpu_weight_repacking(model) -> int:
    """Turn off bitsandbytes' in-place CPU repacking on every Linear4bit (see the module doc)."""
    try:
        import bitsandbytes as bnb
    except ImportError:  # no bitsandbytes, nothing quantized
        return 0
    count = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


class _NoKernelsPackageNotice(logging.Filter):
    """Drops bitsandbytes' warning, at import on AVX512-BF16 CPUs, that its optional Hub-downloaded
    CPU kernel was not loaded because the ``kernels`` package is missing, or (``kernels`` installed,
    as transformers >= 5.25 requires) because its repository is not trusted -- ssvqa never trusts
    remote code unless asked. Its own fallback is used, on every run; other failures still show."""

    EXPECTED = ("No module named 'kernels'", "could not verify publisher trust status")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Failed to load CPU gemm_4bit_forward") and any(e in message for e in self.EXPECTED))


# Before bitsandbytes is first imported (it is imported only through this module).
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoKernelsPackageNotice())


