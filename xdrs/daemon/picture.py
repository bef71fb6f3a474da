"""The daemon's current picture of its clusters, and the checks made before each move.

Inventory and metrics events are folded into one :class:`~xdrs.engine.table.ClusterTable`
per cluster (the engine's own tables), and the daemon's clock time of each host's last
metrics is kept. :meth:`Picture.refuse` says why a move must not start now: the VM is not
where the plan thinks (stale), the destination no longer fits it with current data
(allocation and measured demand, counting the migrations already heading there), or a host's
metrics are older than the allowed age; :meth:`Picture.unseen` names a host without metrics
since the start (the move waits for them).
"""

from __future__ import annotations

import numpy as np

from collectors.events import (
    ActionResult,
    Deleted,
    Event,
    HostEvent,
    MetricBatch,
    Move,
    RulesEvent,
    VmEvent,
)
from xdrs.engine.table import ClusterTable

__all__ = ["Picture"]

RES = ("CPU", "memory", "disk")


class Picture:
    """Where every VM is and what every host carries, from the inventory and metrics topics."""

    def __init__(self) -> None:
        self.tables: dict[str, ClusterTable] = {}
        self.seen_at: dict[tuple[str, str], float] = {}  # (cluster, host) -> clock time

    def table(self, cluster: str) -> ClusterTable:
        t = self.tables.get(cluster)
        if t is None:
            t = self.tables[cluster] = ClusterTable(cluster)
        return t

    def apply(self, e: Event, now: float) -> None:
        """Fold one event in (``now``: the daemon's clock)."""
        if isinstance(e, HostEvent):
            self.table(e.cluster).put_host(e)
        elif isinstance(e, VmEvent):
            self.table(e.cluster).put_vm(e)
        elif isinstance(e, RulesEvent):
            self.table(e.cluster).put_rules(e)
        elif isinstance(e, Deleted):
            t = self.table(e.cluster)
            if e.kind == "host":
                t.delete_host(e.uuid)
            else:
                t.delete_vm(e.uuid)
        elif isinstance(e, MetricBatch) and e.cluster in self.tables:
            self.tables[e.cluster].absorb(e)
            self.seen_at[(e.cluster, e.host)] = now
        elif isinstance(e, ActionResult) and e.status == "ok" and e.cluster in self.tables:
            self.tables[e.cluster].move_vm(e.vm, e.src, e.dst)

    def unseen(self, cluster: str, m: Move) -> str:
        """Which host of ``m`` has had no metrics since the daemon started (``""``: none);
        such a move waits for them (a restarted daemon reads metrics from their end)."""
        for h in (m.src, m.dst):
            if (cluster, h) not in self.seen_at:
                return f"no metrics for host {h} yet"
        return ""

    def host_of(self, cluster: str, vm: str) -> str | None:
        t = self.tables.get(cluster)
        row = None if t is None else t.vm_row.get(vm)
        return None if t is None or row is None else t.vm_host[row]

    def refuse(self, cluster: str, m: Move, incoming: list[str], now: float,
               max_age_s: float) -> str:  # fmt: skip
        """Why ``m`` must not start now (``""``: it may).

        incoming : VMs already migrating to ``m.dst`` (their room is taken).
        """
        t = self.tables.get(cluster)
        if t is None or m.vm not in t.vm_row:
            return f"stale: VM {m.vm} is not in the inventory of {cluster}"
        here = t.vm_host[t.vm_row[m.vm]]
        if here != m.src:
            return f"stale: VM {m.vm} is on {here}, not on {m.src}"
        if m.dst not in t.host_row:
            return f"stale: destination {m.dst} is not in the inventory of {cluster}"
        for h in (m.src, m.dst):
            seen = self.seen_at.get((cluster, h))
            if seen is not None and now - seen > max_age_s:
                return f"metrics of host {h} are {now - seen:.0f} s old (limit {max_age_s:g} s)"
        return self._room(t, m, incoming)

    def _room(self, t: ClusterTable, m: Move, incoming: list[str]) -> str:
        d = t.host_row[m.dst]
        ha = t.host_arrays()
        if ha["maintenance"][d] or ha["disabled"][d]:
            return f"destination {m.dst} is in maintenance or disabled"
        n = t.n_vms
        rows, known = t.placement()
        on = (rows == d) & known
        extra = [t.vm_row[v] for v in (*incoming, m.vm) if v in t.vm_row]
        alloc = t.alloc[:n][on].sum(axis=0) + t.alloc[extra].sum(axis=0)
        cap = ha["alloc_cap"][d]
        for r in np.flatnonzero((cap > 0) & (alloc > cap + 1e-9)).tolist():
            return f"no longer fits: {RES[r]} allocation {alloc[r]:g} > {cap[r]:g} on {m.dst}"
        cpu = float(t.cpu[:n][on].sum() + t.cpu[extra].sum())
        mem = float(t.mem[:n][on].sum() + t.mem[extra].sum())
        phys = ha["phys"][d]
        if cpu > phys[0] + 1e-9:
            return f"no longer fits: CPU demand {cpu:.1f} > {phys[0]:g} cores on {m.dst}"
        if mem > phys[1] + 1e-9:
            return f"no longer fits: memory demand {mem:.0f} > {phys[1]:g} MiB on {m.dst}"
        return ""
