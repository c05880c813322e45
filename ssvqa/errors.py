"""The project's error types. One per kind of failure a user must act on."""

from __future__ import annotations

from pathlib import Path


class SsvqaError(Exception):
    """Base class of every error ssvqa raises on purpose."""


class VideoError(SsvqaError):
    """A video that cannot be used: names the file and says why.

    >>> VideoError("clip.mp4", "0-byte file")
    VideoError('clip.mp4: 0-byte file')
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CheckpointError(SsvqaError):
    """A training checkpoint that cannot be restored completely: names the folder and what is wrong.

    >>> CheckpointError("out/checkpoint-20", "2 tensors missing: lm_head.weight, ...")
    CheckpointError('out/checkpoint-20: 2 tensors missing: lm_head.weight, ...')
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetRootError(SsvqaError, ValueError):
    """A pair-dataset row whose video would be read from outside the dataset's folder (or, for a
    dataset with no local folder, from any path): names the row, the path and why it is refused.

    >>> DatasetRootError("pairs train row 3 video_b", "../secret", "escapes the dataset's root /data/pairs")
    DatasetRootError("pairs train row 3 video_b: video path '../secret' escapes the dataset's root /data/pairs")
    """

    def __init__(self, row: str, path: str | None, reason: str):
        self.row, self.path, self.reason = row, path, reason
        super().__init__(f"{row}: video path {path!r} {reason}")
