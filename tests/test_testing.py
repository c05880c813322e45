"""Tiny offline models: every family builds, saves as an ordinary folder and loads back."""

from __future__ import annotations

import pytest
import torch

from ssvqa.labels import LEVELS
from ssvqa.prompts import encode_pairs, level_token_ids
from ssvqa.testing import (
    FAMILIES,
    NUM_FRAMES,
    RATING_WORDS,
    build_tiny_model,
    build_tokenizer,
    count_parameters,
    save_tiny_model,
)


def _pair(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, 256, (NUM_FRAMES, 3, 84, 112), dtype=torch.uint8, generator=generator)
    second = torch.randint(0, 256, (NUM_FRAMES, 3, 112, 84), dtype=torch.uint8, generator=generator)
    return [first], [second]


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_back_gives_identical_logits(tmp_path, family):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = build_tiny_model(family)
    path = save_tiny_model(tmp_path / family, family)
    files = {p.name for p in path.iterdir()}
    assert "model.safetensors" in files and not any(name.endswith(".bin") for name in files)

    loaded = AutoModelForImageTextToText.from_pretrained(path, use_safetensors=True).eval()
    loaded_processor = AutoProcessor.from_pretrained(path)
    assert type(loaded) is type(model)
    assert type(loaded_processor) is type(processor)
    assert loaded_processor.chat_template == processor.chat_template
    assert level_token_ids(loaded_processor.tokenizer) == level_token_ids(processor.tokenizer)

    videos_a, videos_b = _pair()
    batch = encode_pairs(processor, videos_a, videos_b)
    loaded_batch = encode_pairs(loaded_processor, videos_a, videos_b)
    assert torch.equal(batch["input_ids"], loaded_batch["input_ids"])
    with torch.no_grad():
        expected = model(**batch).logits
        got = loaded(**loaded_batch).logits
    assert torch.equal(expected, got)


def test_same_seed_same_weights_other_seed_other_weights():
    first, _ = build_tiny_model("qwen2_5_vl", seed=3)
    again, _ = build_tiny_model("qwen2_5_vl", seed=3)
    other, _ = build_tiny_model("qwen2_5_vl", seed=4)
    a, b, c = (dict(m.named_parameters()) for m in (first, again, other))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], c[name]) for name in a)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava_onevision"])
def test_sizes(family):
    tiny, _ = build_tiny_model(family, "tiny")
    small, _ = build_tiny_model(family, "small")
    assert 100_000 < count_parameters(tiny) < 1_000_000
    assert 1_000_000 < count_parameters(small) < 10_000_000
    assert small.config.text_config.num_hidden_layers > tiny.config.text_config.num_hidden_layers


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava_onevision"])
def test_words_are_single_tokens_with_and_without_space(family):
    tokenizer = build_tokenizer(family)
    for word in LEVELS + RATING_WORDS:
        assert tokenizer.tokenize(word) == [word]
        assert tokenizer.tokenize(" " + word) == ["Ġ" + word]


def test_tokenizer_round_trips_any_text():
    tokenizer = build_tokenizer()
    text = "Ünïcode, emoji 🎬, tabs\tand\nnew lines; the second video is better."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    special = tokenizer("<|im_start|>user<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(special) == ["<|im_start|>", "u", "s", "e", "r", "<|im_end|>"]


@pytest.mark.parametrize(
    "family, tokens_per_video",
    [
        # 84x112 frames, patch 14, merge 2, 2 frames per temporal patch: 4 * (6*8) / 4
        ("qwen2_5_vl", 4 * 6 * 8 // 4),
        # patch 16 -> 96x128: 4 * (6*8) / 4 plus, per temporal patch, a timestamp and start/end tokens
        ("qwen3_vl", 4 * 6 * 8 // 4),
        # 112x112 squares, 8x8 patches pooled 2x2 per frame, plus one newline token
        ("llava_onevision", NUM_FRAMES * 4 * 4 + 1),
    ],
)
def test_default_video_settings_give_8_frames_of_about_112(family, tokens_per_video):
    _, processor = build_tiny_model(family)
    videos_a, _ = _pair()
    batch = encode_pairs(processor, videos_a, videos_a)
    video_token = processor.video_token_id
    assert (batch["input_ids"] == video_token).sum().item() == 2 * tokens_per_video
    if "video_grid_thw" in batch:
        t, h, w = batch["video_grid_thw"][0].tolist()
        assert t == NUM_FRAMES // 2
        patch = processor.video_processor.patch_size
        assert 84 <= h * patch <= 112 and 84 <= w * patch <= 128
    else:
        assert batch["pixel_values_videos"].shape[1:] == (NUM_FRAMES, 3, 112, 112)


def test_unknown_family_and_size():
    with pytest.raises(ValueError, match="unknown model family"):
        build_tiny_model("gpt2")
    with pytest.raises(ValueError, match="unknown size"):
        build_tiny_model("qwen2_5_vl", size="huge")
