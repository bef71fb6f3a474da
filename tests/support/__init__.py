"""Helpers shared by the tests: the one polling helper, and (in :mod:`tests.support.kafka`)
Apache Kafka started for real."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(cond: Callable[[], object], timeout: float = 30.0, every: float = 0.05) -> bool:
    """Poll ``cond`` until it is truthy or ``timeout`` seconds have passed.

    Returns whether it became true (checked once more at the deadline), so a test writes
    ``assert wait_for(...)`` and fails with its own message rather than a timeout here.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return bool(cond())
