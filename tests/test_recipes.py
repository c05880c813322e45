"""The recipes under ``recipes/``: every ``config*.yaml`` parses as ``recipes/round.py`` parses it,
names a model family ssvqa supports with that family's frame geometry, sets QLoRA (or, for ZeRO-3,
not; the W2S recipes: the vision side in full, the language model frozen, no adapter), and the
READMEs name only files that exist. No model is loaded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
REPO = RECIPES.parent
CONFIGS = sorted(RECIPES.glob("**/config*.yaml"))
REAL = [path for path in CONFIGS if "tiny" not in path.relative_to(RECIPES).parts]
READMES = sorted(RECIPES.glob("**/README.md"))


def ids(paths):
    return [str(path.relative_to(RECIPES)) for path in paths]


def parse(path: Path, output_dir: Path):
    """``recipes/round.py``'s parser on ``--config path``; on a machine without a GPU, ``use_cpu`` lets
    ``TrainingArguments`` accept ``bf16`` (it refuses bf16 on a CPU-only machine otherwise)."""
    from trl import ModelConfig, TrlParser

    from ssvqa.demo import DemoArguments
    from ssvqa.rounds import RoundArguments
    from ssvqa.trainer import RankConfig

    args = ["--config", str(path), "--output_dir", str(output_dir)]
    if not torch.cuda.is_available():
        args += ["--use_cpu", "true"]
    parser = TrlParser((RoundArguments, DemoArguments, RankConfig, ModelConfig))
    return parser.parse_args_and_config(args=args)


def family_of(model_id: str) -> str | None:
    """The ssvqa family whose name (punctuation ignored) appears in a Hub model id."""
    from ssvqa.testing import FAMILIES

    squashed = re.sub(r"[^a-z0-9]", "", model_id.lower())
    found = [family for family in FAMILIES if family.replace("_", "") in squashed]
    return max(found, key=len) if found else None  # "qwen2_5_vl" rather than a shorter match


def test_the_recipes_are_found():
    assert {"qwen2_5_vl_7b", "qwen3_vl_8b", "llava_onevision_7b"} <= {path.relative_to(RECIPES).parts[0] for path in REAL}
    assert any(path.name == "config_zero3.yaml" for path in REAL)
    assert any("mos" in path.relative_to(RECIPES).parts for path in REAL)


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_every_recipe_parses_with_its_values(path, tmp_path):
    script_args, demo_args, training_args, model_args = parse(path, tmp_path / "out")
    assert training_args.output_dir == str(tmp_path / "out")  # the command line overrides the YAML
    # Every YAML key reached a field with its value (TrlParser already refuses unknown keys).
    written = yaml.safe_load(path.read_text())
    for key, value in written.items():
        if key in ("output_dir", "report_to", "use_cpu"):
            continue
        holder = next(obj for obj in (script_args, demo_args, training_args, model_args) if hasattr(obj, key))
        parsed = getattr(holder, key)
        parsed = getattr(parsed, "value", parsed)  # enums (lr_scheduler_type, save_strategy)
        assert parsed == value, (key, parsed, value)
    # names of benchmarks and their roots: NAME=ROOT with a NAME ssvqa reads
    from ssvqa.benchmarks import benchmark_names

    for spec in script_args.benchmarks:
        name, sep, root = spec.partition("=")
        if sep:
            assert re.sub(r"[^a-z0-9]", "", name.lower()) in {re.sub(r"[^a-z0-9]", "", n) for n in benchmark_names()}, spec
            assert root


@pytest.mark.parametrize("path", REAL, ids=ids(REAL))
def test_real_recipes_use_a_supported_family_and_its_frame_geometry(path, tmp_path):
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    from ssvqa.testing import build_processor

    script_args, demo_args, training_args, model_args = parse(path, tmp_path / "out")
    assert not script_args.tiny_model and not demo_args.generate_data
    family = family_of(model_args.model_name_or_path)
    assert family is not None, f"{model_args.model_name_or_path}: not a family ssvqa supports"
    assert family in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES  # what load_ranker's Auto class loads
    assert model_args.model_name_or_path.split("/")[0] in path.read_text()
    processor = build_processor(family)
    sampling = training_args.video_sampling(processor)  # refuses a frame_multiple the processor cannot tile
    if getattr(processor.video_processor, "merge_size", None):  # Qwen: sides must be multiples of patch x merge
        assert sampling.max_pixels % sampling.frame_multiple**2 == 0
    else:  # LLaVA-OneVision resizes frames to a 384 square itself: the short side of 16:9 must reach it
        from ssvqa.video import fit_size

        for height, width in ((720, 1280), (1080, 1920), (480, 640), (1280, 720)):
            assert min(fit_size(height, width, sampling.max_pixels, sampling.frame_multiple)) >= 384
        assert training_args.fps is None
    assert training_args.bf16 and training_args.gradient_checkpointing
    assert training_args.save_strategy == "steps" and training_args.save_total_limit


W2S = [path for path in REAL if "w2s" in path.relative_to(RECIPES).parts]
ADAPTER = [path for path in REAL if path not in W2S]


@pytest.mark.parametrize("path", ADAPTER, ids=ids(ADAPTER))
def test_qlora_and_zero3_settings(path, tmp_path):
    _, _, training_args, model_args = parse(path, tmp_path / "out")
    assert model_args.use_peft  # a 7-8B language model is never fully fine-tuned here
    if path.name == "config_zero3.yaml":
        assert not model_args.load_in_4bit and not model_args.load_in_8bit  # ZeRO-3 cannot shard 4-bit weights
    else:
        assert model_args.load_in_4bit
    if model_args.load_in_4bit:
        assert model_args.use_peft  # QLoRA: a quantized base only trains through an adapter


def test_w2s_recipes_train_the_vision_side_at_a_lower_rate_with_the_language_model_frozen(tmp_path):
    """W2S-VQA's setting, beside the QLoRA recipes of the same models, launched with ZeRO-2."""
    from ssvqa.model_parts import TrainableParts

    assert {path.relative_to(RECIPES).parts[0] for path in W2S} == {"qwen2_5_vl_7b", "llava_onevision_7b"}
    for path in W2S:
        _, _, training_args, model_args = parse(path, tmp_path / "out")
        assert not (model_args.use_peft or model_args.load_in_4bit or model_args.load_in_8bit)
        parts = TrainableParts.from_settings(**training_args.trainable_parts(), lora=model_args.use_peft)
        assert parts == TrainableParts(vision_tower="full", projector="full", language_model="frozen")
        assert training_args.part_learning_rates() == {"vision_tower": 2e-6} and training_args.learning_rate == 1e-5
        readme = (path.parents[1] / "README.md").read_text()
        assert f"--config_file recipes/accelerate_configs/zero2.yaml \\\n    recipes/round.py --config {path.relative_to(REPO)}" in readme
    config = yaml.safe_load((RECIPES / "accelerate_configs" / "zero2.yaml").read_text())
    assert config["distributed_type"] == "DEEPSPEED" and config["deepspeed_config"]["zero_stage"] == 2


