"""VideoSampling: which frames of a video a ranker sees, at what size. One contract, saved with the model.

A ranker answers about the frames it is given; trained on one sampling and asked about another it
answers a different question. So the sampling is decided once, when training starts
(:class:`~ssvqa.trainer.RankConfig` builds it from its fields, the frame multiple comes from the
processor), saved beside the weights as :data:`SAMPLING_FILE` (``video_sampling.json``, written by
``RankTrainer.save_model``, so checkpoints carry it too) and inside ``anchors.json``, and read back
by everything that later feeds the model videos: the collator, :class:`~ssvqa.scorer.QualityScorer`,
:func:`~ssvqa.relabel.relabel_with_ranker`, the LMM teacher, ``ssvqa score``/``ssvqa evaluate`` and
the self-improvement rounds. A setting given explicitly that differs from the saved one wins, with
one warning naming what changed (:func:`resolve_sampling`).

>>> sampling = VideoSampling(fps=1.0, max_frames=16, max_pixels=448 * 448)
>>> sampling.frame_rate
1.0
>>> VideoSampling.from_dict(sampling.to_dict()) == sampling
True

Decoding goes through :meth:`VideoSampling.decode`: it is the one place a sampling mode acts.
``"resize"`` (the only mode today) scales whole frames down to the pixel budget; a future mode
(e.g. ``"fragments"``: native-resolution patches, as FAST-VQA samples them) is added there and to
:data:`SAMPLING_MODES`.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

SAMPLING_FILE = "video_sampling.json"
SAMPLING_MODES = ("resize",)
DEFAULT_NUM_FRAMES = 8
DEFAULT_MAX_FRAMES = 32
DEFAULT_MAX_PIXELS = 112 * 112
"""Pixel budget per frame when nothing says otherwise: suits the tiny test models. Real rankers
set theirs in the recipe (e.g. ``448 * 448``) and carry it in their saved sampling."""
UNIFORM_FRAME_RATE = 2.0
"""Frame rate told to the processor for frames sampled by count (``num_frames``): their true rate
varies per video, and 2 fps is the rate the Qwen processors sample at by default, so frames sit in
time the way the models saw them in pre-training. Frames sampled by ``fps`` are told that rate."""
DEFAULT_FRAME_MULTIPLE = 28  # patch 14 x spatial merge 2 (Qwen2.5-VL)


@dataclass(frozen=True)
class VideoSampling:
    r"""How a video becomes the frames a ranker reads.

    Parameters:
        num_frames (`int`, defaults to `8`):
            Frames sampled uniformly over the whole video (short videos repeat frames). Ignored when
            `fps` is set.
        fps (`float`, *optional*):
            Sample this many frames per second of the video instead (the paper's "1 fps" setting).
        max_frames (`int`, defaults to `32`):
            Cap on the frames per video when sampling by `fps`.
        max_pixels (`int`, defaults to `112 * 112`):
            Pixel budget per frame, aspect kept, never upscaled.
        mode (`str`, defaults to `"resize"`):
            How frames meet the budget. `"resize"`: whole frames are scaled down. The one switch
            where other modes plug in (see the module doc).
        frame_multiple (`int`, defaults to `28`):
            Frame sides are rounded to this multiple: the processor's patch size times its spatial
            merge (:meth:`with_processor` reads it from the processor).
    """

    num_frames: int | None = DEFAULT_NUM_FRAMES
    fps: float | None = None
    max_frames: int = DEFAULT_MAX_FRAMES
    max_pixels: int = DEFAULT_MAX_PIXELS
    mode: str = "resize"
    frame_multiple: int = DEFAULT_FRAME_MULTIPLE

    def __post_init__(self):
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"video sampling mode must be one of {SAMPLING_MODES}, got {self.mode!r}")
        if self.fps is None and (self.num_frames is None or self.num_frames < 1):
            raise ValueError(f"num_frames must be >= 1 when fps is not set, got {self.num_frames}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.max_frames < 1 or self.max_pixels < 1 or self.frame_multiple < 1:
            raise ValueError(f"max_frames, max_pixels and frame_multiple must be >= 1: {self}")

    @property
    def frame_rate(self) -> float:
        """Frames per second the processor is told the decoded frames play at."""
        return float(self.fps) if self.fps is not None else UNIFORM_FRAME_RATE

    def describe(self) -> str:
        """One line for model cards and logs."""
        frames = f"{self.fps:g} fps (at most {self.max_frames} frames)" if self.fps is not None else f"{self.num_frames} frames"
        return f"{frames}, {self.mode} to at most {self.max_pixels} pixels per frame (sides a multiple of {self.frame_multiple})"

    # --- decoding -------------------------------------------------------------------------------

    def decode(self, source, *, num_threads: int = 1, name: str | None = None):
        """The ``(T, 3, H, W)`` uint8 frames of a video file or its bytes, sampled as set here.

        Raises :class:`~ssvqa.errors.VideoError` naming the video when it cannot be decoded.
        """
        from ssvqa.video import decode_frames

        if self.mode == "resize":
            return decode_frames(
                source,
                num_frames=self.num_frames,
                fps=self.fps,
                max_frames=self.max_frames,
                num_threads=num_threads,
                max_pixels=self.max_pixels,
                multiple=self.frame_multiple,
                name=name,
            )
        raise NotImplementedError(f"video sampling mode {self.mode!r}")  # unreachable: checked in __post_init__

    # --- the processor --------------------------------------------------------------------------

    def with_processor(self, processor) -> VideoSampling:
        """The same sampling with the frame multiple the processor's patches need (unchanged for a
        processor that resizes frames itself, e.g. LLaVA-OneVision's)."""
        multiple = processor_frame_multiple(processor)
        return self if multiple is None else replace(self, frame_multiple=multiple)

    # --- saving ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VideoSampling:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown video sampling field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write :data:`SAMPLING_FILE` into ``folder``; returns its path."""
        from ssvqa.io import atomic_write_text

        path = Path(folder) / SAMPLING_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, model_or_folder: str | os.PathLike, *, revision: str | None = None) -> VideoSampling | None:
        """The sampling saved with a model or adapter (a local folder or a Hub id), or None.

        Raises:
            SsvqaError: the file exists but is not a valid sampling (names the file).
        """
        from ssvqa.errors import SsvqaError

        path = Path(model_or_folder) / SAMPLING_FILE
        if not Path(model_or_folder).exists():
            path = _hub_file(str(model_or_folder), revision)
        if path is None or not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as error:
            raise SsvqaError(f"{path}: not a valid video sampling ({error})") from error


