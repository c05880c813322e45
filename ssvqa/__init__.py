"""ssvqa: self-supervised video quality assessment with video LMM rankers.

The main pieces load on first use, so ``import ssvqa`` (and ``ssvqa --help``) stays instant::

    from ssvqa import RankConfig, RankTrainer, DataCollatorForVideoPairs, QualityScorer, VideoSampling, load_ranker
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ssvqa import _torchvision_shim

# Before anything imports torchvision (transformers' video processors do): see the module doc.
_torchvision_shim.install_import_hook()

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "RankConfig": "ssvqa.rank_config",
    "RankTrainer": "ssvqa.trainer",
    "DataCollatorForVideoPairs": "ssvqa.collator",
    "QualityScorer": "ssvqa.scorer",
    "VideoSampling": "ssvqa.sampling",
    "load_ranker": "ssvqa.modeling",
    "compare": "ssvqa.modeling",
}
__all__ = [*_LAZY, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from ssvqa.collator import DataCollatorForVideoPairs
    from ssvqa.modeling import compare, load_ranker
    from ssvqa.sampling import VideoSampling
    from ssvqa.scorer import QualityScorer
    from ssvqa.rank_config import RankConfig
    from ssvqa.trainer import RankTrainer


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'ssvqa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
