"""Pair datasets: how they are stored, and the builders that make them.

One module per concept, in the order a build runs:

- :mod:`ssvqa.pairs.sources` -- a builder's inputs (folder, list file, video, dataset), sharded
  across machines, one per content;
- :mod:`ssvqa.pairs.resumable` -- the resumable map a builder runs over its inputs;
- :mod:`ssvqa.pairs.distortion` -- pairs of one source at known distortion severities;
- :mod:`ssvqa.pairs.pseudo` -- pairs of unlabeled videos labelled by quality teachers;
- :mod:`ssvqa.pairs.mos` -- pairs from human mean opinion scores (the supervised baseline);
- :mod:`ssvqa.pairs.hard` -- the pairs a ranker finds hard (self-improvement rounds);
- :mod:`ssvqa.pairs.report` -- what a build did, as its command prints it;
- :mod:`ssvqa.pairs.dataset` -- the pair schema, the folder layout, the card, and loading.

The builders load on first use, so importing one module does not import them all::

    from ssvqa.pairs import build_distortion_pairs, load_pairs

    report = build_distortion_pairs("videos/", "pairs/", types=["h264", "gaussian_blur"])
    pairs = load_pairs("pairs/")  # {"train": Dataset, "test": Dataset}

The ``ssvqa build-*-pairs`` commands (:mod:`ssvqa.commands`) and the repository's builder
scripts are thin layers over these functions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# public name -> module that defines it
_LAZY = {
    "build_distortion_pairs": "ssvqa.pairs.distortion",
    "build_pseudo_pairs": "ssvqa.pairs.pseudo",
    "build_mos_pairs": "ssvqa.pairs.mos",
    "load_pairs": "ssvqa.pairs.dataset",
}
__all__ = list(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from ssvqa.pairs.dataset import load_pairs
    from ssvqa.pairs.distortion import build_distortion_pairs
    from ssvqa.pairs.mos import build_mos_pairs
    from ssvqa.pairs.pseudo import build_pseudo_pairs


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ssvqa.pairs' has no attribute {name!r}")
