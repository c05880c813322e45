"""The pair prompt and how its answer is read.

A pair is (first, second) = (``video_a``, ``video_b``). The prompt puts both videos in one user
turn, asks how the quality of the *second* compares with the first, and pre-fills the assistant
turn with :data:`ASSISTANT_PREFIX` ("The quality of the second video is"). The model's answer is
its next-token distribution restricted to the five level words: the logits of those five tokens
at the last prompt position (:func:`answer_logits`), a softmax over them
(:func:`level_distribution`), and the preference ``sum_k w_k p_k`` with weights 0, .25, .5, .75, 1
(:func:`expected_preference`).

Which form of a level word is the answer token. After ``"...video is"`` a byte-level BPE (Qwen)
or SentencePiece (LLaMA) tokenizer spells the next word *with its leading space*: the text
``"The quality of the second video is better"`` ends in the token ``"Ġbetter"`` (``"▁better"``),
not in ``"better"``. So the level token is the one token that ``" " + word`` adds after the
prefix, found by tokenizing the prefix with and without the word (:func:`level_token_ids`); it
is what the model would generate, and what it learned to generate in pre-training. When that
is more than one token the model cannot answer with one next-token choice, and
:class:`LevelTokenError` names every such word with its pieces (and, for information, how the
bare word tokenizes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ssvqa.errors import SsvqaError
from ssvqa.labels import LEVEL_WEIGHTS, LEVELS
from ssvqa.sampling import UNIFORM_FRAME_RATE

LEVEL_WORDS: tuple[str, ...] = LEVELS
ASSISTANT_PREFIX = "The quality of the second video is"
QUESTION = (
    "You are shown two videos of similar content. Compared with the first video, how is the visual quality "
    "of the second video? Answer with one word: inferior, worse, similar, better or superior."
)


class LevelTokenError(SsvqaError):
    """A tokenizer cannot answer with single-token level words (names every offending word)."""


def pair_messages(question: str = QUESTION) -> list[dict]:
    """The chat of one pair: two videos and the question, then the pre-filled assistant answer.

    The two ``{"type": "video"}`` blocks carry no data: the frames are given to the processor
    separately (first video first). Render with ``continue_final_message=True`` so the prompt ends
    right after :data:`ASSISTANT_PREFIX`.

    >>> [block["type"] for block in pair_messages()[0]["content"]]
    ['video', 'video', 'text']
    >>> pair_messages()[1]["content"][0]["text"]
    'The quality of the second video is'
    """
    return [
        {
            "role": "user",
            "content": [{"type": "video"}, {"type": "video"}, {"type": "text", "text": question}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": ASSISTANT_PREFIX}]},
    ]


def level_token_ids(tokenizer, words: Sequence[str] = LEVEL_WORDS, prefix: str = ASSISTANT_PREFIX) -> list[int]:
    """Token id of each level word as the tokenizer spells it right after ``prefix``.

    The answer token of ``word`` is the single token that ``prefix + " " + word`` adds to
    ``prefix`` (see the module doc for why the leading-space form).

    Raises:
        LevelTokenError: a word is not exactly one token there, or two words share a token; the
            message names every such word and shows its pieces.
    """
    base = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    problems: list[str] = []
    for word in words:
        full = tokenizer(f"{prefix} {word}", add_special_tokens=False)["input_ids"]
        added = full[len(base):] if full[: len(base)] == base else None
        if added is not None and len(added) == 1:
            ids.append(added[0])
            continue
        spaced = tokenizer.convert_ids_to_tokens(added if added is not None else full)
        bare = tokenizer.convert_ids_to_tokens(tokenizer(word, add_special_tokens=False)["input_ids"])
        where = "after the prefix" if added is not None else "(the prefix itself tokenizes differently before it)"
        problems.append(f"{word!r} -> {spaced} {where}; bare {word!r} -> {bare}")
        ids.append(-1)
    seen: dict[int, str] = {}
    for word, token_id in zip(words, ids):
        if token_id >= 0 and token_id in seen:
            problems.append(f"{word!r} and {seen[token_id]!r} are the same token {token_id}")
        seen.setdefault(token_id, word)
    if problems:
        raise LevelTokenError(
            f"each level word must be one token after {prefix!r} for the model to answer with it; "
            f"{type(tokenizer).__name__} fails for: " + "; ".join(problems)
        )
    return ids


def encode_pairs(
    processor,
    videos_a: Sequence[torch.Tensor],
    videos_b: Sequence[torch.Tensor],
    *,
    question: str | Sequence[str] = QUESTION,
    processor_kwargs: dict | None = None,
    frame_rate: float = UNIFORM_FRAME_RATE,
):
    """Turn B pairs of decoded videos into one padded model batch.

    Args:
        processor: the model's ``AutoProcessor``.
        videos_a, videos_b: the first and second videos of each pair, ``uint8`` tensors of shape
            ``(T, 3, H, W)`` from :func:`ssvqa.video.decode_frames`. Sizes may differ; frame
            counts may differ too except for LLaVA-OneVision, whose processor stacks all videos
            of a batch into one tensor.
        question: the user text, or one per pair.
        processor_kwargs: passed to the processor call, e.g. ``{"padding_side": "left"}``.
            The frames are already sampled, so ``do_sample_frames=False`` unless given.
        frame_rate: frames per second of the decoded frames, told to the processor as video
            metadata: :attr:`ssvqa.sampling.VideoSampling.frame_rate` of the sampling that made them.
            The Qwen models place frames in time from it (Qwen2.5-VL: temporal position ids,
            Qwen3-VL: timestamps in the prompt).

    Returns:
        A ``BatchFeature`` with ``input_ids``, ``attention_mask`` and the family's video tensors
        (``pixel_values_videos``, ``video_grid_thw``, ...), ready for ``model(**batch)``.

    >>> batch = encode_pairs(processor, [frames_a], [frames_b])     # doctest: +SKIP
    >>> model(**batch).logits.shape                                  # doctest: +SKIP
    torch.Size([1, 212, 368])
    """
    if len(videos_a) != len(videos_b):
        raise ValueError(f"videos_a has {len(videos_a)} videos but videos_b has {len(videos_b)}")
    if not len(videos_a):
        raise ValueError("encode_pairs needs at least one pair")
    questions = [question] * len(videos_a) if isinstance(question, str) else list(question)
    if len(questions) != len(videos_a):
        raise ValueError(f"got {len(questions)} questions for {len(videos_a)} pairs")
    conversations = []
    for first, second, text in zip(videos_a, videos_b, questions):
        messages = pair_messages(text)
        # The frames ride in the video blocks, in order: the processor collects them per chat.
        messages[0]["content"][0] = {"type": "video", "video": _check_video(first, "videos_a")}
        messages[0]["content"][1] = {"type": "video", "video": _check_video(second, "videos_b")}
        conversations.append(messages)
    # Without metadata the Qwen processors assume 24 fps, which squeezes Qwen2.5-VL's temporal
    # positions of 8 frames to one value and makes Qwen3-VL warn; give them the frames' rate.
    metadata = [
        {"total_num_frames": len(video), "fps": frame_rate, "frames_indices": list(range(len(video)))}
        for pair in zip(videos_a, videos_b)
        for video in pair
    ]
    kwargs = {"padding": True, "do_sample_frames": False, "video_metadata": metadata}
    kwargs.update(processor_kwargs or {})
    return processor.apply_chat_template(
        conversations,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        continue_final_message=True,
        processor_kwargs=kwargs,
    )


def _check_video(video, name: str) -> torch.Tensor:
    if not isinstance(video, torch.Tensor) or video.ndim != 4 or video.shape[1] != 3:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"{name}: each video must be a (T, 3, H, W) uint8 tensor, got {shape}")
    return video


def answer_logits(logits: torch.Tensor, attention_mask: torch.Tensor, level_ids: Sequence[int]) -> torch.Tensor:
    """Logits of the level words at the answer position of each sequence: ``(B, len(level_ids))``.

    The answer position is the last real (non-pad) token: the end of :data:`ASSISTANT_PREFIX`.
    It is found from ``attention_mask`` as the highest index holding a 1, which is right for both
    left padding (always the last column) and right padding.

    ``logits`` may cover only the last ``L'`` positions (``model(..., logits_to_keep=L')``); the
    answer positions must then lie among them (with left padding ``logits_to_keep=1`` suffices).
    """
    if logits.ndim != 3 or attention_mask.ndim != 2 or logits.shape[0] != attention_mask.shape[0]:
        raise ValueError(f"expected logits (B, L, V) and attention_mask (B, L), got {tuple(logits.shape)} and {tuple(attention_mask.shape)}")
    length = attention_mask.shape[1]
    positions = torch.arange(length, device=attention_mask.device)
    last = torch.where(attention_mask.bool(), positions, -1).max(dim=1).values
    if (last < 0).any():
        raise ValueError("a sequence has no real token (its attention_mask is all zeros)")
    offset = length - logits.shape[1]  # logits_to_keep: logits[:, j] is position offset + j
    if (last < offset).any():
        raise ValueError(
            f"logits cover only the last {logits.shape[1]} positions but an answer position is earlier; "
            "use left padding or keep all logits"
        )
    rows = torch.arange(logits.shape[0], device=logits.device)
    picked = logits[rows, (last - offset).to(logits.device)]
    return picked[:, torch.as_tensor(list(level_ids), device=logits.device)]


def level_distribution(level_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax over the five level logits (at ``temperature``): ``(B, 5)`` probabilities."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return torch.softmax(level_logits.float() / temperature, dim=-1)


def expected_preference(probs: torch.Tensor) -> torch.Tensor:
    """Preference that the second video is better, ``sum_k w_k p_k`` with LEVEL_WEIGHTS: ``(B,)``.

    >>> expected_preference(torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]]))
    tensor([0.6250])
    """
    weights = torch.tensor(LEVEL_WEIGHTS, dtype=probs.dtype, device=probs.device)
    return probs @ weights
