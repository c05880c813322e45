"""Loading a video LMM as a pair ranker: plain, LoRA, or QLoRA (4-bit base + LoRA), and what trains.

:func:`load_ranker` is the one entry point. It loads any model that
``AutoModelForImageTextToText`` + ``AutoProcessor`` load (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
LLaVA-OneVision, ...), always from safetensors, and:

1. checks that the five level words are single tokens of the tokenizer (:class:`LevelTokenError`
   before any weight is read);
2. optionally quantizes the *language model* to 4-bit NF4 with double quantization (QLoRA) or to
   8 bits, keeping the vision tower, the projector and ``lm_head`` unquantized;
3. chooses what trains, per part (:class:`TrainableParts`): the vision tower (frozen, full or
   LoRA), the vision-to-language projector (frozen or full) and the language model (LoRA, frozen or
   full); LoRA adapters go on the attention and MLP projections of the parts that ask for them
   (:func:`lora_target_modules`, :func:`vision_lora_target_modules`);
4. optionally loads a saved adapter on top (inference or continued training).

The parts of a model are found by name, the same way for every family
(:func:`parameter_parts`): the projector (:func:`vision_projector_modules`), the vision tower
(:func:`vision_tower_modules`, the projector excepted) and the language model (everything else:
decoder, embeddings, ``lm_head``, LLaVA-OneVision's ``image_newline``).

:func:`compare` is batched inference: N pairs in, ``(N, 5)`` level probabilities out.

CPU note (bitsandbytes 0.50). On a CPU with AVX512-BF16, ``Linear4bit`` repacks its weights in
place the first time it runs in eval mode under ``no_grad``; that fails for layers narrower than
64 inputs and leaves weights that the next training step cannot use. :func:`load_ranker` turns
the repacking off on every ``Linear4bit`` (``support_avx512bf16_for_cpu = False``), so
train -> eval -> train works. GPUs are unaffected.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ssvqa.prompts import (
    QUESTION,
    answer_logits,
    encode_pairs,
    level_distribution,
    level_token_ids,
)
from ssvqa.sampling import UNIFORM_FRAME_RATE

# Names that every AutoModelForImageTextToText in transformers 5 gives its language model.
LANGUAGE_MODEL = "language_model"
# Top-level parts of the inner model that are the vision side (encoder and projector).
VISION_PROJECTORS = ("merger", "deepstack_merger_list", "multi_modal_projector")
# The trainable parts and how each may train (TrainableParts).
PART_MODES = {
    "vision_tower": ("frozen", "full", "lora"),
    "projector": ("frozen", "full"),
    "language_model": ("lora", "frozen", "full"),
}


@dataclass(frozen=True)
class TrainableParts:
    """What trains in each part of a video LMM.

    Args:
        vision_tower: ``"frozen"``, ``"full"`` (every weight of the vision encoder) or ``"lora"``
            (LoRA adapters on its attention and MLP projections, :func:`vision_lora_target_modules`).
        projector: ``"frozen"`` or ``"full"`` (the vision-to-language projector/merger(s),
            :func:`vision_projector_modules`).
        language_model: ``"lora"`` (adapters on its projections, :func:`lora_target_modules`),
            ``"frozen"`` or ``"full"`` (decoder, embeddings and ``lm_head``).

    With a LoRA anywhere the model becomes a ``peft.PeftModel``: the parts trained in full are then
    peft ``modules_to_save`` (trained in full and saved with the adapter; peft keeps a frozen copy
    of the original beside each). Without a LoRA, frozen parts simply get ``requires_grad=False``
    and checkpoints hold full weights.

    >>> TrainableParts(vision_tower="full", projector="full", language_model="frozen")  # W2S-VQA's setting
    TrainableParts(vision_tower='full', projector='full', language_model='frozen')
    """

    vision_tower: str = "frozen"
    projector: str = "frozen"
    language_model: str = "lora"

    def __post_init__(self):
        for part, modes in PART_MODES.items():
            if getattr(self, part) not in modes:
                raise ValueError(f"{part} must be one of {', '.join(map(repr, modes))}, got {getattr(self, part)!r}")
        if self.language_model == "full" and self.vision_tower == "lora":
            raise ValueError("language_model='full' with vision_tower='lora' is not supported: a LoRA model would keep a "
                             "second, trainable copy of the whole language model (modules_to_save); train the vision "
                             "tower in full too, or use language_model='lora'")
        if all(mode == "frozen" for mode in self.modes().values()):
            raise ValueError("vision_tower, projector and language_model are all 'frozen': nothing would train")

    def modes(self) -> dict[str, str]:
        """``{part: mode}`` in the order of :data:`PART_MODES`."""
        return {part: getattr(self, part) for part in PART_MODES}

    @property
    def uses_lora(self) -> bool:
        """Whether a LoRA adapter is needed (the vision tower or the language model asks for one)."""
        return "lora" in (self.vision_tower, self.language_model)

    @classmethod
    def from_settings(
        cls,
        vision_tower: str | None = None,
        projector: str | None = None,
        language_model: str | None = None,
        *,
        lora: bool,
        train_vision_projector: bool = False,
    ) -> TrainableParts:
        """The parts from explicit choices (None: not chosen) and the older switches.

        ``lora``: a LoRA config is given (``use_peft``, ``peft_config``, ``lora=``);
        ``train_vision_projector``: the older way to say ``projector="full"`` with a LoRA. A part
        left None follows what those switches always meant: with a LoRA, the language model gets
        it and the vision side is frozen (the projector trains with ``train_vision_projector``);
        without one, everything trains in full.

        Raises:
            ValueError: contradictory settings, naming them.
        """
        if train_vision_projector:
            if not lora:
                raise ValueError("train_vision_projector needs lora=True (use_peft): without LoRA every weight trains "
                                 "anyway; say projector='full' to choose the parts of a model without LoRA")
            if projector == "frozen":
                raise ValueError("train_vision_projector=True contradicts projector='frozen': set only projector")
        default = "frozen" if lora else "full"
        parts = cls(
            vision_tower=vision_tower or default,
            projector=projector or ("full" if train_vision_projector else default),
            language_model=language_model or ("lora" if lora else "full"),
        )
        if lora and not parts.uses_lora:
            raise ValueError(f"a LoRA config is given (use_peft / peft_config / lora=) but neither vision_tower "
                             f"({parts.vision_tower!r}) nor language_model ({parts.language_model!r}) is 'lora': "
                             "drop the LoRA config or set one of them to 'lora'")
        if not lora and parts.uses_lora:
            which = [part for part in ("vision_tower", "language_model") if getattr(parts, part) == "lora"]
            raise ValueError(f"{' and '.join(f'{part}=lora' for part in which)} needs a LoRA config: set use_peft "
                             "(ModelConfig; lora_r, lora_alpha... give its shape) or pass peft_config / lora=True")
        return parts


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
        _check_quantized_parts(parts)
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


def add_lora(model, lora_config, *, train_vision_projector: bool = False, parts: TrainableParts | None = None):
    """Add a new LoRA adapter to ``model`` with peft, filling in what ssvqa knows about video LMMs.

    ``lora_config`` is a ``peft.LoraConfig`` (e.g. ``trl.get_peft_config(model_args)``); it is
    used as given, except:

    - no ``target_modules``: the projections of the parts that ``parts`` puts under LoRA (the
      language model's, :func:`lora_target_modules`, and/or the vision tower's,
      :func:`vision_lora_target_modules`; peft's own defaults do not know video LMMs). Explicit
      ``target_modules`` are used as they are, whatever ``parts`` says about LoRA;
    - the parts trained in full join ``modules_to_save`` (trained in full, saved with the adapter):
      the projector(s) with ``projector="full"`` (or ``train_vision_projector``), the vision tower's
      modules with ``vision_tower="full"`` (:func:`vision_tower_save_modules`).

    ``parts`` defaults to LoRA on the language model, the vision side frozen (projector full with
    ``train_vision_projector``).
    """
    from peft import get_peft_model

    if parts is None:
        parts = TrainableParts.from_settings(lora=True, train_vision_projector=train_vision_projector)
    elif train_vision_projector and parts.projector != "full":
        raise ValueError(f"train_vision_projector=True contradicts projector={parts.projector!r}")
    if not parts.uses_lora:
        raise ValueError(f"add_lora needs a part under LoRA, got {parts}")
    changes = {}
    if lora_config.target_modules is None and not getattr(lora_config, "target_parameters", None):
        targets = [lora_target_modules(model)] if parts.language_model == "lora" else []
        targets += [vision_lora_target_modules(model)] if parts.vision_tower == "lora" else []
        changes["target_modules"] = "|".join(f"(?:{target})" for target in targets) if len(targets) > 1 else targets[0]
    save = vision_projector_modules(model) if parts.projector == "full" else []
    save += vision_tower_save_modules(model) if parts.vision_tower == "full" else []
    if save:
        changes["modules_to_save"] = list(dict.fromkeys([*(lora_config.modules_to_save or []), *save]))
    if changes:
        lora_config = dataclasses.replace(lora_config, **changes)
    return get_peft_model(model, lora_config)


def lora_target_modules(model) -> str:
    r"""The ``"auto"`` LoRA target: every linear projection inside the language model.

    In a transformers-5 video LMM the decoder lives under ``*.language_model.*`` and its linear
    layers are exactly the attention (``q/k/v/o_proj``) and MLP (``gate/up/down_proj``)
    projections. The vision encoder is left alone: its layers can have the same names (SigLIP in
    LLaVA-OneVision has ``q_proj``...), which is why the target is a regex anchored on
    ``language_model`` (peft full-matches a string target against module names) and not a list
    of names. ``lm_head`` is not inside the language model and is not targeted.

    >>> lora_target_modules(model)                                        # doctest: +SKIP
    '.*\\.language_model\\..*\\.(down_proj|gate_proj|k_proj|o_proj|q_proj|up_proj|v_proj)'
    """
    names = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in base_model(model).named_modules()
            if f".{LANGUAGE_MODEL}." in f".{name}" and isinstance(module, torch.nn.Linear)
        }
    )
    if not names:
        raise ValueError(
            f"found no linear layer under a '{LANGUAGE_MODEL}' module in {type(model).__name__}; "
            "pass lora_target explicitly (a regex or a list of module names)"
        )
    return rf".*\.{LANGUAGE_MODEL}\..*\.({'|'.join(re.escape(n) for n in names)})"


def vision_projector_modules(model) -> list[str]:
    """Module names of the vision-to-language projector(s), for peft ``modules_to_save``.

    Qwen2/2.5-VL: ``visual.merger``; Qwen3-VL: ``visual.merger`` and each
    ``visual.deepstack_merger_list.<i>`` (a ModuleList is wrapped element by element, since the
    model indexes it); LLaVA-OneVision: ``multi_modal_projector``.
    """
    found = []
    for name, _ in base_model(model).named_modules():
        parts = name.split(".")
        if LANGUAGE_MODEL in parts:
            continue
        if parts[-1] in ("merger", "multi_modal_projector") or (len(parts) > 1 and parts[-2] == "deepstack_merger_list"):
            found.append(name)
    if not found:
        raise ValueError(f"found no vision projector in {type(model).__name__} (looked for {VISION_PROJECTORS})")
    return found


def vision_tower_modules(model) -> list[str]:
    """Module names of the vision encoder: the inner model's children that are neither the language
    model nor a projector and hold weights (Qwen2/2.5/3-VL: ``model.visual``, whose merger(s) are
    the projector; LLaVA-OneVision: ``model.vision_tower``)."""
    root, projectors = base_model(model), vision_projector_modules(model)
    found = [name for name in _non_language_children(root)
             if name != "lm_head" and name not in projectors and any(True for _ in root.get_submodule(name).parameters())]
    if not found:
        raise ValueError(f"found no vision tower in {type(root).__name__}")
    return found


def vision_tower_save_modules(model) -> list[str]:
    """The vision tower as peft ``modules_to_save`` (its weights trained in full beside a LoRA).

    A tower that holds a projector (Qwen's ``visual`` holds ``merger``) is listed by its children,
    the projector(s) left out and a ModuleList element by element (the model iterates it, which a
    peft wrapper does not allow); children without weights (rotary embeddings) are skipped.
    """
    root, projectors = base_model(model), vision_projector_modules(model)
    found = []
    for tower in vision_tower_modules(model):
        if not any(projector.startswith(f"{tower}.") for projector in projectors):
            found.append(tower)
            continue
        for name, child in root.get_submodule(tower).named_children():
            full = f"{tower}.{name}"
            if full in projectors or not any(True for _ in child.parameters()):
                continue
            if isinstance(child, torch.nn.ModuleList):
                found += [f"{full}.{index}" for index in range(len(child)) if f"{full}.{index}" not in projectors]
            else:
                found.append(full)
    return found


def vision_lora_target_modules(model) -> str:
    r"""The LoRA target of ``vision_tower="lora"``: every linear layer of the vision encoder.

    A regex anchored on the vision tower's name that leaves the projector out (Qwen3-VL's merger
    and the vision blocks share ``linear_fc1``/``linear_fc2``), like :func:`lora_target_modules`
    for the language model. Layers are named by their last two name parts (``attn.qkv``,
    ``mlp.fc1``), so the convolutional patch embedding (Qwen's ``patch_embed.proj``) is not targeted.

    >>> vision_lora_target_modules(model)                                 # doctest: +SKIP
    '(?:.*\\.)?(?:model\\.visual)\\.(?!(?:merger)\\.).*\\.(attn\\.proj|attn\\.qkv|mlp\\.down_proj|mlp\\.gate_proj|mlp\\.up_proj)'
    """
    root, projectors, towers = base_model(model), vision_projector_modules(model), vision_tower_modules(model)
    names = sorted(  # the last two name parts (attn.proj, not patch_embed.proj: a Conv3d in Qwen)
        {
            ".".join(name.rsplit(".", 2)[-2:])
            for name, module in root.named_modules()
            if isinstance(module, torch.nn.Linear)
            and _under(name, towers) and not _under(name, projectors)
        }
    )
    if not names:
        raise ValueError(f"found no linear layer in the vision tower of {type(root).__name__} ({', '.join(towers)})")
    inside = sorted({p.removeprefix(f"{t}.").split(".")[0] for p in projectors for t in towers if p.startswith(f"{t}.")})
    skip = rf"(?!(?:{'|'.join(map(re.escape, inside))})\.)" if inside else ""
    tower = "|".join(map(re.escape, towers))
    return rf"(?:.*\.)?(?:{tower})\.{skip}.*\.({'|'.join(map(re.escape, names))})"


def parameter_parts(model) -> dict[int, str]:
    """``{id(parameter): part}`` for every parameter of ``model`` (a peft wrapper included): part
    is ``"projector"``, ``"vision_tower"`` or ``"language_model"`` (everything else: decoder,
    embeddings, ``lm_head``, LLaVA-OneVision's ``image_newline``). LoRA weights and peft's
    ``modules_to_save`` copies belong to the part they sit in."""
    root = base_model(model)
    projectors, towers = vision_projector_modules(root), vision_tower_modules(root)
    parts = {}
    for name, param in root.named_parameters(remove_duplicate=False):
        part = "projector" if _under(name, projectors) else "vision_tower" if _under(name, towers) else "language_model"
        parts.setdefault(id(param), part)
    return parts


def set_trainable_parts(model, parts: TrainableParts) -> None:
    """``requires_grad`` of every weight of a model without LoRA: True in the parts trained
    ``"full"``, False in the frozen ones."""
    if parts.uses_lora:
        raise ValueError(f"{parts} asks for a LoRA: use add_lora")
    modes = parts.modes()
    owner = parameter_parts(model)
    for param in base_model(model).parameters():
        param.requires_grad_(modes[owner[id(param)]] == "full")


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def _non_language_children(model) -> list[str]:
    """Full names of a transformers video LMM's top-level modules that are not the language model:
    the inner ``model``'s other children (vision tower, projector) and ``lm_head``."""
    names = []
    for name, child in model.named_children():
        if name == "model":
            names += [f"model.{sub}" for sub, _ in child.named_children() if sub != LANGUAGE_MODEL]
        else:
            names.append(name)  # lm_head
    return names


def non_language_modules(config, trust_remote_code: bool = False) -> list[str]:
    """Full names of the top-level modules that are not the language model (vision tower,
    projector) plus ``lm_head``: what quantization leaves in full precision.

    Found by building the model on the ``meta`` device (no memory, no weights).
    """
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        skeleton = AutoModelForImageTextToText.from_config(config, trust_remote_code=trust_remote_code)
    return _non_language_children(skeleton)


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


def _check_quantized_parts(parts: TrainableParts) -> None:
    """A quantized language model trains only through a LoRA, never in full (its weights are 4/8-bit)."""
    if parts.language_model == "full":
        raise ValueError("language_model='full' on a quantized model (load_in_4bit / load_in_8bit / quantization): "
                         "quantized weights cannot be trained in full; use language_model='lora' or 'frozen', or "
                         "load the model unquantized")
    if not parts.uses_lora:
        raise ValueError(f"a quantized model trains only through a LoRA (use_peft), but no part is 'lora' ({parts}): "
                         "load it unquantized to train parts in full without an adapter")


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
    """Drops bitsandbytes' warning, at import on AVX512-BF16 CPUs, that the optional ``kernels``
    package (a Hub-downloaded CPU kernel) is not installed: its own fallback is used, on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Failed to load CPU gemm_4bit_forward") and "No module named 'kernels'" in message)


# Before bitsandbytes is first imported (it is imported only through this module).
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoKernelsPackageNotice())


def base_model(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
