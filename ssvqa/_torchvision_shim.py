"""Make ``import torchvision`` work where its native ops cannot load, in every interpreter of the venv.

Every transformers *video* processor imports torchvision. For torch 2.13 the only torchvision
is 0.28.0, a CUDA build; with the CPU torch its ``_C`` library fails to load, and torchvision's
fake-kernel registrations then fail with ``operator torchvision::nms does not exist``. Defining the
two op schemas it registers fakes for lets the pure-Python parts (``transforms.v2``, ``io``-free
code) import and work. Where the native library loads (GPU machines) this does nothing.

No installed file of torch or torchvision is touched. The fix must run before torchvision is
first imported, so it runs from an import hook (:func:`install_import_hook`): a finder at the front
of ``sys.meta_path`` that, when ``torchvision`` is first looked for, defines the schemas if needed
and then steps aside. The hook costs nothing until then (torch is not imported for it). Two
places install it:

- ``import ssvqa`` (``ssvqa/__init__.py``);
- every interpreter of the environment, through ``ssvqa-torchvision-shim.pth`` in its
  site-packages (:func:`write_pth`, run by ``scripts/bootstrap.sh``), so
  ``python -c "import transformers, evaluate"`` works without importing ssvqa first.
"""

from __future__ import annotations

import importlib.util
import os
import sys

PTH_NAME = "ssvqa-torchvision-shim.pth"
# One line, run by the site module at start-up: cheap (no torch), and silent when ssvqa is gone.
PTH_LINE = (
    "import importlib.util as _u; "
    "_u.find_spec('ssvqa') and __import__('ssvqa._torchvision_shim', fromlist=['_']).install_import_hook()\n"
)

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


class _BeforeTorchvision:
    """A ``sys.meta_path`` finder that runs :func:`install` the first time torchvision is looked for."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            _remove_hook()  # first, so install's own find_spec("torchvision") goes to the real finders
            install()
        return None  # the normal finders import it

    def find_module(self, name, path=None):  # pragma: no cover - legacy protocol, never called on 3.11
        return None


def install_import_hook() -> bool:
    """Arrange for :func:`install` to run just before torchvision is first imported.

    Idempotent. When torchvision is already imported it is too late for a hook: the shim runs now
    (and changes nothing if torchvision loaded). Returns True when a hook is waiting.
    """
    if "torchvision" in sys.modules:
        install()
        return False
    if any(isinstance(finder, _BeforeTorchvision) for finder in sys.meta_path):
        return True
    sys.meta_path.insert(0, _BeforeTorchvision())
    return True


def _remove_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _BeforeTorchvision)]


def write_pth(site_packages: str | os.PathLike | None = None) -> str:
    """Write :data:`PTH_NAME` into ``site_packages`` (default: this interpreter's purelib folder)."""
    import sysconfig

    folder = os.fspath(site_packages or sysconfig.get_paths()["purelib"])
    path = os.path.join(folder, PTH_NAME)
    with open(path, "w") as handle:
        handle.write(PTH_LINE)
    return path


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

