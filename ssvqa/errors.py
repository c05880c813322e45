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
