"""Small file rules every module shares: atomic writes and JSON fingerprints.

An *atomic* write goes to a hidden temporary file beside the target (``.NAME.tmp-PID``, which
:data:`ssvqa.hub.IGNORE_PATTERNS` never publishes) and is then renamed over it, so a reader (or a
run that was killed and resumes) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def temporary_path(path: str | os.PathLike) -> Path:
    """The hidden sibling a write of ``path`` goes to before it is renamed over ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see the module doc); returns ``path``."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module doc); returns ``path``."""
    path = Path(path)
    temp = temporary_path(path)
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | os.PathLike, value: Any, **dumps_kwargs) -> Path:
    """``value`` as indented JSON (``default=str`` for paths and the like), written atomically."""
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("default", str)
    return atomic_write_text(path, json.dumps(value, **dumps_kwargs) + "\n")


def json_fingerprint(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys, ``default=str``): the same
    settings give the same fingerprint in every process and run."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
