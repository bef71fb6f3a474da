"""Which implementation runs: the compiled kernels (``xdrs.sim.kernel``, numba) or the
pure numpy reference path. Both give bit-identical results (tests/xdrs/sim/test_kernel.py)."""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType

__all__ = ["kernel_module"]


@cache
def _compiled() -> ModuleType | None:
    try:
        from xdrs.sim import kernel  # noqa: PLC0415  (optional: numba, the `sim` extra)
    except ImportError:
        return None
    return kernel


def kernel_module() -> ModuleType | None:
    """The compiled kernels, imported on first use; None if ``XDRS_SIM_KERNEL=numpy`` or
    numba (the ``sim`` extra) is not installed."""
    if os.environ.get("XDRS_SIM_KERNEL", "numba").lower() == "numpy":
        return None
    return _compiled()
