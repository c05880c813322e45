"""Make ``import torchvision`` work where its native ops cannot load.

Every transformers *video* processor imports torchvision. For torch 2.13 the only torchvision
is 0.28.0, a CUDA build; with the CPU torch its ``_C`` library fails to load, and torchvision's
fake-kernel registrations then fail with ``operator torchvision::nms does not exist``. Defining the
two op schemas it registers fakes for lets the pure-Python parts (``transforms.v2``, ``io``-free
code) import and work. Where the native library loads (GPU machines) this does nothing.

No installed file is touched. Must run before torchvision is first imported, which is why
``ssvqa/__init__.py`` calls it first.
"""

from __future__ import annotations

import importlib.util
import os

_LIBRARY = None  # keep the Library object alive: its schemas vanish when it is collected


def install() -> bool:
    """Define ``torchvision::nms``/``qnms`` schemas if torchvision's native ops are missing.

    Returns True when the shim was installed, False when it was not needed.
    """
    global _LIBRARY
    if _LIBRARY is not None:
        return True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import torch

    if _native_ops_load(spec.submodule_search_locations[0], torch):
        return False
    try:
        torch.ops.torchvision.nms  # noqa: B018 - already defined by someone else
        return False
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor")
    _LIBRARY = lib
    return True


def _native_ops_load(package_dir: str, torch) -> bool:
    """Try to load torchvision's ``_C`` extension the way torchvision itself does."""
    import glob

    candidates = glob.glob(os.path.join(package_dir, "_C*.so"))
    if not candidates:
        return False
    try:
        torch.ops.load_library(candidates[0])
    except (OSError, RuntimeError):
        return False
    return True
