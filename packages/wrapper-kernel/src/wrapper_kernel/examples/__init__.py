"""Example kernels: ``python -m wrapper_kernel.examples.echo`` and ``...examples.plot``."""
