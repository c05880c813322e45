"""A zero-shot video LMM teacher: the Q-Align way of reading a quality rating from a chat model.

One video goes in a user turn that asks for its quality; the assistant turn is pre-filled with
:data:`RATING_PREFIX` ("The quality of the video is"), so the model's very next token is its
rating. Instead of sampling it, the logits of the five rating words ``excellent, good, fair, poor,
bad`` at that position are softmaxed, and the score is the expected rating with weights
1, .75, .5, .25, 0, times 100. The rating words are the leading-space single tokens that
``prefix + " " + word`` adds (checked by :func:`ssvqa.prompts.level_token_ids`, which raises
:class:`~ssvqa.prompts.LevelTokenError` otherwise), i.e. the tokens the model would generate.

Why this works zero-shot: instruction-tuned video LMMs have read many texts that rate quality
with these words, and the *distribution* over them (not the argmax) orders videos far better
than a generated word does (Q-Align, Wu et al. 2023).

The same code runs the tiny offline test models and, on a GPU, e.g. ``Qwen/Qwen2.5-VL-7B-Instruct``::

    teacher = LMMLevelAnnotator("Qwen/Qwen2.5-VL-7B-Instruct", dtype="bfloat16")
    teacher.score(["a.mp4", "b.mp4"])   # [72.4, 31.0]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ssvqa.errors import VideoError
from ssvqa.hashing import json_fingerprint
from ssvqa.prompts import level_token_ids
from ssvqa.sampling import VideoSampling, resolve_sampling, saved_sampling

RATING_WORDS: tuple[str, ...] = ("excellent", "good", "fair", "poor", "bad")
RATING_WEIGHTS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.0)
RATING_PREFIX = "The quality of the video is"
RATING_QUESTION = "How would you rate the visual quality of this video? Answer with one word: excellent, good, fair, poor or bad."
ZERO_SHOT_SAMPLING = VideoSampling(num_frames=8, max_pixels=448 * 448)
"""Sampling of a chat LMM that no ssvqa training has fixed one for: 8 frames of at most 448x448,
close to what instruction-tuned video LMMs read in their own fine-tuning."""


def rating_messages(question: str = RATING_QUESTION) -> list[dict]:
    """The chat of one video: the video and the question, then the pre-filled assistant answer.

    >>> [block["type"] for block in rating_messages()[0]["content"]]
    ['video', 'text']
    """
    return [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": [{"type": "text", "text": RATING_PREFIX}]},
    ]


def expected_rating(rating_logits: torch.Tensor) -> torch.Tensor:
    """``(B, 5)`` logits in :data:`RATING_WORDS` order -> ``(B,)`` scores in 0-100.

    >>> expected_rating(torch.tensor([[10.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])).round().tolist()
    [100.0, 50.0]
    """
    probs = torch.softmax(rating_logits.double(), dim=-1)
    return 100.0 * (probs * torch.tensor(RATING_WEIGHTS, dtype=probs.dtype, device=probs.device)).sum(-1)


class LMMLevelAnnotator:
    """Quality teacher from a chat video LMM's rating-word distribution (see the module doc).

    Args:
        model_id_or_path: Hub id or local folder of an ``AutoModelForImageTextToText`` model.
        sampling: the :class:`~ssvqa.sampling.VideoSampling` videos are decoded with. Default:
            the one saved with the model (``video_sampling.json``, e.g. a ranker's folder), else
            :data:`ZERO_SHOT_SAMPLING`. The frame multiple is always the processor's.
        num_frames, fps, max_pixels: override single fields of that sampling (a warning says
            what differs from a saved one).
        batch_size: videos per forward pass (left padded; only the last position's logits kept).
        dtype: weights' dtype (``"auto"``: as stored).
        quantization: ``"4bit"``, ``"8bit"`` or None, as :func:`ssvqa.modeling.load_ranker`.
        trust_remote_code: run code from the model repository (off unless you trust it).
        device_map: passed to ``from_pretrained`` (e.g. ``"cuda"``); None keeps the default.
        question: the user text.
        name: the teacher's name in caches and provenance.

    The model loads on the first ``score`` call, so making a teacher is cheap.
    """

    def __init__(
        self,
        model_id_or_path: str | os.PathLike,
        *,
        sampling: VideoSampling | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        max_pixels: int | None = None,
        batch_size: int = 4,
        dtype: str | torch.dtype = "auto",
        quantization: str | None = None,
        trust_remote_code: bool = False,
        device_map: str | dict | None = None,
        question: str = RATING_QUESTION,
        name: str = "lmm",
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model_id_or_path = str(model_id_or_path)
        self.sampling = resolve_sampling(sampling or saved_sampling(self.model_id_or_path), self.model_id_or_path,
                                         defaults=ZERO_SHOT_SAMPLING, num_frames=num_frames, fps=fps, max_pixels=max_pixels)
        self.batch_size = int(batch_size)
        self.dtype, self.quantization, self.trust_remote_code = dtype, quantization, trust_remote_code
        self.device_map, self.question, self.name = device_map, question, name
        self._model = self._processor = self._rating_ids = None

    @property
    def fingerprint(self) -> str:
        """Hash of everything the scores depend on (model path or id first, then the settings)."""
        sampling = self.sampling
        settings = {
            "model": self.model_id_or_path,
            "num_frames": sampling.num_frames,
            "max_pixels": sampling.max_pixels,
            # frames by count, resized: the settings of before the sampling contract, same fingerprint
            **({} if sampling.fps is None and sampling.mode == "resize" else
               {"fps": sampling.fps, "max_frames": sampling.max_frames, "mode": sampling.mode}),
            "dtype": str(self.dtype),
            "quantization": self.quantization,
            "question": self.question,
            "version": 1,
        }
        return json_fingerprint(settings)

    def load(self):
        """Load (once) and return ``(model, processor)``."""
        if self._model is None:
            from ssvqa.modeling import load_ranker
            from transformers import AutoProcessor

            # load_ranker checks the *pair* level words; the rating words are checked here.
            processor = AutoProcessor.from_pretrained(self.model_id_or_path, trust_remote_code=self.trust_remote_code)
            self._rating_ids = level_token_ids(processor.tokenizer, words=RATING_WORDS, prefix=RATING_PREFIX)
            model, processor = load_ranker(
                self.model_id_or_path, quantization=self.quantization, dtype=self.dtype,
                trust_remote_code=self.trust_remote_code, device_map=self.device_map,
            )
            model.eval()
            self._model, self._processor = model, processor
            self.sampling = self.sampling.with_processor(processor)
        return self._model, self._processor

    def score(self, videos: Sequence[str | Path]) -> list[float]:
        """0-100 scores, in order. Raises :class:`VideoError` for the first unreadable video."""
        self.load()
        scores: list[float] = []
        for start in range(0, len(videos), self.batch_size):
            chunk = videos[start : start + self.batch_size]
            frames = []
            for path in chunk:
                if not Path(path).is_file():
                    raise VideoError(path, "file does not exist")
                frames.append(self.sampling.decode(path))
            scores += self._score_frames(frames)
        return scores

    @torch.no_grad()
    def _score_frames(self, frames: list[torch.Tensor]) -> list[float]:
        from ssvqa.modeling import answer_token_logits

        model, processor = self._model, self._processor
        conversations = []
        for video in frames:
            messages = rating_messages(self.question)
            messages[0]["content"][0] = {"type": "video", "video": video}
            conversations.append(messages)
        rate = self.sampling.frame_rate
        metadata = [{"total_num_frames": len(v), "fps": rate, "frames_indices": list(range(len(v)))} for v in frames]
        batch = processor.apply_chat_template(
            conversations,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            continue_final_message=True,
            processor_kwargs={"padding": True, "padding_side": "left", "do_sample_frames": False, "video_metadata": metadata},
        )
        rating_logits = answer_token_logits(model, batch, self._rating_ids)
        return [float(s) for s in expected_rating(rating_logits.float().cpu())]
