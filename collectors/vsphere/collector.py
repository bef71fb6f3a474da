"""The collection loop: inventory and metrics every interval, changes in between.

Each cycle collects the inventory (one batched property collection; also how maintenance
mode, sizes, DRS settings and cluster rules are seen, which vCenter may not notify), emits
it to the sink only when it differs from the last one emitted, emits quickStats and (if
enabled) QueryPerf samples, then waits for changes with WaitForUpdatesEx until the next
cycle is due. A dropped session is re-established with back-off; the loop never dies on a
transport error. The sink is where the event layer plugs in (e.g. a Kafka producer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from collectors.vsphere._sdk import vmodl
from collectors.vsphere.connection import TRANSIENT, AuthError, Connection, TLSError, VSphereError
from collectors.vsphere.inventory import collect_inventory
from collectors.vsphere.metrics import PerfCollector, quickstats_samples
from collectors.vsphere.records import Change, Inventory, MetricSample
from collectors.vsphere.watch import UpdateWatcher

__all__ = ["CollectorOptions", "Sink", "VSphereCollector"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives what the collector sees, in order, from the collector's thread."""

    def on_inventory(self, inv: Inventory) -> None: ...

    def on_metrics(self, samples: Sequence[MetricSample]) -> None: ...

    def on_changes(self, changes: Sequence[Change]) -> None: ...


@dataclass(frozen=True)
class CollectorOptions:
    interval_s: float = 20.0  # vCenter's realtime interval
    perf: bool = True  # also QueryPerf (quickStats always)
    perf_batch: int = 250
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0


class VSphereCollector:
    """Collect one vCenter into ``sink`` until ``stop`` is set.

    ``cycles`` counts completed inventory cycles, ``reconnects`` the sessions re-established
    after a failure (both for monitoring and tests).
    """

    def __init__(
        self,
        conn: Connection,
        sink: Sink,
        options: CollectorOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.sink = sink
        self.opts = options or CollectorOptions()
        self.clock = clock
        self.cycles = 0
        self.reconnects = 0
        self._last: tuple[object, ...] | None = None
        self._watcher: UpdateWatcher | None = None
        self._perf: PerfCollector | None = None
        self._generation = -1

    def cycle(self) -> Inventory:
        """One inventory + metrics collection; emits to the sink; returns the inventory."""
        self._ensure_session()
        inv = collect_inventory(self.conn.content, self.conn.spec.url)
        if inv.fingerprint() != self._last:
            self.sink.on_inventory(inv)
            self._last = inv.fingerprint()
        samples = quickstats_samples(inv)
        if self._perf is not None:
            ents = [("host", h.id) for h in inv.hosts] + [
                ("vm", v.id) for v in inv.vms if v.powered_on
            ]
            samples += self._perf.query(ents)
        self.sink.on_metrics(samples)
        self.cycles += 1
        return inv

    def _ensure_session(self) -> None:
        content = self.conn.content  # logs in if needed
        if self.conn.generation != self._generation:
            if self._generation != -1:
                self.reconnects += 1
            self._generation = self.conn.generation
            self._watcher = UpdateWatcher(content)
            self._watcher.start()  # baseline: the inventory carries the full state
            self._perf = (
                PerfCollector(content, batch=self.opts.perf_batch) if self.opts.perf else None
            )

    def watch_until(self, deadline: float, stop: threading.Event | None = None) -> None:
        """Forward changes to the sink until ``deadline`` (a ``clock`` value) or ``stop``."""
        while (left := deadline - self.clock()) > 0 and not (stop and stop.is_set()):
            assert self._watcher is not None
            changes = self._watcher.poll(min(left, 1.0))
            if changes:
                self.sink.on_changes(changes)

    def run(self, stop: threading.Event) -> None:
        """Cycle every ``interval_s``, watching for changes in between, until ``stop``."""
        delay = self.opts.backoff_s
        while not stop.is_set():
            start = self.clock()
            try:
                self.cycle()
                self.watch_until(start + self.opts.interval_s, stop)
                delay = self.opts.backoff_s
            except (AuthError, TLSError):
                raise  # configuration errors: retrying cannot help
            except (*TRANSIENT, VSphereError, OSError, vmodl.MethodFault) as e:
                log.warning("vSphere collection failed (%s: %s); retrying in %.1f s",
                            type(e).__name__, e, delay)  # fmt: skip
                self.conn.invalidate()
                stop.wait(delay)
                delay = min(2 * delay, self.opts.backoff_max_s)
