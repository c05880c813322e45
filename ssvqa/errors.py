"""The project's error types. One per kind of failure a user must act on."""

from __future__ import annotations

import errno
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


class UsageError(SsvqaError, ValueError):
    """Arguments or inputs that cannot work as given (unknown distortion type, missing input file,
    output folder inside the input, ...): the command line prints one line and exits with status 2.
    A ``ValueError``, as the library raised for these before."""


class InputNotFoundError(UsageError, FileNotFoundError):
    """A local file or folder the user named does not exist (or is a broken symlink or a loop)."""


class TransientError(SsvqaError):
    """A failure that says nothing about the input: a killed ffmpeg, a full disk, a permission or
    I/O error. Never recorded as a final skip: a rerun tries the input again.

    >>> TransientError("clip.mp4", "ffmpeg was killed by signal SIGKILL")
    TransientError('clip.mp4: ffmpeg was killed by signal SIGKILL')
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# OSError numbers of failures a rerun can get past (disk full or over quota, permissions, I/O,
# memory, too many open files) rather than a property of the input.
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO", "ENOMEM", "EMFILE", "ENFILE", "EAGAIN", "EINTR")
    if hasattr(errno, name)
)
