"""The vSphere platform on the event bus: its :class:`Source` and its :class:`Mover`.

:class:`BusCollector` runs the vSphere collector with the event bridge
(:class:`collectors.vsphere.events.EventBridge`) into any :class:`collectors.events.Sink`,
so it knows nothing of Kafka; :func:`bus_mover` is the platform's mover
(:class:`collectors.vsphere.mover.VSphereMover`). Both satisfy the Protocols of
:mod:`collectors.platform`.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from collectors.events import Sink
from collectors.platform import Mover
from collectors.vsphere.collector import CollectorOptions, VSphereCollector
from collectors.vsphere.connection import Connection
from collectors.vsphere.events import BridgeOptions, EventBridge
from collectors.vsphere.mover import VSPHERE_PATIENCE, VSphereMover

__all__ = ["BusCollector", "bus_mover", "run_cycles"]


class BusCollector:
    """A vCenter's inventory, rules, metrics and changes as events on ``sink``.

    ``cycles`` (``0``: until ``stop``) bounds the number of collections, each followed by
    watching for changes until the next one is due (none after the last).
    """

    def __init__(
        self,
        conn: Connection,
        sink: Sink,
        bridge: BridgeOptions,
        options: CollectorOptions,
        cycles: int = 0,
    ) -> None:
        self.bridge = EventBridge(sink, bridge)
        self.collector = VSphereCollector(conn, self.bridge, options)
        self.cycles = cycles

    def run(self, stop: threading.Event) -> None:
        run_cycles(self.collector, self.cycles, stop)

    def summary(self) -> str:
        b = self.bridge
        return (
            f"{self.collector.cycles} collections, {b.published} inventory events, "
            f"{b.tombstones} tombstones, {b.batches} metric batches"
        )


def run_cycles(col: VSphereCollector, cycles: int, stop: threading.Event) -> None:
    """``cycles`` collections (``0``: until ``stop``), watching for changes in between."""
    if not cycles:
        col.run(stop)
        return
    for i in range(cycles):
        if stop.is_set():
            return
        deadline = col.clock() + col.opts.interval_s
        col.cycle()
        if i < cycles - 1:
            col.watch_until(deadline, stop)


def bus_mover(conn: Connection, scope: str, timeout_s: float = 600.0) -> Mover:
    """The moves of ``scope``'s clusters (one vCenter), one RelocateVM_Task each."""
    return VSphereMover(conn, scope, replace(VSPHERE_PATIENCE, timeout_s=timeout_s))
