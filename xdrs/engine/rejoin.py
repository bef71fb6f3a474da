"""Rejoining the consumer group when this engine has been assigned nothing for a while.

Under load, kafka-python 3.0's group leader was seen to compute an assignment before its
metadata held the subscribed topics ("No partition metadata for topic ...") and to give
every partition to no one; nothing made it rejoin, and the engine sat idle with its
topics filling (reproduced: 3 of 12 back-to-back runs on a loaded 2-core machine, 0 of
7,200 samples absorbed in 60 s). An engine given no partition by a completed assignment
rejoins after ``first_s``, then after twice as long each time it is given none again (up
to ``max_s``): an engine
idle by design (more engines than partitions) costs the group one rebalance per
``max_s``, and says so in its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Rejoin"]


class Rejoin:
    """When to rejoin. The group's callbacks tell it each completed assignment
    (:meth:`assigned`) and each rebalance begun (:meth:`revoked`); :meth:`due` says whether
    the last completed assignment gave nothing, long enough ago. A rebalance in progress is
    never interrupted: partitions are revoked then, which is not "given none"."""

    def __init__(self, first_s: float = 20.0, max_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.first_s, self.max_s, self._clock = first_s, max_s, clock
        self.wait = first_s
        self._empty_since: float | None = None
        self.count = 0

    def assigned(self, n_partitions: int) -> None:
        if n_partitions:
            self._empty_since, self.wait = None, self.first_s
        else:
            self._empty_since = self._clock()

    def revoked(self) -> None:
        self._empty_since = None

    def due(self) -> bool:
        """Whether to rejoin now (counted; the next wait doubles)."""
        since = self._empty_since
        if since is None or self._clock() - since < self.wait:
            return False
        self._empty_since, self.wait = None, min(self.wait * 2, self.max_s)
        self.count += 1
        return True
