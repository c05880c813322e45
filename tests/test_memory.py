"""The memory estimator's parameter counts against real tiny models, and its bookkeeping."""

from __future__ import annotations

import pytest

from ssvqa.memory import GIB, NF4_BYTES, estimate_memory, parameter_counts, visual_tokens
from ssvqa.modeling import load_ranker
from ssvqa.testing import FAMILIES, build_tiny_model, save_tiny_model


@pytest.mark.parametrize("family", FAMILIES)
def test_counts_match_a_loaded_qlora_model(family, tmp_path):
    import bitsandbytes as bnb

    built, _ = build_tiny_model(family)
    counts = parameter_counts(built.config, lora_r=4)
    assert counts["total"] == sum(p.numel() for p in built.parameters())

    model, _ = load_ranker(save_tiny_model(tmp_path / family, family), quantization="4bit", lora=True, lora_r=4)
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert counts["quantizable"] == sum(m.in_features * m.out_features for m in quantized)
    assert counts["largest_linear"] == max(m.in_features * m.out_features for m in quantized)
    assert counts["lora"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_rows_follow_the_options():
    built, _ = build_tiny_model("qwen2_5_vl")
    settings = dict(batch_size=2, num_frames=8, max_pixels=112 * 112, lora_r=4)
    qlora = estimate_memory(built.config, **settings)
    counts = qlora.counts
    assert qlora.rows["weights, language model (4-bit)"] == counts["quantizable"] * NF4_BYTES
    assert qlora.rows["AdamW states (fp32)"] == 8 * counts["lora"]
    tokens, patches = visual_tokens(built.config, 8, 112 * 112)
    assert (tokens, patches) == (4 * 4 * 4, 4 * 8 * 8)  # 112 px = 4 x 28: 4 temporal patches of 8 x 8, merged 2 x 2
    assert counts["tokens_per_batch"] == 2 * (2 * tokens + 128)

    zero3 = estimate_memory(built.config, **settings, quantized=False, sharding="zero3", world_size=4)
    assert zero3.rows["weights (bf16)"] == counts["total"] * 2 / 4
    assert zero3.rows["AdamW states (fp32)"] == 8 * counts["lora"] / 4
    full = estimate_memory(built.config, **settings, gradient_checkpointing=False)
    assert full.rows["activations, all layers"] > qlora.rows["activations, layer inputs"]
    assert qlora.total > 1 * GIB  # the runtime row is always there
    with pytest.raises(ValueError, match="sharding"):
        estimate_memory(built.config, **settings, sharding="fsdp2")


def test_published_configs_build_with_their_published_sizes():
    """The stored config.json copies give the parameter totals their model cards publish."""
    from pathlib import Path

    from transformers import AutoConfig

    root = Path(__file__).resolve().parents[1] / "bench" / "model_configs"
    published = {"qwen2_5_vl_7b": 8.29e9, "qwen3_vl_8b": 8.77e9, "llava_onevision_7b": 8.03e9}
    for name, total in published.items():
        counts = parameter_counts(AutoConfig.from_pretrained(root / f"{name}.json"), lora_r=32)
        assert abs(counts["total"] - total) < 0.006e9, (name, counts["total"])
        assert 80e6 < counts["lora"] < 88e6


def test_gpu_bench_refuses_without_cuda_and_its_loops_run_on_a_tiny_config(tmp_path):
    """CI never needs a GPU: the script exits with a clear message; its two loops run on CPU."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "bench" / "bench_qlora_gpu.py")], capture_output=True, text=True)
    assert done.returncode != 0 and "needs a CUDA GPU" in done.stderr

    sys.path.insert(0, str(root / "bench"))
    try:
        from bench_qlora_gpu import build_checkpoint, run
    finally:
        sys.path.remove(str(root / "bench"))
    built, _ = build_tiny_model("qwen2_5_vl")
    built.config.to_json_file(tmp_path / "config.json")
    folder = build_checkpoint(tmp_path / "checkpoint", tmp_path / "config.json", 56 * 56)
    results = run(folder, steps=1, batch_size=2, frames=4, side=56, device="cpu")
    assert results["ranker"]["pairs_per_s"] > 0 and results["bare"]["pairs_per_s"] > 0
