"""How patient a mover is: one frozen set of timeouts, tries and waits, validated once.

Both platform movers (Nova live migration, vSphere relocation) wait for a task with a
timeout, poll it, and retry a failed call a bounded number of times with doubling back-off.
The sleep and the clock are part of it, so tests run the waits without waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Patience"]


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


_RULES: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("timeout_s", "a finite number above 0", lambda v: _finite(v) and v > 0),
    ("attempts", "an integer of at least 1", lambda v: type(v) is int and v >= 1),
    ("backoff_s", "a finite number of at least 0", lambda v: _finite(v) and v >= 0),
    ("poll_s", "a finite number above 0", lambda v: _finite(v) and v > 0),
)


@dataclass(frozen=True)
class Patience:
    """Timeouts, tries and waits of one platform mover.

    Parameters
    ----------
    timeout_s : float
        How long one migration may take, seconds.
    attempts : int
        Tries of one call before its failure is reported.
    backoff_s : float
        The wait after the first failed try, seconds; doubled after each further one.
    poll_s : float
        The wait between two polls of a running task, seconds.
    sleep, clock
        ``time.sleep`` and ``time.monotonic`` unless a test gives others.
    """

    timeout_s: float = 600.0
    attempts: int = 3
    backoff_s: float = 1.0
    poll_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        for name, expected, ok in _RULES:
            value = getattr(self, name)
            if not ok(value):
                raise ValueError(f"Patience.{name}: expected {expected}, got {value!r}")

    def back_off(self, attempt: int) -> None:
        """Sleep after failed try number ``attempt`` (from 1): ``backoff_s``, doubled for
        each try before it."""
        self.sleep(self.backoff_s * 2 ** (attempt - 1))
