"""What trains, per part (vision tower, projector, language model), and at which learning rate.

Each mode runs real training steps on tiny models of three families: gradients reach exactly the
parts that train (LoRA weights only, where a part is under LoRA), frozen parts stay bit for bit,
every trained parameter sits in an optimizer group carrying its part's learning rate, and the first
AdamW step moves each part by that rate (AdamW's first update is ``lr * g / (|g| + eps)``).
"""

from __future__ import annotations

import datasets
import pytest
import torch
from peft import LoraConfig

from ssvqa.modeling import load_ranker

from ssvqa.model_parts import PART_MODES, TrainableParts, parameter_parts
from ssvqa.testing import save_tiny_model
from ssvqa.trainer import RankConfig, RankTrainer

LR = 1e-3  # the global learning_rate
FAMILIES = ("qwen2_5_vl", "qwen3_vl", "llava_onevision")

# mode name -> (RankConfig fields, LoRA?, expected {part: mode}, {part: learning rate})
MODES = {
    "w2s": (dict(vision_tower="full", projector="full", language_model="frozen", vision_tower_learning_rate=1e-4),
            False, {"vision_tower": "full", "projector": "full", "language_model": "frozen"},
            {"vision_tower": 1e-4, "projector": LR}),
    "llm-lora": (dict(language_model="lora", language_model_learning_rate=2e-3), True,
                 {"vision_tower": "frozen", "projector": "frozen", "language_model": "lora"}, {"language_model": 2e-3}),
    "vision-lora+llm-lora": (dict(vision_tower="lora", vision_tower_learning_rate=3e-4), True,
                             {"vision_tower": "lora", "projector": "frozen", "language_model": "lora"},
                             {"vision_tower": 3e-4, "language_model": LR}),
    "all-full": (dict(vision_tower_learning_rate=1e-4, projector_learning_rate=5e-4), False,
                 {"vision_tower": "full", "projector": "full", "language_model": "full"},
                 {"vision_tower": 1e-4, "projector": 5e-4, "language_model": LR}),
    # the older spelling: LoRA + model_init_kwargs {train_vision_projector: true}; the projector
    # then trains in full as peft modules_to_save, at its own rate
    "llm-lora+projector (train_vision_projector)": (dict(projector_learning_rate=4e-4), True,
                                                    {"vision_tower": "frozen", "projector": "full", "language_model": "lora"},
                                                    {"projector": 4e-4, "language_model": LR}),
    "vision-full+llm-lora": (dict(vision_tower="full", projector="full", vision_tower_learning_rate=1e-4), True,
                             {"vision_tower": "full", "projector": "full", "language_model": "lora"},
                             {"vision_tower": 1e-4, "projector": LR, "language_model": LR}),
}


@pytest.fixture(scope="module")
def batch(pair_dataset_dir):
    loaded = datasets.load_dataset(str(pair_dataset_dir))
    pairs = datasets.concatenate_datasets([loaded[name] for name in sorted(loaded)])
    return pairs.select(range(2))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {family: save_tiny_model(root / family, family) for family in FAMILIES}


def _trainer(path, out, fields, lora, train=None, **overrides):
    init = {"train_vision_projector": True} if "train_vision_projector" in overrides.pop("name", "") else None
    settings = dict(
        output_dir=str(out), per_device_train_batch_size=2, learning_rate=LR, max_steps=1, save_strategy="no",
        use_cpu=True, seed=0, weight_decay=0.0, lr_scheduler_type="linear", model_init_kwargs=init, **fields,
    )
    args = RankConfig(**{**settings, **overrides})
    return RankTrainer(model=str(path), args=args, train_dataset=train,
                       peft_config=LoraConfig(r=4, lora_alpha=8) if lora else None)


# Weights the forward never reads, so they get no gradient even when their part trains:
# LLaVA-OneVision takes the SigLIP encoder's hidden states before its post_layernorm.
UNUSED = (".vision_tower.post_layernorm.", ".vision_tower.modules_to_save.default.post_layernorm.")


