"""Per-GPU training memory of a pair ranker, estimated from its config (no weights, no GPU).

:func:`estimate_memory` builds the model on the ``meta`` device (parameter counts are exact: they
come from the real module tree) and adds up, per GPU:

* **weights**: the language model's linear layers in 4-bit NF4 with double quantization
  (0.5 byte per weight + one 8-bit absmax per 64 weights + one fp32 scale per 256 absmax blocks
  = 0.516 B) when quantized, every other weight (vision tower, projector, embeddings,
  ``lm_head``, norms) in ``dtype`` (2 B for bf16; :mod:`ssvqa.modeling` no longer upcasts them);
* **LoRA**: ``r * (in + out)`` per targeted projection (the ``"auto"`` target: q/k/v/o and
  gate/up/down of every decoder layer), in fp32 (4 B), its gradients (4 B) and the AdamW moments
  (8 B);
* **activations** of one micro-batch of ``batch_size`` pairs, in the compute dtype (2 B), with
  ``T = batch_size * (2 * visual_tokens_per_video + PROMPT_TOKENS)`` tokens:

  - with gradient checkpointing, each decoder layer keeps only its input: ``L * T * h``; the
    layer being recomputed in backward holds its saved tensors, ``T * (13 h + 2 kv + 5 i)``
    (norm outputs, q/k/v, attention and o_proj outputs, residuals, gate/up/act/product/down, and
    the LoRA dropout copies of the layer inputs), plus its backward buffers ``T * (2 h + 2 i)``;
    without checkpointing every layer keeps ``T * (13 h + 2 kv + 5 i)``;
  - the merged input embeddings (text + visual features): ``2 * T * h``;
  - the vision tower is frozen and its input needs no gradient, so autograd keeps nothing inside
    it: only one block's working set is alive, ``P * (4 vh + 2 vi)`` for ``P`` patches;
  - a 4-bit layer dequantizes its weight to the compute dtype while it runs: the largest such
    weight is added once;
  - attention is SDPA/flash (no ``T^2`` score matrix); the logits are those of the last position
    only (``logits_to_keep=1`` in :class:`ssvqa.trainer.RankTrainer`);
* **runtime**: CUDA context and allocator slack, an assumed 1 GiB.

Sharding: ``"ddp"`` keeps a full copy per GPU; ``"zero3"`` (also FSDP full-shard) divides the
weights, LoRA, gradients and optimizer states by ``world_size`` and adds the largest decoder layer,
gathered while it runs. Activations are per GPU either way.

**W2S-VQA's parts** (``parts``: the vision tower and/or projector trained in full, the language
model frozen, no quantization, no LoRA; :class:`ssvqa.model_parts.TrainableParts`) replace the LoRA
rows by rows for the ``N`` trained parameters (:func:`ssvqa.model_parts.parameter_parts` counts them):

* ``"zero2"``/``"zero3"`` (DeepSpeed, bf16): fp32 master weights and the two AdamW moments,
  ``12 N`` bytes, and the gradients in the compute dtype, all divided by ``world_size``; plus
  DeepSpeed's reduce and all-gather buckets (its default ``5e8`` elements each, in the compute
  dtype, at most ``N``). ``"zero2"`` keeps every weight on every GPU;
* ``"ddp"``: gradients and the two AdamW moments in the weights' dtype (torch keeps the moments in
  the parameter's dtype), ``3 N * dtype_bytes``;
* a trained vision tower keeps its activations for backward: with checkpointing, each block's
  input ``depth * P * vh`` plus the block being recomputed, ``P * (10 vh + 5 vi)`` (norm outputs,
  q/k/v, attention and projection outputs, residuals; gate/up/act/product/down), and its backward
  buffers ``P * (2 vh + 2 vi)``; without checkpointing every block keeps ``P * (10 vh + 5 vi)``.
  The frozen language model still carries gradients back to the visual tokens, so its
  activations are counted as with LoRA (the LoRA dropout copies included: a slight overestimate).

The estimate is a model of the allocations, not a measurement: ``bench/bench_qlora_gpu.py``
measures the peak on a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

GIB = 1024**3
# Text tokens of a pair around the two videos (system/user/assistant markup and the question).
PROMPT_TOKENS = 128
RUNTIME_BYTES = 1 * GIB
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ZERO_BUCKET = 5e8  # DeepSpeed's default reduce_bucket_size and allgather_bucket_size (elements)


@dataclass
class MemoryEstimate:
    """Bytes per GPU by component (see the module doc for each formula) and the counts behind them."""

    rows: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.rows.values())

    def table(self, title: str = "") -> str:
        lines = [title] if title else []
        lines += [f"  {name:<34}{value / GIB:7.2f} GiB" for name, value in self.rows.items()]
        lines.append(f"  {'total per GPU':<34}{self.total / GIB:7.2f} GiB")
        return "\n".join(lines)


def parameter_counts(config, lora_r: int = 16) -> dict[str, int]:
    """Exact parameter counts from the module tree on the meta device.

    ``total``: every parameter; ``quantizable``: the weights of the language model's linear
    layers (what 4-bit replaces); ``lora``: LoRA parameters of rank ``lora_r`` on the ``"auto"``
    target; ``largest_linear``: the biggest quantizable weight; ``largest_layer``: the biggest
    decoder layer; ``vision_tower``, ``projector``, ``language_model``: the parameters of each
    trainable part (:func:`ssvqa.model_parts.parameter_parts`).
    """
    from transformers import AutoModelForImageTextToText

    from ssvqa.model_parts import PART_MODES, parameter_parts

    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    counts = {"total": sum(p.numel() for p in model.parameters()), "quantizable": 0, "lora": 0,
              "largest_linear": 0, "largest_layer": 0, **dict.fromkeys(PART_MODES, 0)}
    owner = parameter_parts(model)
    for param in model.parameters():
        counts[owner[id(param)]] += param.numel()
    for name, module in model.named_modules():
        inside = ".language_model." in f".{name}."
        if inside and isinstance(module, torch.nn.Linear):
            counts["quantizable"] += module.weight.numel()
            counts["largest_linear"] = max(counts["largest_linear"], module.weight.numel())
            if name.rsplit(".", 1)[-1] in LORA_TARGETS:
                counts["lora"] += lora_r * (module.in_features + module.out_features)
        if inside and name.rsplit(".", 2)[-2:-1] == ["layers"]:
            counts["largest_layer"] = max(counts["largest_layer"], sum(p.numel() for p in module.parameters()))
    return counts


def visual_tokens(config, num_frames: int, max_pixels: int) -> tuple[int, int]:
    """``(tokens, patches)`` of one video of ``num_frames`` square frames of ``max_pixels``.

    Qwen2/2.5/3-VL: the side is rounded down to a multiple of ``patch * merge``; ``temporal_patch``
    frames make one patch; ``merge**2`` patches make one token. LLaVA-OneVision: each frame is
    resized to the SigLIP input (``image_size``), its patch grid is pooled 2x2 (ceil), plus one
    newline token per video.
    """
    vision = config.vision_config
    if config.model_type == "llava_onevision":
        grid = vision.image_size // vision.patch_size
        pooled = math.ceil(grid / 2)
        return num_frames * pooled * pooled + 1, num_frames * grid * grid
    patch, merge = vision.patch_size, vision.spatial_merge_size
    side = max(patch * merge, int(math.sqrt(max_pixels)) // (patch * merge) * (patch * merge))
    patches = math.ceil(num_frames / vision.temporal_patch_size) * (side // patch) ** 2
    return patches // merge**2, patches


def estimate_memory(
    config,
    *,
    batch_size: int,
    num_frames: int,
    max_pixels: int,
    lora_r: int = 16,
    quantized: bool = True,
    dtype_bytes: int = 2,
    gradient_checkpointing: bool = True,
    sharding: str = "ddp",
    world_size: int = 1,
    parts=None,
) -> MemoryEstimate:
    """Per-GPU memory of training ``config`` on pairs (formulas in the module doc): LoRA/QLoRA on
    the language model, or with ``parts`` (a :class:`ssvqa.model_parts.TrainableParts`) the vision
    tower and/or projector in full with the language model frozen."""
    if sharding not in ("ddp", "zero2", "zero3"):
        raise ValueError(f"sharding must be 'ddp', 'zero2' or 'zero3', got {sharding!r}")
    from ssvqa.model_parts import TrainableParts

    full_parts = None
    if parts is not None and parts != TrainableParts():  # the default: LoRA on the language model alone
        if parts.uses_lora or parts.language_model != "frozen" or quantized:
            raise ValueError(f"estimate_memory models LoRA on the language model, or the vision side in full with the "
                             f"language model frozen and unquantized; not {parts}")
        full_parts = [part for part, mode in parts.modes().items() if mode == "full"]
    if sharding == "zero2" and full_parts is None:
        raise ValueError("sharding='zero2' is modelled for parts trained in full (parts=...)")
    counts = parameter_counts(config, lora_r)
    text, vision = config.get_text_config(), config.vision_config
    h, i, layers = text.hidden_size, text.intermediate_size, text.num_hidden_layers
    head_dim = getattr(text, "head_dim", None) or h // text.num_attention_heads
    kv = text.num_key_value_heads * head_dim
    tokens, patches = visual_tokens(config, num_frames, max_pixels)
    T = batch_size * (2 * tokens + PROMPT_TOKENS)
    P = batch_size * 2 * patches
    shard = world_size if sharding == "zero3" else 1

    rows = {}
    if quantized:
        rows["weights, language model (4-bit)"] = counts["quantizable"] * NF4_BYTES / shard
        rows["weights, rest (vision, embed.)"] = (counts["total"] - counts["quantizable"]) * dtype_bytes / shard
    else:
        rows["weights (bf16)" if dtype_bytes == 2 else "weights"] = counts["total"] * dtype_bytes / shard
    if sharding == "zero3":
        rows["gathered layer (ZeRO-3)"] = counts["largest_layer"] * dtype_bytes
    if full_parts is None:
        rows["LoRA weights (fp32)"] = counts["lora"] * 4 / shard
        rows["LoRA gradients (fp32)"] = counts["lora"] * 4 / shard
        rows["AdamW states (fp32)"] = counts["lora"] * 8 / shard
    else:
        trained = counts["trained"] = sum(counts[part] for part in full_parts)
        if sharding == "ddp":
            rows["gradients (trained parts)"] = trained * dtype_bytes
            rows["AdamW states (trained parts)"] = 2 * trained * dtype_bytes
        else:
            rows["fp32 master weights + AdamW (ZeRO)"] = trained * 12 / world_size
            rows["gradients (ZeRO-partitioned)"] = trained * dtype_bytes / world_size
            rows["ZeRO reduce + all-gather buckets"] = 2 * min(trained, ZERO_BUCKET) * dtype_bytes
    per_layer = T * (13 * h + 2 * kv + 5 * i) * dtype_bytes
    if gradient_checkpointing:
        rows["activations, layer inputs"] = layers * T * h * dtype_bytes
        rows["activations, recomputed layer"] = per_layer + T * (2 * h + 2 * i) * dtype_bytes
    else:
        rows["activations, all layers"] = layers * per_layer
    rows["activations, embeddings"] = 2 * T * h * dtype_bytes
    vh, vi = vision.hidden_size, vision.intermediate_size
    if full_parts is not None and "vision_tower" in full_parts:
        depth = getattr(vision, "depth", None) or vision.num_hidden_layers
        per_block = P * (10 * vh + 5 * vi) * dtype_bytes
        if gradient_checkpointing:
            rows["vision, block inputs"] = depth * P * vh * dtype_bytes
            rows["vision, recomputed block"] = per_block + P * (2 * vh + 2 * vi) * dtype_bytes
        else:
            rows["vision, all blocks"] = depth * per_block
    else:
        rows["vision tower working set"] = P * (4 * vh + 2 * vi) * dtype_bytes
    if quantized:
        rows["4-bit dequantized weight"] = counts["largest_linear"] * dtype_bytes
    rows["runtime (CUDA context, slack)"] = RUNTIME_BYTES
    counts.update(tokens_per_video=tokens, tokens_per_batch=T, patches_per_batch=P)
    return MemoryEstimate(rows=rows, counts=counts)
