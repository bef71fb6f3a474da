"""Wall time of repeated calls, shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["timed"]

T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int) -> tuple[list[float], T]:
    """Seconds of each of ``repeat`` calls of ``fn`` (``perf_counter``), and the last result.

    Only the last result is kept, so a large one (a whole inventory) is held once.

    Raises
    ------
    ValueError
        ``repeat`` below 1: there would be no result to return.
    """
    if repeat < 1:
        raise ValueError(f"repeat: expected at least 1, got {repeat}")
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out
