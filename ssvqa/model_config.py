"""A recipe's ``trl.ModelConfig`` as the model ssvqa loads: the TRL way, extended only where needed.

A recipe names its model with TRL's :class:`trl.ModelConfig` (``model_name_or_path``, ``dtype``,
``load_in_4bit``, ``use_peft``, ``lora_r``, ...). As in TRL's own scripts, the LoRA comes from
``trl.get_peft_config`` and the quantization from ``trl.get_quantization_config``; a
:class:`~ssvqa.trainer.RankTrainer` takes them as ``peft_config`` and
``model_init_kwargs["quantization_config"]``. What ssvqa adds:

- no ``lora_target_modules``: the projections of the parts under LoRA (the language model's by
  default, :func:`ssvqa.model_parts.lora_target_modules`; the vision tower's with
  ``vision_tower: lora``), since peft's defaults do not know video LMMs;
- the vision tower, projector and ``lm_head`` stay unquantized (``llm_int8_skip_modules``);
- ``dtype: auto`` computes 4-bit layers in bf16 on GPUs that support it, else float32;
- what trains, per part, is chosen by :class:`~ssvqa.trainer.RankConfig`'s ``vision_tower``,
  ``projector`` and ``language_model`` (with per-part learning rates); ``use_peft`` gives the
  LoRA's shape to the parts set to ``lora``, and alone means LoRA on the language model (the
  projector trained in full too with ``model_init_kwargs: {train_vision_projector: true}``).
  Contradictions (``vision_tower: lora`` without ``use_peft``, ``use_peft`` with no part under
  LoRA, a quantized language model trained in full) are refused when the model is loaded.

Every field is honoured or refused (:func:`check_model_config`): a field set to a value that would
change nothing, or that ssvqa cannot do, is an error naming it, never silently ignored.

:func:`load_trained_model` is the one loader of a saved round model (an adapter on its base, or
full weights), used both to continue training and to relabel.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ssvqa.errors import SsvqaError

_QUANTIZATION_FIELDS = ("bnb_4bit_quant_type", "use_bnb_nested_quant", "bnb_4bit_quant_storage")
_LORA_FIELDS = (
    "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_target_parameters",
    "lora_modules_to_save", "use_rslora", "use_dora",
)


class ModelConfigError(SsvqaError, ValueError):
    """A ``ModelConfig`` field that ssvqa cannot honour (the message names it)."""


def check_model_config(model_args) -> None:
    """Refuse every field set to something that would be ignored or that ssvqa cannot do.

    Raises:
        ModelConfigError: naming the field, its value and why.
    """
    from trl import ModelConfig

    defaults = ModelConfig()
    problems = []

    def changed(name: str) -> bool:
        return getattr(model_args, name, None) != getattr(defaults, name, None)

    if model_args.lora_task_type != "CAUSAL_LM":
        problems.append(f"lora_task_type={model_args.lora_task_type!r}: a ranker answers with its language-model head (CAUSAL_LM)")
    if not model_args.use_peft:
        problems += [f"{name}={getattr(model_args, name)!r} has no effect without use_peft" for name in _LORA_FIELDS if changed(name)]
    if not model_args.load_in_4bit:
        problems += [f"{name}={getattr(model_args, name)!r} has no effect without load_in_4bit" for name in _QUANTIZATION_FIELDS if changed(name)]
    if (model_args.load_in_4bit or model_args.load_in_8bit) and not model_args.use_peft:
        which = "load_in_4bit" if model_args.load_in_4bit else "load_in_8bit"
        problems.append(f"{which}=True needs use_peft: quantized weights cannot be trained in full")
    if problems:
        raise ModelConfigError("ModelConfig fields ssvqa cannot honour: " + "; ".join(problems))


def peft_config(model_args):
    """``trl.get_peft_config(model_args)`` after :func:`check_model_config`: a ``LoraConfig`` or None."""
    from trl import get_peft_config

    check_model_config(model_args)
    return get_peft_config(model_args)


def quantization_config(model_args):
    """``trl.get_quantization_config(model_args)`` after :func:`check_model_config`, with the 4-bit
    compute dtype chosen for the machine when ``dtype`` is ``auto``. The vision side and
    ``lm_head`` are left out of it when it is applied (:func:`ssvqa.modeling.load_ranker`)."""
    from trl import get_quantization_config

    from ssvqa.modeling import compute_dtype

    check_model_config(model_args)
    if model_args.load_in_4bit and model_args.dtype in (None, "auto"):
        model_args = dataclasses.replace(model_args, dtype=str(compute_dtype()).removeprefix("torch."))
    return get_quantization_config(model_args)


def kbit_device_map(use_cpu: bool = False) -> dict[str, int] | None:
    """This process's GPU for a quantized model (what ``trl.get_kbit_device_map`` gave before TRL
    1.x dropped it): each DDP worker holds its own copy. None on CPU."""
    import torch

    if use_cpu or not torch.cuda.is_available():
        return None
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():  # transformers refuses a device_map under ZeRO-3: it partitions the weights itself
        return None
    from accelerate import PartialState

    return {"": PartialState().local_process_index}


def model_init_kwargs(model_args, *, use_cpu: bool = False) -> dict[str, Any]:
    """``RankConfig.model_init_kwargs`` (keyword arguments of :func:`ssvqa.modeling.load_ranker`)
    from a ``ModelConfig``: dtype, attention, revision, and the quantization with its device map."""
    check_model_config(model_args)
    kwargs: dict[str, Any] = {"revision": model_args.model_revision}
    if model_args.dtype is not None:
        kwargs["dtype"] = model_args.dtype
    if model_args.attn_implementation is not None:
        kwargs["attn_implementation"] = model_args.attn_implementation
    quantization = quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = kbit_device_map(use_cpu)
    return kwargs


def load_trained_model(
    model_dir: str | os.PathLike,
    base: str,
    model_args,
    *,
    trainable: bool = False,
    use_cpu: bool = False,
    gradient_checkpointing: bool = False,
):
    """A saved ranker of an earlier round, loaded the way its round trained it: ``(model, processor)``.

    An adapter folder (``adapter_config.json``) loads on ``base`` with the recipe's dtype,
    attention, revision and quantization; full weights load from ``model_dir`` itself (a local
    folder: no Hub revision; never quantized, since full weights were trained unquantized).
    ``trainable``: to continue training (the adapter's weights train); else for inference.
    ``model.video_sampling`` is the sampling saved with it.
    """
    from ssvqa.modeling import load_ranker

    kwargs = model_init_kwargs(model_args, use_cpu=use_cpu)
    quantization = kwargs.pop("quantization_config", None)
    device_map = kwargs.pop("device_map", None)
    if not trainable:  # inference: on this process's GPU; training leaves placement to the Trainer
        device_map = kbit_device_map(use_cpu)
    model_dir = Path(model_dir)
    if (model_dir / "adapter_config.json").exists():
        return load_ranker(base, adapter=str(model_dir), adapter_trainable=trainable, quantization=quantization,
                           device_map=device_map, gradient_checkpointing=gradient_checkpointing and trainable, **kwargs)
    kwargs.pop("revision", None)
    return load_ranker(str(model_dir), device_map=device_map, gradient_checkpointing=gradient_checkpointing and trainable, **kwargs)
