"""load_ranker: plain, LoRA and QLoRA (bitsandbytes 4-bit on CPU), adapters, and compare()."""

from __future__ import annotations

import pytest
import torch

from ssvqa.labels import LEVELS
from ssvqa.model_parts import lora_target_modules, non_language_modules, vision_projector_modules
from ssvqa.modeling import batch_to_model, compare, load_ranker
from ssvqa.prompts import LevelTokenError, answer_logits, encode_pairs, level_token_ids
from ssvqa.testing import FAMILIES, build_tiny_model, build_tokenizer, save_tiny_model


def _clips(count: int, seed: int, shape=(84, 112)):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (8, 3, *shape), dtype=torch.uint8, generator=generator) for _ in range(count)]


@pytest.fixture(scope="module")
def pairs():
    """Three pairs of random clips of two shapes (so batches need padding)."""
    return _clips(2, 0) + _clips(1, 1, (112, 84)), _clips(1, 2, (112, 84)) + _clips(2, 3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny models of every family saved as from_pretrained folders (built lazily, once)."""
    root = tmp_path_factory.mktemp("rankers")
    cache = {}

    def get(family: str = "qwen2_5_vl"):
        if family not in cache:
            cache[family] = save_tiny_model(root / family, family)
        return cache[family]

    return get


def test_plain_load_matches_the_built_model(saved, pairs):
    model, processor = load_ranker(saved())
    reference, _ = build_tiny_model("qwen2_5_vl")
    assert not hasattr(model, "peft_config")
    batch = encode_pairs(processor, *pairs)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, reference(**batch).logits, rtol=0, atol=0)


def test_level_words_are_checked_before_the_weights(saved, tmp_path):
    import shutil

    folder = tmp_path / "no-superior"
    shutil.copytree(saved(), folder)
    build_tokenizer(words=("inferior", "worse", "similar", "better")).save_pretrained(folder)
    (folder / "model.safetensors").unlink()  # the error must come before any weight is read
    with pytest.raises(LevelTokenError, match="'superior'"):
        load_ranker(folder)


def test_argument_errors(saved):
    with pytest.raises(ValueError, match="either `lora`"):
        load_ranker(saved(), lora=True, adapter="somewhere")
    with pytest.raises(ValueError, match="needs lora=True"):
        load_ranker(saved(), train_vision_projector=True)
    with pytest.raises(ValueError, match="quantization must be"):
        load_ranker(saved(), quantization="3bit")


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_targets_only_the_language_model(saved, family):
    model, _ = load_ranker(saved(family), lora=True, lora_r=4, train_vision_projector=True)
    lora_modules = [name for name, module in model.named_modules() if hasattr(module, "lora_A")]
    assert lora_modules, "no LoRA layer was added"
    assert all(".language_model." in name for name in lora_modules)
    suffixes = {name.rsplit(".", 1)[-1] for name in lora_modules}
    assert suffixes == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    projector = vision_projector_modules(model)
    assert all("lora_" in name or "modules_to_save" in name for name in trainable)
    assert any("modules_to_save" in name for name in trainable)
    for module in projector:  # every projector (Qwen3-VL: merger and each deepstack merger) trains
        assert any(f"{module}.modules_to_save" in name for name in trainable), module
    assert not any("vision_tower" in name or "visual.blocks" in name for name in trainable)


def test_lora_target_regex_skips_vision_layers_with_the_same_names():
    model, _ = build_tiny_model("llava_onevision")
    pattern = lora_target_modules(model)
    import re

    names = [name for name, _ in model.named_modules()]
    assert any(".vision_tower." in name and name.endswith(".q_proj") for name in names)  # SigLIP has q_proj too
    hits = [name for name in names if re.fullmatch(pattern, name)]
    assert hits and all(".language_model." in name for name in hits)
    assert len(hits) == 7 * model.config.text_config.num_hidden_layers


def test_other_lora_targets_and_configs(saved):
    from peft import LoraConfig

    model, _ = load_ranker(saved(), lora=True, lora_r=4, lora_target="all-linear")
    lora_modules = [name for name, module in model.named_modules() if hasattr(module, "lora_A")]
    assert any(".visual." in name for name in lora_modules) and any(".language_model." in name for name in lora_modules)

    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model, _ = load_ranker(saved(), lora=config, gradient_checkpointing=True)
    lora_modules = [name for name, module in model.named_modules() if hasattr(module, "lora_A")]
    assert {name.rsplit(".", 1)[-1] for name in lora_modules} == {"q_proj", "v_proj"}
    assert model.get_base_model().is_activation_checkpointing


@pytest.mark.parametrize(
    "family, expected",
    [
        ("qwen2_5_vl", {"model.visual", "lm_head"}),
        ("qwen3_vl", {"model.visual", "lm_head"}),
        ("llava_onevision", {"model.vision_tower", "model.multi_modal_projector", "lm_head"}),
    ],
)
def test_quantization_skips_everything_but_the_language_model(family, expected):
    model, _ = build_tiny_model(family)
    assert set(non_language_modules(model.config)) == expected


def _train_step(model, processor, pairs, optimizer, targets):
    model.train()
    batch = batch_to_model(encode_pairs(processor, *pairs), model)
    level_logits = answer_logits(model(**batch).logits, batch["attention_mask"], level_token_ids(processor.tokenizer))
    loss = torch.nn.functional.cross_entropy(level_logits, targets)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    optimizer.zero_grad()
    return loss.item(), grads


def test_qlora_on_cpu_train_eval_train_save_and_reload(saved, pairs, tmp_path):
    import bitsandbytes as bnb

    torch.manual_seed(0)  # LoRA A initialisation

    model, processor = load_ranker(saved(), quantization="4bit", lora=True, lora_r=8)
    quantized = [name for name, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(".language_model." in name for name in quantized)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for name, m in model.named_modules() if "visual" in name or "lm_head" in name)

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    targets = torch.tensor([LEVELS.index("better"), LEVELS.index("worse"), LEVELS.index("similar")])

    loss_1, grads = _train_step(model, processor, pairs, optimizer, targets)
    # Only LoRA weights get gradients; B starts at zero, so at step one only B's are non-zero.
    assert set(grads) <= trainable
    assert all(grads[name].abs().sum() > 0 for name in grads if "lora_B" in name)
    assert any("lora_B" in name for name in grads)

    before = compare(model, processor, *pairs)  # eval pass in between (bitsandbytes CPU trap)
    assert model.training, "compare must restore the training mode"
    assert before.shape == (3, 5)
    torch.testing.assert_close(before.sum(-1), torch.ones(3))

    loss_2, grads = _train_step(model, processor, pairs, optimizer, targets)
    assert all(grads[name].abs().sum() > 0 for name in trainable), "every LoRA weight should learn by step two"
    assert loss_2 < loss_1
    frozen = [p for name, p in model.named_parameters() if name not in trainable]
    assert frozen and not any(p.requires_grad or p.grad is not None for p in frozen)

    expected = compare(model, processor, *pairs)
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    reloaded, _ = load_ranker(saved(), quantization="4bit", adapter=tmp_path / "adapter")
    assert not any(p.requires_grad for p in reloaded.parameters())
    torch.testing.assert_close(compare(reloaded, processor, *pairs), expected, rtol=0, atol=0)

    trainable_again, _ = load_ranker(saved(), quantization="4bit", adapter=tmp_path / "adapter", adapter_trainable=True)
    assert {name for name, p in trainable_again.named_parameters() if p.requires_grad} == trainable


def test_lora_with_projector_adapter_round_trip(saved, pairs, tmp_path):
    model, processor = load_ranker(saved("qwen3_vl"), lora=True, lora_r=4, train_vision_projector=True)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    _train_step(model, processor, pairs, optimizer, torch.tensor([0, 2, 4]))
    expected = compare(model, processor, *pairs)
    model.save_pretrained(tmp_path / "adapter")
    reloaded, _ = load_ranker(saved("qwen3_vl"), adapter=tmp_path / "adapter")
    base, _ = load_ranker(saved("qwen3_vl"))
    got = compare(reloaded, processor, *pairs)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(compare(base, processor, *pairs), expected), "the adapter should change the answers"


def test_compare_is_batch_size_invariant(saved, pairs):
    model, processor = load_ranker(saved("llava_onevision"))
    one = compare(model, processor, *pairs, batch_size=1)
    all_at_once = compare(model, processor, *pairs, batch_size=3)
    torch.testing.assert_close(one, all_at_once, atol=1e-6, rtol=1e-5)
    sharp = compare(model, processor, *pairs, temperature=0.1)
    assert (sharp.max(-1).values >= one.max(-1).values).all()
    assert compare(model, processor, [], []).shape == (0, 5)


def test_8bit_loads_and_compares_on_cpu(saved, pairs):
    import bitsandbytes as bnb

    model, processor = load_ranker(saved(), quantization="8bit")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    probs = compare(model, processor, *pairs)
    assert probs.shape == (3, 5) and torch.isfinite(probs).all()


def test_bitsandbytes_kernels_notice_is_silenced_and_nothing_else():
    import logging
    import subprocess
    import sys

    # bitsandbytes logs it when imported on a CPU with AVX512-BF16 (not every machine): in a fresh
    # process, ssvqa.modeling first, as every ssvqa program does.
    done = subprocess.run([sys.executable, "-c", "import ssvqa.modeling, bitsandbytes"], capture_output=True, text=True, check=True)
    assert "gemm_4bit_forward" not in done.stderr
    notice = logging.getLogger("bitsandbytes.backends.cpu.ops")
    records = [
        logging.LogRecord(notice.name, logging.WARNING, "ops.py", 1, message, args, None)
        for message, args in [
            ("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure ...", (ModuleNotFoundError("No module named 'kernels'"),)),
            ("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure ...", (RuntimeError("kernel version mismatch"),)),
            ("something else", ()),
            # kernels installed (transformers >= 5.25 needs it), the Hub repository not trusted: the same fallback
            ("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure ...",
             (ValueError("Kernel repository 'kernels-community/quantization-bitsandbytes' could not verify publisher trust status. "
                         "Set trust_remote_code=True or ..."),)),
        ]
    ]
    assert [all(f.filter(r) for f in notice.filters) for r in records] == [False, True, True, False]


def test_qlora_keeps_frozen_modules_at_the_load_dtype(saved, pairs):
    """k-bit preparation must not upcast the frozen, unquantized weights (vision tower, projector,
    embeddings, lm_head, norms) to float32 (peft's prepare_model_for_kbit_training does: +~3 GiB on
    7B); with checkpointing on, a training step still reaches every LoRA weight."""
    import bitsandbytes as bnb

    torch.manual_seed(0)
    model, processor = load_ranker(saved(), quantization="4bit", lora=True, lora_r=8, dtype=torch.bfloat16,
                                   gradient_checkpointing=True)
    frozen = {name: p.dtype for name, p in model.named_parameters()
              if not p.requires_grad and not isinstance(p, bnb.nn.Params4bit)}
    for part in ("visual.", "embed_tokens", "lm_head", "norm", "merger"):
        assert any(part in name for name in frozen), part
    assert set(frozen.values()) == {torch.bfloat16}, {n: d for n, d in frozen.items() if d != torch.bfloat16}
    assert model.get_base_model().is_activation_checkpointing
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    _, grads = _train_step(model, processor, pairs, optimizer, torch.tensor([0, 2, 4]))
    assert grads and all(grads[n].abs().sum() > 0 for n in grads if "lora_B" in n)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(grads)