class DecodedVideos:
    """Each distinct video decoded once: a cache of frames keyed by content.

    A video is its bytes (keyed by their SHA-256, so the same clip embedded in many rows, or
    copied under other names, is one video) or a path (keyed by the resolved path). A video that
    cannot be decoded raises :class:`~ssvqa.errors.VideoError` each time it is asked for, without
    being decoded again.

    >>> videos = DecodedVideos(VideoSampling(num_frames=4))                      # doctest: +SKIP
    >>> videos.frames(row["video_a"]["bytes"], name="a.mp4").shape             # doctest: +SKIP
    torch.Size([4, 3, 84, 112])
    """

    def __init__(self, sampling: VideoSampling, *, num_threads: int = 1):
        self.sampling, self.num_threads = sampling, num_threads
        self._frames: dict[str, Any] = {}
        self._errors: dict[str, Exception] = {}

    @staticmethod
    def key(source) -> str:
        """What identifies a video: the SHA-256 (hex) of its bytes, or ``path:<resolved path>``."""
        import hashlib

        if isinstance(source, (bytes, bytearray, memoryview)):
            return hashlib.sha256(source).hexdigest()
        return f"path:{os.path.realpath(source)}"

    def frames(self, source, name: str | None = None, *, key: str | None = None):
        """The frames of ``source`` (bytes or a path), decoded the first time it is asked for.
        ``key``: :meth:`key` of ``source`` when the caller has it already."""
        key = key or self.key(source)
        if key in self._errors:
            raise self._errors[key]
        if key not in self._frames:
            from ssvqa.errors import VideoError

            try:
                self._frames[key] = self.sampling.decode(source, num_threads=self.num_threads, name=name)
            except VideoError as error:
                self._errors[key] = error
                raise
        return self._frames[key]

    def __getitem__(self, key: str):
        """The frames of a video decoded before, by its :meth:`key`."""
        return self._frames[key]

    def __len__(self) -> int:
        return len(self._frames)


def processor_frame_multiple(processor) -> int | None:
    """Side multiple the processor's patches need: patch size x spatial merge (28 for Qwen2.5-VL,
    32 for Qwen3-VL); None for a processor that resizes frames to its own size (LLaVA-OneVision)."""
    video_processor = getattr(processor, "video_processor", None)
    patch, merge = getattr(video_processor, "patch_size", None), getattr(video_processor, "merge_size", None)
    return int(patch * merge) if patch and merge else None


def saved_sampling(*models_or_folders, revision: str | None = None) -> VideoSampling | None:
    """The first sampling saved with any of ``models_or_folders`` (e.g. the adapter, then its base).

    A loaded model counts too: :func:`ssvqa.modeling.load_ranker` and ``RankTrainer`` attach the
    sampling they know as ``model.video_sampling``.
    """
    for item in models_or_folders:
        if item is None:
            continue
        if isinstance(item, (str, os.PathLike)):
            found = VideoSampling.from_pretrained(item, revision=revision)
        else:
            found = getattr(item, "video_sampling", None)
        if found is not None:
            return found
    return None


def resolve_sampling(
    saved: VideoSampling | None,
    source: str = "the model",
    *,
    processor=None,
    defaults: VideoSampling | None = None,
    **overrides,
) -> VideoSampling:
    """The sampling to use: ``saved`` (else ``defaults``, else :class:`VideoSampling`'s) with the
    explicitly given ``overrides``.

    ``overrides`` are field values, None meaning "not given". Each given value that differs from a
    saved one is used, with one warning that names them all and ``source``. With ``processor``,
    the frame multiple is the processor's.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    if "num_frames" in given and "fps" not in given:
        given["fps"] = None  # a frame count asked for: sample by count, even if the saved sampling is by fps
    base = saved or defaults or VideoSampling()
    changed = {key: value for key, value in given.items() if getattr(base, key) != value}
    if saved is not None and changed:
        warnings.warn(
            f"video sampling overrides what {source} was trained with: "
            + ", ".join(f"{key}={value} (trained: {getattr(saved, key)})" for key, value in changed.items()),
            UserWarning,
            stacklevel=3,
        )
    sampling = replace(base, **given)
    return sampling.with_processor(processor) if processor is not None else sampling


def _hub_file(repo_id: str, revision: str | None) -> Path | None:
    """:data:`SAMPLING_FILE` of a Hub model repository, or None when it has none or cannot be reached."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    try:
        return Path(hf_hub_download(repo_id, SAMPLING_FILE, revision=revision))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, OSError):
        return None
    except Exception:  # noqa: BLE001 - no network (httpx errors): the model itself will fail to load with the reason
        return None
