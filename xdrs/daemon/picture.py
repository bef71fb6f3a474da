"""The daemon's current picture of its clusters, and the checks made before each move.

Inventory and metrics events are folded into one :class:`~xdrs.engine.table.ClusterTable`
per cluster (the engine's own tables), and the daemon's clock time of each host's last
metrics is kept. :meth:`Picture.refuse` says why a move must not start now: the VM is not
where the plan thinks (stale), the destination no longer fits it with current data
(allocation and measured demand, counting the migrations already heading there), a host's
metrics are older than the allowed age, or the move would now break a hard placement rule
(the VM is pinned; a VM-host ``must``/``must_not`` rule; an anti-affinity group with a
member on the destination; an affinity group whose other members are elsewhere), named in
the reason; :meth:`Picture.unseen` names a host without metrics since the start (the move
waits for them).

The rules are judged by the placement core's own :class:`placement.Rules` masks
(``host_allowed``, ``group_allowed``: what :func:`placement.constraints.reasons` combines),
one rule at a time so the reason can name it, on the current placement in which the
migrations in flight have landed (their VMs will be there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from collectors.events import (
    ActionResult,
    Deleted,
    Event,
    HostEvent,
    MetricBatch,
    Move,
    Rule,
    RulesEvent,
    VmEvent,
)
from xdrs._rules_io import parse_rules
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
               max_age_s: float, flying: Sequence[Move] = ()) -> str:  # fmt: skip
        """Why ``m`` must not start now (``""``: it may).

        incoming : VMs already migrating to ``m.dst`` (their room is taken).
        flying : the migrations in flight in ``cluster`` (the rules see them landed).
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
        return broken_rule(t, m, flying) or self._room(t, m, incoming)

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


def broken_rule(t: ClusterTable, m: Move, flying: Sequence[Move] = ()) -> str:
    """Which hard rule ``m`` would break now, as a skip reason (``""``: none).

    The VM must be in ``t`` on a known host; ``flying`` are counted on their destinations.
    """
    if t.pinned[t.vm_row[m.vm]]:
        return f"rule: VM {m.vm} is pinned"
    there = {f.vm: f.dst for f in flying if f.vm != m.vm}
    for rule in t.rules_raw:
        if m.vm in rule.vms:
            why = _breaks(t, rule, m, there)
            if why:
                return f"rule: moving VM {m.vm} to {m.dst} would break {why}"
    return ""


def _breaks(t: ClusterTable, rule: Rule, m: Move, there: dict[str, str]) -> str:
    """``rule`` as the placement core's masks, over its members on known hosts only."""
    where = {v: there.get(v) or t.vm_host[t.vm_row[v]] for v in rule.vms if v in t.vm_row}
    placed = [v for v, h in where.items() if h in t.host_row]
    members = {v: i for i, v in enumerate(placed)}
    if m.vm not in members:  # on a host the inventory no longer has: nothing to judge
        return ""
    raw = {**rule.as_dict(), "vms": placed}
    if rule.hosts is not None:
        raw["hosts"] = [h for h in dict.fromkeys(rule.hosts) if h in t.host_row]
    rules = parse_rules([raw], t.host_row, members)
    n_h, d = len(t.host_row), t.host_row[m.dst]
    vm = np.array([members[m.vm]], dtype=np.int64)
    if rule.type == "vm_host":
        if rules.host_allowed(vm, n_h)[0, d]:
            return ""
        how = "may not run on" if rule.kind == "must_not" else "must run on its hosts, not"
        return f"VM-host {rule.kind} rule {rule.name!r} (it {how} {m.dst})"
    place = np.array([t.host_row[where[v]] for v in members], dtype=np.int64)
    if rules.group_allowed(vm, place, rules.group_counts(place, n_h))[0, d]:
        return ""
    others = sorted({where[v] for v in members if v != m.vm})
    if rule.type == "anti_affinity":
        mate = next(v for v in members if v != m.vm and where[v] == m.dst)
        return f"anti-affinity rule {rule.name!r} (VM {mate} is on {m.dst})"
    return f"affinity rule {rule.name!r} (its group is on {', '.join(others)})"
