"""The replay platform's mover: live migrations that take time and sometimes fail.

A migration copies the VM's memory over the link in pre-copy rounds: the first round copies
all of it; while a round runs the guest dirties pages at ``dirty_mib_s``, and the next round
copies what was dirtied, until the remainder is below ``stop_mib`` (or ``max_rounds`` is
reached) and a last stop-and-copy round moves it. A migration fails with probability
``fail_rate`` (a seeded generator), part-way through its copy, with a platform-like reason.
Time is read from, and waited on, a clock passed in: tests run a fast clock, the demo real
time scaled to the replay's speed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from collectors.events import ActionResult, Move, Recommendation, move_result
from collectors.platform import Clock
from collectors.replay.collector import ReplayCollector

__all__ = ["Clock", "LinkModel", "ScaledClock", "TimedMover", "migration_seconds"]

MIB_PER_GBIT = 1e9 / 8 / 2**20  # MiB/s carried by 1 Gbit/s


class ScaledClock:
    """Real time running ``scale`` times faster (``scale`` platform seconds per wall second)."""

    def __init__(self, scale: float = 1.0) -> None:
        if not 0 < scale < float("inf"):
            raise ValueError(f"scale: expected a number > 0, got {scale!r}")
        self.scale = scale
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self.scale

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.scale)


@dataclass(frozen=True)
class LinkModel:
    """How long a migration takes and how often it fails.

    link_gbps : migration link bandwidth per migration, Gbit/s (> 0).
    dirty_mib_s : memory the guest dirties per second while being copied, MiB/s (>= 0).
    stop_mib : remainder small enough for the final stop-and-copy round, MiB (> 0).
    max_rounds : pre-copy rounds before stop-and-copy is forced (>= 1).
    setup_s : fixed cost of a migration (preparation, switch-over), s (>= 0).
    fail_rate : probability that a migration fails, 0..1.
    """

    link_gbps: float = 10.0
    dirty_mib_s: float = 0.0
    stop_mib: float = 64.0
    max_rounds: int = 30
    setup_s: float = 1.0
    fail_rate: float = 0.0

    def validate(self) -> None:
        if not 0 < self.link_gbps < 1e6:
            raise ValueError(f"link_gbps: expected a number in (0, 1e6), got {self.link_gbps}")
        if not 0 <= self.dirty_mib_s < 1e9:
            raise ValueError(f"dirty_mib_s: expected a number >= 0, got {self.dirty_mib_s}")
        if not 0 < self.stop_mib < 1e9:
            raise ValueError(f"stop_mib: expected a number > 0, got {self.stop_mib}")
        if not 1 <= self.max_rounds <= 1000:
            raise ValueError(f"max_rounds: expected 1..1000, got {self.max_rounds}")
        if not 0 <= self.setup_s < 1e6:
            raise ValueError(f"setup_s: expected a number >= 0, got {self.setup_s}")
        if not 0 <= self.fail_rate <= 1:
            raise ValueError(f"fail_rate: expected a number in [0, 1], got {self.fail_rate}")


def migration_seconds(mem_mib: float, model: LinkModel) -> tuple[float, int]:
    """Duration (s) of a pre-copy migration of ``mem_mib`` and its copy rounds (the final
    stop-and-copy included)."""
    bw = model.link_gbps * MIB_PER_GBIT
    left, t, rounds = max(0.0, mem_mib), model.setup_s, 0
    while rounds < model.max_rounds:
        dt = left / bw
        t += dt
        rounds += 1
        left = min(mem_mib, model.dirty_mib_s * dt)
        if left <= model.stop_mib:
            break
    return t + left / bw, rounds + 1


class TimedMover:
    """:class:`collectors.platform.Mover` of the replayed clusters, with time and failures.

    A move is refused at once when the hypervisor would refuse it (VM not on the source,
    destination full or in maintenance); otherwise it takes :func:`migration_seconds` of
    ``clock`` time and then lands (checked again, as the switch-over would) or fails. A key
    applied before returns its first result and changes nothing.
    """

    def __init__(self, collector: ReplayCollector, model: LinkModel, clock: Clock,
                 *, seed: int = 0) -> None:  # fmt: skip
        model.validate()
        self.collector, self.model, self.clock = collector, model, clock
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    def owns(self, cluster: str) -> bool:
        return self.collector.owns(cluster)

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        with self._lock:
            done = self.collector.applied.get(m.key)
            if done is not None:
                return done
            if m.key in self._busy:
                return move_result(rec, m, "InProgress: this key is already migrating")
            refused = self.collector.refusal(rec.cluster, m.vm, m.src, m.dst)
            fails, frac = self._rng.random() < self.model.fail_rate, float(self._rng.random())
            self._busy.add(m.key)
        try:
            if refused:
                return self._record(m.key, move_result(rec, m, refused))
            j = self.collector.vm_index[m.vm]
            seconds, rounds = migration_seconds(float(self.collector.alloc[j, 1]), self.model)
            if fails:
                self.clock.sleep(seconds * frac)
                why = (f"MigrationFailed: simulated failure in copy round "
                       f"{1 + int(frac * rounds)} of {rounds}")  # fmt: skip
                return self._record(m.key, move_result(rec, m, why))
            self.clock.sleep(seconds)
            return self._record(m.key, self.collector.move(rec, m))
        finally:
            with self._lock:
                self._busy.discard(m.key)

    def _record(self, key: str, result: ActionResult) -> ActionResult:
        with self._lock:
            self.collector.applied[key] = result
        return result