def _is_lora(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_trains_exactly_its_parts_at_their_learning_rates(batch, models, tmp_path, family, mode):
    fields, lora, expected, rates = MODES[mode]
    trainer = _trainer(models[family], tmp_path / "out", fields, lora, train=batch, name=mode)
    model = trainer.model
    owner = parameter_parts(model)
    named = dict(model.named_parameters())
    part_of = {name: owner[id(p)] for name, p in named.items()}
    assert set(part_of.values()) == set(PART_MODES)  # every family has the three parts

    # Which parameters train: all of a "full" part (peft: its modules_to_save copy), only the
    # LoRA weights of a "lora" part, nothing of a frozen one.
    for name, param in named.items():
        how = expected[part_of[name]]
        if how == "frozen":
            wanted = False
        elif how == "lora":
            wanted = _is_lora(name)
        else:
            wanted = not _is_lora(name) and (not lora or ".modules_to_save." in name)
        assert param.requires_grad == wanted, (name, part_of[name], how)

    # One forward/backward on a real batch: gradients reach exactly the trained parameters.
    rows = trainer.train_dataset  # as RankTrainer keeps them: video bytes, decoded by the collator
    inputs = trainer._prepare_inputs(trainer.data_collator([rows[i] for i in range(len(rows))]))
    trainer.compute_loss(model, inputs).backward()
    got = {part: 0.0 for part in PART_MODES}
    for name, param in named.items():
        assert (param.grad is not None) == (param.requires_grad and not any(u in name for u in UNUSED)), name
        if param.grad is not None:
            got[part_of[name]] += float(param.grad.abs().sum())
    assert {part for part, total in got.items() if total > 0} == {p for p, how in expected.items() if how != "frozen"}
    model.zero_grad(set_to_none=True)

    # One optimizer step (linear schedule: the first step at the full rate): groups carry the parts'
    # rates, the scheduler scales each from its own, the first AdamW step moves each trained part
    # by its rate, frozen parts do not move.
    before = {name: p.detach().clone() for name, p in named.items()}
    trainer.train()
    groups = trainer.optimizer.param_groups
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in named.values() if p.requires_grad)  # each once, all of them
    for group in groups:
        parts = {owner[id(p)] for p in group["params"]}
        assert len(parts) == 1, parts  # a group never mixes parts
        (part,) = parts
        assert group["initial_lr"] == pytest.approx(rates.get(part, LR))
    assert trainer.lr_scheduler.base_lrs == [group["initial_lr"] for group in groups]  # each scaled from its own
    moved = {part: 0.0 for part in PART_MODES}
    for name, param in named.items():
        step = float((param.detach() - before[name]).abs().max()) if param.numel() else 0.0
        moved[part_of[name]] = max(moved[part_of[name]], step)
    for part, how in expected.items():
        if how == "frozen":
            assert moved[part] == 0.0, part
        else:
            assert moved[part] == pytest.approx(rates.get(part, LR), rel=1e-3), (part, moved)


def test_w2s_and_vision_full_with_lora_resume_to_the_same_weights(pair_dataset_dir, models, tmp_path):
    """Full weights with a frozen language model, and an adapter holding a whole vision tower
    (modules_to_save): 2 steps in one go equal 1 step, a checkpoint and a resumed run."""
    loaded = datasets.load_dataset(str(pair_dataset_dir))
    pairs = datasets.concatenate_datasets([loaded[name] for name in sorted(loaded)]).select(range(4))
    torch.set_num_threads(1)
    for mode in ("w2s", "vision-full+llm-lora"):
        fields, lora, _, _ = MODES[mode]

        def run(name, checkpoint=None):
            trainer = _trainer(models["qwen2_5_vl"], tmp_path / mode / name, fields, lora, train=pairs, name=mode,
                               save_strategy="steps", save_steps=1)
            trainer.args.max_steps = 2
            trainer.train(resume_from_checkpoint=checkpoint)
            return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}

        whole = run("whole")
        resumed = run("resumed", str(tmp_path / mode / "whole" / "checkpoint-1"))
        assert all(torch.equal(whole[n], resumed[n]) for n in whole), mode


def test_contradictions_and_quantized_full_training_are_refused(models, tmp_path):
    path = models["qwen2_5_vl"]
    with pytest.raises(ValueError, match="language_model='full' on a quantized model"):
        load_ranker(path, quantization="4bit", language_model="full")
    with pytest.raises(ValueError, match="trains only through a LoRA"):
        load_ranker(path, quantization="4bit", vision_tower="full", projector="full", language_model="frozen")
    with pytest.raises(ValueError, match="vision_tower=lora needs a LoRA config: set use_peft"):
        _trainer(path, tmp_path, dict(vision_tower="lora", language_model="frozen"), lora=False)
    with pytest.raises(ValueError, match="neither vision_tower .* nor language_model .* is 'lora'"):
        _trainer(path, tmp_path, dict(vision_tower="full", language_model="frozen"), lora=True)
    with pytest.raises(ValueError, match="train_vision_projector=True contradicts projector='frozen'"):
        _trainer(path, tmp_path, dict(projector="frozen"), lora=True, name="train_vision_projector")
    with pytest.raises(ValueError, match="language_model='full' with vision_tower='lora'"):
        TrainableParts(vision_tower="lora", language_model="full")
    with pytest.raises(ValueError, match="nothing would train"):
        _trainer(path, tmp_path, dict(vision_tower="frozen", projector="frozen", language_model="frozen"), lora=False)
    with pytest.raises(ValueError, match="vision_tower_learning_rate=0.0001 has no effect with vision_tower='frozen'"):
        RankConfig(output_dir=str(tmp_path), vision_tower="frozen", vision_tower_learning_rate=1e-4)
    with pytest.raises(ValueError, match="projector must be one of frozen, full"):
        RankConfig(output_dir=str(tmp_path), projector="lora")
    # a rate for a part that trains nothing by default (LoRA on the language model only) fails at the optimizer
    trainer = _trainer(path, tmp_path, dict(vision_tower_learning_rate=1e-4), lora=True)
    with pytest.raises(ValueError, match="vision_tower_learning_rate set, but no parameter of vision_tower trains"):
        trainer.create_optimizer()


