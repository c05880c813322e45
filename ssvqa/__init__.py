"""ssvqa: self-supervised video quality assessment with video LMM rankers."""

from ssvqa import _torchvision_shim

# Before anything imports torchvision (transformers' video processors do): see the module doc.
_torchvision_shim.install()

__version__ = "0.1.0"
