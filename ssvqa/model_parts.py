"""The parts of a video LMM, found by name, and what trains in each (:class:`TrainableParts`).

Every family ``AutoModelForImageTextToText`` loads (Qwen2/2.5/3-VL, LLaVA-OneVision) is split the
same way (:func:`parameter_parts`): the vision-to-language projector
(:func:`vision_projector_modules`), the vision tower (:func:`vision_tower_modules`, the projector
excepted) and the language model (everything else: decoder, embeddings, ``lm_head``,
LLaVA-OneVision's ``image_newline``). :class:`TrainableParts` says what trains in each -- the
vision tower frozen, full or LoRA; the projector frozen or full; the language model LoRA, frozen
or full -- and :func:`add_lora` / :func:`set_trainable_parts` apply it: LoRA adapters go on the
attention and MLP projections of the parts that ask for them (:func:`lora_target_modules`,
:func:`vision_lora_target_modules`); parts trained in full beside a LoRA are peft
``modules_to_save``. :func:`non_language_modules` names what quantization leaves unquantized.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

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



def check_quantized_parts(parts: TrainableParts) -> None:
    """A quantized language model trains only through a LoRA, never in full (its weights are 4/8-bit)."""
    if parts.language_model == "full":
        raise ValueError("language_model='full' on a quantized model (load_in_4bit / load_in_8bit / quantization): "
                         "quantized weights cannot be trained in full; use language_model='lora' or 'frozen', or "
                         "load the model unquantized")
    if not parts.uses_lora:
        raise ValueError(f"a quantized model trains only through a LoRA (use_peft), but no part is 'lora' ({parts}): "
                         "load it unquantized to train parts in full without an adapter")


def base_model(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