W2S_RECIPES = {"qwen2_5_vl": "recipes/qwen2_5_vl_7b/w2s/config.yaml", "llava_onevision": "recipes/llava_onevision_7b/w2s/config.yaml"}


def _recipe_trainer(family, models, tmp_path, *overrides):
    """A W2S recipe parsed as recipes/round.py parses it, its model swapped for a tiny one of the
    same family (float32 on the CPU), loaded the way a round loads it."""
    from pathlib import Path

    from trl import ModelConfig, TrlParser

    from ssvqa.demo import DemoArguments
    from ssvqa.model_config import model_init_kwargs, peft_config
    from ssvqa.rounds import RoundArguments

    recipe = Path(__file__).resolve().parents[1] / W2S_RECIPES[family]
    parser = TrlParser((RoundArguments, DemoArguments, RankConfig, ModelConfig))  # as recipes/round.py
    _, _, training_args, model_args = parser.parse_args_and_config(args=[
        "--config", str(recipe), "--output_dir", str(tmp_path), "--use_cpu", "true", "--bf16", "false",
        "--model_name_or_path", str(models[family]), "--dtype", "float32", *overrides])
    training_args.model_init_kwargs = model_init_kwargs(model_args, use_cpu=True)
    return RankTrainer(model=model_args.model_name_or_path, args=training_args, peft_config=peft_config(model_args))


@pytest.mark.parametrize("family", list(W2S_RECIPES))
def test_w2s_recipes_load_with_their_parts_and_rates(models, tmp_path, family):
    trainer = _recipe_trainer(family, models, tmp_path)
    owner = parameter_parts(trainer.model)
    trained = {owner[id(p)] for p in trainer.model.parameters() if p.requires_grad}
    assert trained == {"vision_tower", "projector"}
    rates = {owner[id(p)]: group["lr"] for group in trainer.create_optimizer().param_groups for p in group["params"]}
    assert rates == {"vision_tower": 2e-6, "projector": 1e-5}
    assert "language model frozen" in trainer.model_card()

    with pytest.raises(ValueError, match="vision_tower=lora needs a LoRA config: set use_peft"):
        _recipe_trainer(family, models, tmp_path, "--vision_tower", "lora")
    with pytest.raises(ValueError, match="neither vision_tower .* nor language_model .* is 'lora'"):
        _recipe_trainer(family, models, tmp_path, "--use_peft", "true")


@pytest.mark.parametrize("family", FAMILIES)
def test_memory_estimate_of_the_w2s_parts(models, family):
    """The estimator's trained-parameter count is what a W2S load trains; its rows follow the
    documented formulas (ssvqa/memory.py)."""
    from ssvqa.memory import estimate_memory, visual_tokens

    model, _ = load_ranker(models[family], vision_tower="full", projector="full", language_model="frozen")
    w2s = TrainableParts(vision_tower="full", projector="full", language_model="frozen")
    settings = dict(batch_size=2, num_frames=8, max_pixels=112 * 112, quantized=False)
    zero2 = estimate_memory(model.config, **settings, sharding="zero2", world_size=4, parts=w2s)
    trained = zero2.counts["trained"]
    assert trained == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert zero2.counts["total"] == sum(p.numel() for p in model.parameters())
    assert zero2.rows["weights (bf16)"] == 2 * zero2.counts["total"]  # ZeRO-2 keeps every weight on every GPU
    assert zero2.rows["fp32 master weights + AdamW (ZeRO)"] == 12 * trained / 4
    assert zero2.rows["gradients (ZeRO-partitioned)"] == 2 * trained / 4
    assert "LoRA weights (fp32)" not in zero2.rows
    vision = model.config.vision_config
    patches = 2 * 2 * visual_tokens(model.config, 8, 112 * 112)[1]
    depth = getattr(vision, "depth", None) or vision.num_hidden_layers
    assert zero2.rows["vision, block inputs"] == depth * patches * vision.hidden_size * 2

    projector_only = estimate_memory(model.config, **settings, parts=TrainableParts(projector="full", language_model="frozen"))
    assert projector_only.counts["trained"] == zero2.counts["projector"]
    assert "vision tower working set" in projector_only.rows  # a frozen tower keeps no activations
    with pytest.raises(ValueError, match="models LoRA on the language model"):
        estimate_memory(model.config, **{**settings, "quantized": True}, parts=w2s)
    with pytest.raises(ValueError, match="zero2"):
        estimate_memory(model.config, **settings, sharding="zero2")
