"""A recipe's trl.ModelConfig reaches bitsandbytes and peft, or is refused naming the field."""

from __future__ import annotations

import pytest
from trl import ModelConfig, TrlParser

from ssvqa.model_config import ModelConfigError, check_model_config, load_trained_model
from ssvqa.rounds import RoundArguments
from ssvqa.rounds.run import round_trainer
from ssvqa.testing import save_tiny_model
from ssvqa.trainer import RankConfig


def parse(tmp_path, yaml: str):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml + f"\noutput_dir: {tmp_path / 'out'}\nuse_cpu: true\npair_datasets: [none]\nmax_steps: 1\n")
    return TrlParser((RoundArguments, RankConfig, ModelConfig)).parse_args_and_config(["--config", str(recipe)])


def test_fp4_and_dora_in_a_recipe_reach_bitsandbytes_and_peft(tmp_path):
    import bitsandbytes as bnb

    base = save_tiny_model(tmp_path / "base")
    script_args, training_args, model_args = parse(tmp_path, f"""
model_name_or_path: {base}
load_in_4bit: true
bnb_4bit_quant_type: fp4
use_bnb_nested_quant: true
use_peft: true
use_dora: true
use_rslora: true
lora_r: 4
lora_alpha: 8
""")
    trainer = round_trainer(script_args, training_args, model_args, str(base), tmp_path, tmp_path / "round-0", None, None)
    model = trainer.model
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(m.weight.quant_type == "fp4" and m.weight.quant_state.nested for m in quantized)
    names = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert all(".language_model." in n for n in names), names  # vision tower, projector, lm_head stay unquantized
    lora = model.peft_config["default"]
    assert lora.use_dora and lora.use_rslora and lora.r == 4
    assert any(n.endswith("lora_magnitude_vector.default.weight") for n, _ in model.named_parameters())  # DoRA's magnitudes

    # The same loader continues training from the saved adapter and relabels with it.
    trainer.save_model(str(tmp_path / "round-0" / "model"))
    again, _ = load_trained_model(tmp_path / "round-0" / "model", str(base), model_args, trainable=True, use_cpu=True)
    assert {m.weight.quant_type for m in again.modules() if isinstance(m, bnb.nn.Linear4bit)} == {"fp4"}
    assert any(p.requires_grad for n, p in again.named_parameters() if "lora_magnitude_vector" in n)


@pytest.mark.parametrize("yaml, field", [
    ("use_peft: true\nlora_task_type: SEQ_CLS", "lora_task_type"),
    ("use_bnb_nested_quant: true", "use_bnb_nested_quant"),
    ("bnb_4bit_quant_type: fp4", "bnb_4bit_quant_type"),
    ("use_dora: true", "use_dora"),
    ("load_in_4bit: true", "load_in_4bit"),
])
def test_a_field_ssvqa_cannot_honour_is_refused_with_its_name(tmp_path, yaml, field):
    _, _, model_args = parse(tmp_path, "model_name_or_path: some/model\n" + yaml)
    with pytest.raises(ModelConfigError, match=field):
        check_model_config(model_args)
