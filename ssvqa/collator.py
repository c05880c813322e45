"""Turn pair-dataset rows into model inputs: decode both videos, build the pair prompt, pad."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ssvqa.labels import LEVEL_WEIGHTS, mirror_level
from ssvqa.pairs.dataset import row_video_file
from ssvqa.prompts import QUESTION, encode_pairs
from ssvqa.sampling import DecodedVideos, VideoSampling


# Model types whose processor stacks every video of a batch into one tensor: all videos of a
# batch must then have the same frame count, which sampling by fps does not give.
FIXED_FRAME_COUNT_MODELS = {"llava_onevision": "LlavaOnevisionProcessor"}


def check_frame_sampling(model_type_or_processor, fps: float | None) -> None:
    """Refuse ``fps`` sampling for a family whose processor needs one frame count per batch.

    LLaVA-OneVision's processor stacks the videos of a batch (``stack expects each tensor to be
    equal size`` otherwise). Padding or trimming to a common count would make a pair's answer
    depend on the other pairs of its batch, so fps sampling is refused up front, before any
    weight is read; ``num_frames`` (a fixed count) works for every family.

    Args:
        model_type_or_processor: a config's ``model_type`` (e.g. ``"llava_onevision"``) or a processor.
        fps: the configured frame rate (None: fixed ``num_frames``, always fine).
    """
    if fps is None:
        return
    if isinstance(model_type_or_processor, str):
        model_type = model_type_or_processor
    else:
        name = type(model_type_or_processor).__name__
        model_type = next((t for t, cls in FIXED_FRAME_COUNT_MODELS.items() if cls == name), None)
    if model_type in FIXED_FRAME_COUNT_MODELS:
        raise ValueError(
            f"fps={fps} cannot be used with {model_type}: its processor stacks all the videos of a batch, so they "
            "must have the same number of frames, and fps sampling gives each video its own count; "
            "set num_frames (and leave fps unset) for this model"
        )


def soft_target(prob: float) -> list[float]:
    """A five-level distribution whose expected preference is ``prob``: the mass is split between
    the two levels whose weights bracket it (``0.6`` -> 60 % ``similar``, 40 % ``better``).

    >>> soft_target(0.6)
    [0.0, 0.0, 0.6, 0.4, 0.0]
    """
    prob = min(1.0, max(0.0, float(prob)))
    upper = next(i for i, w in enumerate(LEVEL_WEIGHTS) if w >= prob)
    target = [0.0] * len(LEVEL_WEIGHTS)
    if upper == 0 or LEVEL_WEIGHTS[upper] == prob:
        target[upper] = 1.0
        return target
    lower = upper - 1
    share = (prob - LEVEL_WEIGHTS[lower]) / (LEVEL_WEIGHTS[upper] - LEVEL_WEIGHTS[lower])
    target[lower], target[upper] = round(1.0 - share, 6), round(share, 6)
    return target


@dataclass
class DataCollatorForVideoPairs:
    """Collate pair rows (``video_a``, ``video_b``, ``label``, ``prob``) into one padded batch.

    Each distinct video in a batch is decoded once, even when it appears in several pairs (a
    pristine source is typically paired with every level of its ladder). Padding is on the left,
    so the answer position (the token after "The quality of the second video is") is the last
    position of every row and the model only needs logits there.

    A video may be a datasets ``Video(decode=False)`` value ``{"path": ..., "bytes": ...}`` as
    stored in published pair datasets, or a path (``str``). A video without bytes is read only
    inside ``video_root``: a relative path resolves there, and a path leaving it (``..``, an
    absolute path elsewhere, a symlink pointing out), or any path when ``video_root`` is None,
    raises :class:`~ssvqa.errors.DatasetRootError`.

    Example:

    ```python
    >>> from ssvqa.collator import DataCollatorForVideoPairs
    >>> sampling = VideoSampling(num_frames=8, max_pixels=112 * 112).with_processor(processor)
    >>> collator = DataCollatorForVideoPairs(processor, sampling=sampling, video_root="videos")
    >>> batch = collator([{"video_a": "ref.mp4", "video_b": "blur-3.mp4", "label": 0, "prob": 0.0}])
    >>> batch.keys()
    dict_keys(['input_ids', 'attention_mask', 'pixel_values_videos', 'video_grid_thw', 'level', 'prob', 'target'])
    ```

    Args:
        processor: the model's processor (tokenizer + video processor + chat template).
        sampling: which frames of each video, at what size (:class:`~ssvqa.sampling.VideoSampling`;
            default: its defaults with the processor's frame multiple). Its frame rate is what the
            processor is told the frames play at.
        num_threads: ffmpeg threads per decode.
        swap_augmentation: add the mirrored pair (second, first) with the mirrored label to the batch.
        soft_targets: the cross-entropy target is ``soft_target(prob)`` rather than one-hot ``label``.
        label_smoothing: mix the target with the uniform distribution by this much.
        question: the user text of the pair prompt.
        video_root: the folder that videos given only as paths are read in (and may not leave);
            None: every row must hold its videos' bytes.
    """

    processor: Any
    sampling: VideoSampling | None = None
    num_threads: int = 1
    swap_augmentation: bool = False
    soft_targets: bool = False
    label_smoothing: float = 0.0
    question: str = QUESTION
    video_root: str | None = None
    processor_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"
        if self.sampling is None:
            self.sampling = VideoSampling().with_processor(self.processor)
        check_frame_sampling(self.processor, self.sampling.fps)

    def __call__(self, examples: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        rows = list(examples)
        if self.swap_augmentation:
            rows += [_mirrored(row) for row in rows]
        decoded = DecodedVideos(self.sampling, num_threads=self.num_threads)
        videos_a = [decoded.frames(*self._source(row["video_a"], "video_a")) for row in rows]
        videos_b = [decoded.frames(*self._source(row["video_b"], "video_b")) for row in rows]
        batch = dict(
            encode_pairs(
                self.processor,
                videos_a,
                videos_b,
                question=self.question,
                processor_kwargs=self.processor_kwargs,
                frame_rate=self.sampling.frame_rate,
            )
        )
        levels = torch.tensor([int(row["label"]) for row in rows], dtype=torch.long)
        probs = torch.tensor([float(row["prob"]) for row in rows], dtype=torch.float32)
        if self.soft_targets:
            target = torch.tensor([soft_target(p) for p in probs.tolist()], dtype=torch.float32)
        else:
            target = torch.nn.functional.one_hot(levels, len(LEVEL_WEIGHTS)).float()
        if self.label_smoothing:
            target = (1 - self.label_smoothing) * target + self.label_smoothing / len(LEVEL_WEIGHTS)
        batch.update(level=levels, prob=probs, target=target)
        if self.swap_augmentation:  # row i + n is row i asked the other way round
            batch["swapped"] = torch.arange(len(rows)) >= len(examples)
        return batch

    def _source(self, video: Any, column: str) -> tuple[bytes | str, str]:
        """The bytes or path to decode, and the name errors should use."""
        if isinstance(video, Mapping):
            if video.get("bytes"):
                return video["bytes"], str(video.get("path") or "<video bytes>")
            video = video.get("path")
        path = str(row_video_file(video, self.video_root, f"a batch row's {column}"))
        return path, path


def _mirrored(row: Mapping[str, Any]) -> dict[str, Any]:
    """The same pair asked the other way round: (second, first), mirrored level, 1 - prob."""
    mirrored = dict(row)
    mirrored["video_a"], mirrored["video_b"] = row["video_b"], row["video_a"]
    mirrored["label"] = mirror_level(int(row["label"]))
    mirrored["prob"] = 1.0 - float(row["prob"])
    return mirrored
