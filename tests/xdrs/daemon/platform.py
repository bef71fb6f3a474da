"""A replay platform that outlives the daemon: its record of issued migrations is a file.

``python -m tests.xdrs.daemon.platform BOOTSTRAP PREFIX LOG`` runs a
:class:`RebalanceDaemon` over :class:`FileMover` until SIGTERM or SIGKILL. The mover appends
``start KEY`` to ``LOG`` (flushed and fsync'ed) when it is called, takes 0.3 s, moves the VM
(publishing it on its new host, like the platform's collector), then appends ``end KEY``:
the platform's own account of every migration issued, which survives a killed daemon.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import msgspec

from collectors.events import ActionResult, Move, Recommendation, inventory_key, move_result
from collectors.replay import ReplayCollector
from tests.xdrs.daemon.sim import scenario, steady_trace
from xdrs.bus import BusConfig, Topics
from xdrs.bus.kafka import KafkaSink
from xdrs.daemon.limits import Limits
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon

MOVE_S = 0.3
# a move cut by SIGKILL never lands (this platform dies with the daemon): the restarted
# daemon adopts it and records it failed (Interrupted) at its 5 s timeout
LIMITS = Limits(per_host=2, per_cluster=3, total=4, vm_cooldown_s=0, host_hold_s=0, timeout_s=5.0)


class _Null:
    def publish(self, kind: str, key: str, event: object) -> None:
        pass

    def flush(self) -> None:
        pass


class FileMover:
    def __init__(self, log: Path, sink: KafkaSink) -> None:
        self.log, self.sink = log, sink
        self.dc = ReplayCollector(scenario(), steady_trace(), _Null(), speed=0)
        self._lock = threading.Lock()

    def owns(self, cluster: str) -> bool:
        return cluster in self.dc.clusters

    def _note(self, line: str) -> None:
        with self._lock, self.log.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        self._note(f"start {m.key}")
        time.sleep(MOVE_S)
        ev = msgspec.structs.replace(self.dc.vm_event(self.dc.vm_index[m.vm]), host=m.dst)
        with self._lock:
            self.sink.publish("inventory", inventory_key(ev.cluster, "vm", ev.uuid), ev)
            self.sink.flush()
        self._note(f"end {m.key}")
        return move_result(rec, m)


def main(bootstrap: str, prefix: str, log: str) -> None:
    config = BusConfig(bootstrap, topics=Topics(prefix), fast_groups=True)
    sink = KafkaSink(config)
    daemon = RebalanceDaemon(config, FileMover(Path(log), sink), DaemonOptions(limits=LIMITS))
    daemon.run(threading.Event())


if __name__ == "__main__":
    main(*sys.argv[1:4])
