"""The conda provider: kernels in conda environments."""

from ._version import __version__
