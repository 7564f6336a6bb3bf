"""A small, fast base class for writing Jupyter kernels."""

from ._version import __version__
