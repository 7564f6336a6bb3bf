"""The spec provider: kernels described by kernelspec folders."""

from ._version import __version__
