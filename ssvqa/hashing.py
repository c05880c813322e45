"""Stable hashes: the same input gives the same number in every process, run and machine.

Used where work is split or cached without coordination: train/test splits by content, MOS pair
groups, and the fingerprints that key caches and resumable runs on the settings they depend on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_fingerprint(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys, ``default=str``).

    >>> json_fingerprint({"b": 1, "a": [2]}) == json_fingerprint({"a": [2], "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def stable_hash(key: str, seed: int | str = 0) -> int:
    """A 64-bit number from ``seed`` and ``key`` (the first 8 bytes of SHA-256 of ``"seed:key"``)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")


def stable_unit(key: str, seed: int | str = 0) -> float:
    """:func:`stable_hash` as a number in [0, 1): ``key`` falls below a fraction ``f`` for about ``f`` of keys."""
    return stable_hash(key, seed) / 2**64


def stable_bucket(key: str, buckets: int, seed: int | str = 0) -> int:
    """:func:`stable_hash` modulo ``buckets``: one of ``buckets`` groups, about evenly filled."""
    return stable_hash(key, seed) % buckets
