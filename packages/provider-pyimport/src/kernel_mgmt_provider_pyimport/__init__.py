"""The pyimport provider: ipykernel in this interpreter."""

from ._version import __version__
