"""Which implementation runs: the compiled kernels (:mod:`xdrs.sim.kernel`, built ahead of
time by :mod:`xdrs.sim.aot` or JIT-compiled by numba) or the pure numpy reference path. All
give bit-identical results (tests/xdrs/sim/test_kernel.py, test_aot.py).

``XDRS_SIM_KERNEL``: ``numpy`` (the reference path), ``jit`` (numba's JIT kernels), ``aot``
(the ahead-of-time module; an error if it is not built), or unset / ``numba``: the
ahead-of-time module if it is built from the current source, else the JIT kernels, else
(no numba) the numpy path.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from types import ModuleType

from xdrs.sim import aot

__all__ = ["DETECTOR_CODES", "KernelError", "kernel_module"]

# the detectors' codes in the kernels (LRR is LR in CloudSim 3.0.3)
DETECTOR_CODES = {"thr": 0, "iqr": 1, "mad": 2, "lr": 3, "lrr": 3}
_MODES = ("numba", "jit", "aot", "numpy")


class KernelError(RuntimeError):
    """``XDRS_SIM_KERNEL`` names an implementation that is not available."""


@cache
def _jit() -> ModuleType | None:
    try:
        from xdrs.sim import kernel  # noqa: PLC0415  (lazy: numba is heavy and optional)
    except ImportError:
        return None
    return kernel


@cache
def _aot(directory: str) -> ModuleType | None:
    """The ahead-of-time module in ``XDRS_SIM_AOT_DIR`` = ``directory`` ("": the default)."""
    return aot.load(Path(directory) if directory else None)


def kernel_module() -> ModuleType | None:
    """The compiled kernels as ``XDRS_SIM_KERNEL`` selects (see the module), loaded on first
    use; None for the numpy path."""
    mode = os.environ.get("XDRS_SIM_KERNEL", "numba").lower() or "numba"
    if mode not in _MODES:
        raise KernelError(f"XDRS_SIM_KERNEL={mode!r}: expected one of {', '.join(_MODES)}")
    if mode == "numpy":
        return None
    if mode == "jit":
        if (k := _jit()) is None:
            raise KernelError("XDRS_SIM_KERNEL=jit: numba is not installed (the `sim` extra)")
        return k
    if (k := _aot(os.environ.get("XDRS_SIM_AOT_DIR", ""))) is not None:
        return k
    if mode == "aot":
        raise KernelError(
            "XDRS_SIM_KERNEL=aot: no ahead-of-time kernels built from this source in "
            f"{aot.default_dir()}; run `python -m xdrs.sim.aot build`"
        )
    return _jit()
