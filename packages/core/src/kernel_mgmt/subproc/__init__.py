"""Launching kernels as local subprocesses."""