def test_mos_recipe_keeps_human_labels(tmp_path):
    path = RECIPES / "qwen2_5_vl_7b" / "mos" / "config.yaml"
    script_args, _, training_args, _ = parse(path, tmp_path / "out")
    assert script_args.relabel_origins == []
    assert "mos" in script_args.eval_origins
    assert script_args.benchmarks


def test_zero3_accelerate_config_is_stage_3():
    config = yaml.safe_load((RECIPES / "accelerate_configs" / "zero3.yaml").read_text())
    assert config["distributed_type"] == "DEEPSPEED" and config["deepspeed_config"]["zero_stage"] == 3


def test_files_named_in_the_readmes_exist():
    assert {RECIPES / "README.md", RECIPES / "qwen2_5_vl_7b" / "README.md", RECIPES / "qwen3_vl_8b" / "README.md",
            RECIPES / "llava_onevision_7b" / "README.md"} <= set(READMES)
    named_accelerate, named_configs = set(), set()
    for readme in READMES:
        text = readme.read_text()
        named_accelerate |= set(re.findall(r"recipes/accelerate_configs/[\w.-]+\.yaml", text))
        named_configs |= set(re.findall(r"--config (recipes/[\w./-]+\.yaml)", text))
    assert named_accelerate and named_configs
    for name in sorted(named_accelerate | named_configs):
        assert (REPO / name).is_file(), f"a recipe README names {name}, which does not exist"
    # every real recipe is documented with a launch line
    assert {str(path.relative_to(REPO)) for path in REAL} <= named_configs
