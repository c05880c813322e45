"""Atomic file writes: a reader, or a run that was killed and resumes, sees the old file or the
new one, never half of one.

The bytes go to a hidden temporary file beside the target (``.NAME.tmp-PID``, which
:data:`ssvqa.hub.IGNORE_PATTERNS` never publishes) that is then renamed over it
(:func:`atomic_path` for writers that want a path, e.g. Parquet or ffmpeg).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def temporary_path(path: str | os.PathLike) -> Path:
    """The hidden sibling a write of ``path`` goes to before it is renamed over ``path``."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see the module doc); returns ``path``."""
    return atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed over ``path`` when the block ends
    without an error, removed otherwise. Keeps the suffix (``.clip.tmp-PID.mp4``) for writers that
    choose a format by it.

    >>> with atomic_path(folder / "data.parquet") as temp:            # doctest: +SKIP
    ...     table.to_parquet(temp)
    """
    path = Path(path)
    temp = temporary_path(path)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module doc); returns ``path``."""
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, value: Any, **dumps_kwargs) -> Path:
    """``value`` as indented JSON (``default=str`` for paths and the like), written atomically."""
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("default", str)
    return atomic_write_text(path, json.dumps(value, **dumps_kwargs) + "\n")

