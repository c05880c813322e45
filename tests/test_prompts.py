"""The pair prompt, its encoding for every family, and reading the answer from the logits."""

from __future__ import annotations

import pytest
import torch
from conftest import make_video

from ssvqa.labels import LEVEL_WEIGHTS, LEVELS
from ssvqa.prompts import (
    ASSISTANT_PREFIX,
    QUESTION,
    LevelTokenError,
    answer_logits,
    encode_pairs,
    expected_preference,
    level_distribution,
    level_token_ids,
    pair_messages,
)
from ssvqa.testing import FAMILIES, build_processor, build_tiny_model, build_tokenizer
from ssvqa.video import decode_frames


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Decoded 8-frame clips of three shapes: landscape, portrait and a 192x144 video."""
    root = tmp_path_factory.mktemp("prompt_videos")
    paths = {
        "landscape": make_video(root / "landscape.mp4", size="160x120", rate=10),
        "portrait": make_video(root / "portrait.mp4", size="136x240", rate=10, source="mandelbrot"),
        "small": make_video(root / "small.mp4", size="192x144", rate=10, source="smptebars"),
    }
    return {name: decode_frames(path, num_frames=8, max_pixels=112 * 112, multiple=28) for name, path in paths.items()}


def test_pair_messages_shape():
    messages = pair_messages("Which is better?")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert [block["type"] for block in messages[0]["content"]] == ["video", "video", "text"]
    assert messages[0]["content"][2]["text"] == "Which is better?"
    assert messages[1]["content"] == [{"type": "text", "text": ASSISTANT_PREFIX}]
    for word in LEVELS:  # the question lists every answer word
        assert word in QUESTION


QWEN_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
# The pair prompt as the published chat templates lay it out (Qwen2/2.5-VL: default system turn;
# Qwen3-VL: none, the same outer vision markers; LLaVA-OneVision: "role " + videos + "\n" + text,
# no system turn, no newline after <|im_end|>).
PUBLISHED_LAYOUT = {
    "qwen2_5_vl": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  f"{QWEN_VIDEO}{QWEN_VIDEO}{QUESTION}<|im_end|>\n<|im_start|>assistant\n{ASSISTANT_PREFIX}",
    "qwen3_vl": f"<|im_start|>user\n{QWEN_VIDEO}{QWEN_VIDEO}{QUESTION}<|im_end|>\n<|im_start|>assistant\n{ASSISTANT_PREFIX}",
    "llava_onevision": f"<|im_start|>user <video><video>\n{QUESTION}<|im_end|><|im_start|>assistant \n{ASSISTANT_PREFIX}",
}
PUBLISHED_LAYOUT["qwen2_vl"] = PUBLISHED_LAYOUT["qwen2_5_vl"]


@pytest.mark.parametrize("family", FAMILIES)
def test_rendered_prompt_follows_the_published_template(family):
    processor = build_processor(family)
    text = processor.apply_chat_template(pair_messages(), continue_final_message=True)
    assert text == PUBLISHED_LAYOUT[family]


def test_level_token_ids_are_the_leading_space_tokens():
    tokenizer = build_tokenizer()
    ids = level_token_ids(tokenizer)
    assert len(set(ids)) == 5
    assert tokenizer.convert_ids_to_tokens(ids) == ["Ġ" + word for word in LEVELS]
    # ...which is exactly the token that ends the spelled-out answer.
    for word, token_id in zip(LEVELS, ids):
        full = tokenizer(f"{ASSISTANT_PREFIX} {word}", add_special_tokens=False)["input_ids"]
        assert full[-1] == token_id


def test_level_token_error_names_every_bad_word():
    tokenizer = build_tokenizer(words=("inferior", "worse", "similar", "better"))  # no "superior"
    with pytest.raises(LevelTokenError) as info:
        level_token_ids(tokenizer)
    message = str(info.value)
    assert "'superior'" in message and "Ġs" in message
    assert "'better'" not in message and "'similar'" not in message

    tokenizer = build_tokenizer(words=("worse", "similar", "better"))
    with pytest.raises(LevelTokenError, match="'inferior'.*'superior'"):
        level_token_ids(tokenizer)


def test_level_token_error_on_shared_tokens():
    with pytest.raises(LevelTokenError, match="same token"):
        level_token_ids(build_tokenizer(), words=("better", "worse", "better"))


@pytest.mark.parametrize("family", FAMILIES)
def test_encode_forward_backward_every_family(frames, family):
    model, processor = build_tiny_model(family)
    videos_a = [frames["landscape"], frames["small"]]
    videos_b = [frames["portrait"], frames["landscape"]]
    assert frames["portrait"].shape[-2] > frames["portrait"].shape[-1]
    batch = encode_pairs(processor, videos_a, videos_b)
    assert batch["input_ids"].shape[0] == 2

    # Each row's real tokens end with the assistant prefix: the answer position is right after.
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
        text = processor.tokenizer.decode(ids[mask.bool()])
        assert text.endswith(ASSISTANT_PREFIX)
        assert text.count(QUESTION) == 1

    model.train()
    level_ids = level_token_ids(processor.tokenizer)
    logits = model(**batch).logits
    assert torch.isfinite(logits).all()
    level_logits = answer_logits(logits, batch["attention_mask"], level_ids)
    assert level_logits.shape == (2, 5)
    loss = torch.nn.functional.cross_entropy(level_logits, torch.tensor([LEVELS.index("better"), 0]))
    loss.backward()

    grads = {name: p.grad for name, p in model.named_parameters()}
    vision = [g for name, g in grads.items() if "language_model" not in name and "lm_head" not in name]
    language = [g for name, g in grads.items() if "language_model" in name]
    assert any(g is not None and g.abs().sum() > 0 for g in vision), "no gradient reached the vision tower"
    assert any(g is not None and g.abs().sum() > 0 for g in language)


def test_the_pair_order_matters(frames):
    model, processor = build_tiny_model("qwen2_5_vl")
    ids = level_token_ids(processor.tokenizer)
    a, b = frames["landscape"], frames["portrait"]
    with torch.no_grad():
        forward = encode_pairs(processor, [a], [b])
        backward = encode_pairs(processor, [b], [a])
        one = answer_logits(model(**forward).logits, forward["attention_mask"], ids)
        two = answer_logits(model(**backward).logits, backward["attention_mask"], ids)
    assert not torch.allclose(one, two)


@pytest.mark.parametrize("family", FAMILIES)
def test_left_and_right_padding_give_the_same_answer(frames, family):
    model, processor = build_tiny_model(family)
    ids = level_token_ids(processor.tokenizer)
    videos_a = [frames["landscape"], frames["portrait"], frames["small"]]
    videos_b = [frames["small"], frames["landscape"], frames["small"]]
    # Questions of different lengths make padding needed in every family (LLaVA-OneVision squares
    # every frame, so its video tokens alone are the same for all pairs).
    questions = [QUESTION, "Is the second video better?", QUESTION + " Think of blur and noise."]
    answers = {}
    with torch.no_grad():
        for side in ("left", "right"):
            batch = encode_pairs(processor, videos_a, videos_b, question=questions, processor_kwargs={"padding_side": side})
            assert not batch["attention_mask"].all(), "the batch should need padding"
            answers[side] = answer_logits(model(**batch).logits, batch["attention_mask"], ids)
        alone = []
        for a, b, q in zip(videos_a, videos_b, questions):
            single = encode_pairs(processor, [a], [b], question=q)
            alone.append(answer_logits(model(**single).logits, single["attention_mask"], ids))
        left = encode_pairs(processor, videos_a, videos_b, question=questions, processor_kwargs={"padding_side": "left"})
        last_only = answer_logits(model(**left, logits_to_keep=1).logits, left["attention_mask"], ids)
    torch.testing.assert_close(answers["left"], answers["right"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(answers["left"], torch.cat(alone), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last_only, answers["left"], atol=1e-5, rtol=1e-5)


def _direct(logits, positions, level_ids):
    return torch.stack([logits[i, p, level_ids] for i, p in enumerate(positions)])


def test_answer_logits_picks_the_last_real_token():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    level_ids = [4, 2, 9, 0, 7]
    lengths = [7, 3, 5]
    right = torch.tensor([[1] * n + [0] * (7 - n) for n in lengths])
    left = torch.tensor([[0] * (7 - n) + [1] * n for n in lengths])
    torch.testing.assert_close(answer_logits(logits, right, level_ids), _direct(logits, [6, 2, 4], level_ids))
    torch.testing.assert_close(answer_logits(logits, left, level_ids), _direct(logits, [6, 6, 6], level_ids))
    # logits_to_keep=2 with left padding: the kept logits are positions 5 and 6.
    torch.testing.assert_close(answer_logits(logits[:, -2:], left, level_ids), _direct(logits, [6, 6, 6], level_ids))
    with pytest.raises(ValueError, match="left padding"):
        answer_logits(logits[:, -2:], right, level_ids)
    with pytest.raises(ValueError, match="no real token"):
        answer_logits(logits, torch.zeros(3, 7, dtype=torch.long), level_ids)


def test_encode_pairs_rejects_bad_input(frames):
    processor = build_processor("qwen2_5_vl")
    with pytest.raises(ValueError, match="videos_b has 0"):
        encode_pairs(processor, [frames["small"]], [])
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\)"):
        encode_pairs(processor, [frames["small"][0]], [frames["small"]])
    with pytest.raises(ValueError, match="2 questions for 1 pairs"):
        encode_pairs(processor, [frames["small"]], [frames["small"]], question=["a", "b"])


def test_distribution_and_preference():
    level_logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0, 0.0]])
    probs = level_distribution(level_logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    torch.testing.assert_close(probs[0], torch.full((5,), 0.2))
    sharper = level_distribution(level_logits, temperature=0.5)
    assert sharper[1, 3] > probs[1, 3]
    preference = expected_preference(probs)
    torch.testing.assert_close(preference[0], torch.tensor(0.5))
    manual = sum(w * p for w, p in zip(LEVEL_WEIGHTS, probs[1].tolist()))
    torch.testing.assert_close(preference[1], torch.tensor(manual))
    torch.testing.assert_close(expected_preference(torch.eye(5)), torch.tensor(LEVEL_WEIGHTS))
    with pytest.raises(ValueError, match="temperature"):
        level_distribution(level_logits, temperature=0)
