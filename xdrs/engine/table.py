"""One cluster's live picture, kept as growable arrays and updated event by event.

Hosts change rarely, so their arrays are rebuilt from the latest host events when one
changes. VMs live in preallocated arrays with an id -> row map; a deleted VM's row is
filled by the last row. Metric batches update demand in place (an exponentially weighted
moving average per VM), so absorbing a batch costs a dict lookup per sample and a few numpy
operations, never a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collectors.events import HostEvent, MetricBatch, Rule, RulesEvent, VmEvent
from placement import ClusterState, Rules, make_state
from placement.forecast import window_quantile
from xdrs._rules_io import parse_rules
from xdrs.errors import SnapshotError

__all__ = ["Absorbed", "ClusterTable"]

FloatA = NDArray[np.float64]


@dataclass
class Absorbed:
    """What one metric batch did: samples taken, samples for VMs this table does not know."""

    samples: int = 0
    unknown: list[str] = field(default_factory=list)
    stale: bool = False


class ClusterTable:
    """Live arrays of one cluster.

    Parameters
    ----------
    name : str
    alpha : float
        EWMA weight of a new sample (1 keeps only the latest).
    window, q : int, float
        With ``window > 0`` a VM's CPU demand is the ``q`` quantile of its last ``window``
        samples (:func:`placement.forecast.window_quantile`) instead of the EWMA; memory
        stays the EWMA.
    """

    def __init__(self, name: str, alpha: float = 0.3, window: int = 0, q: float = 0.95) -> None:
        self.name = name
        self.alpha = alpha
        self.window, self.q = window, q
        self.hist = np.full((64, window), np.nan)  # last `window` CPU samples, a ring per VM
        self.hpos = np.zeros(64, dtype=np.int64)
        self._cpu_q: FloatA | None = None
        self.hosts: dict[str, HostEvent] = {}
        self.host_row: dict[str, int] = {}
        self.vm_row: dict[str, int] = {}
        self.vm_ids: list[str] = []
        self.vm_host: list[str] = []
        cap = 64
        self.alloc = np.zeros((cap, 3))
        self.cpu = np.zeros(cap)  # smoothed cores busy
        self.mem = np.zeros(cap)  # smoothed MiB resident
        self.seen = np.zeros(cap, dtype=bool)  # has had a sample
        self.pinned = np.zeros(cap, dtype=bool)
        self.rules_raw: list[Rule] = []
        self.last_ts_of: dict[str, float] = {}
        self.last_ts = 0.0
        self.last_sent = 0.0
        self.samples = 0
        self._host_arrays: dict[str, Any] | None = None

    # ---- inventory ------------------------------------------------------------------------

    @property
    def n_vms(self) -> int:
        return len(self.vm_ids)

    def put_host(self, e: HostEvent) -> None:
        if e.uuid not in self.hosts:
            self.host_row[e.uuid] = len(self.host_row)
        self.hosts[e.uuid] = e
        self._host_arrays = None

    def delete_host(self, uuid: str) -> None:
        if self.hosts.pop(uuid, None) is not None:
            self.host_row = {u: i for i, u in enumerate(self.hosts)}
            self._host_arrays = None

    def put_vm(self, e: VmEvent) -> None:
        row = self.vm_row.get(e.uuid)
        if row is None:
            row = self._append(e.uuid, e.host)
        else:
            self.vm_host[row] = e.host
        self.alloc[row] = (e.vcpus, e.memory_mb, e.disk_gb)
        self.pinned[row] = e.pinned

    def _append(self, uuid: str, host: str) -> int:
        row = len(self.vm_ids)
        if row == len(self.alloc):
            self._grow()
        self.vm_row[uuid] = row
        self.vm_ids.append(uuid)
        self.vm_host.append(host)
        self.cpu[row] = self.mem[row] = 0.0
        self.seen[row] = False
        self.hist[row], self.hpos[row] = np.nan, 0
        self._cpu_q = None
        return row

    def _grow(self) -> None:
        n = 2 * len(self.alloc)
        self.alloc = np.resize(self.alloc, (n, 3))
        self.hist = np.resize(self.hist, (n, self.window))
        for name in ("cpu", "mem", "seen", "pinned", "hpos"):
            setattr(self, name, np.resize(getattr(self, name), n))

    def delete_vm(self, uuid: str) -> None:
        row = self.vm_row.pop(uuid, None)
        if row is None:
            return
        last = len(self.vm_ids) - 1
        if row != last:
            moved = self.vm_ids[last]
            self.vm_ids[row], self.vm_host[row] = moved, self.vm_host[last]
            self.vm_row[moved] = row
            for a in (self.alloc, self.cpu, self.mem, self.seen, self.pinned, self.hist,
                      self.hpos):  # fmt: skip
                a[row] = a[last]
        self.vm_ids.pop()
        self.vm_host.pop()
        self._cpu_q = None

    def move_vm(self, uuid: str, src: str, dst: str) -> bool:
        """Record a confirmed migration; ignored unless the VM is known to be on ``src``."""
        row = self.vm_row.get(uuid)
        if row is None or self.vm_host[row] != src:
            return False
        self.vm_host[row] = dst
        return True

    def put_rules(self, e: RulesEvent) -> None:
        self.rules_raw = e.rules

    # ---- metrics --------------------------------------------------------------------------

    def absorb(self, b: MetricBatch, late: bool = False) -> Absorbed:
        """Fold one host's samples into the smoothed demand.

        A batch no newer than the last one taken from its host (a resend after a broker
        fault) is skipped, unless ``late``: the remainder of a batch taken before, for VMs
        whose inventory arrived after it.
        """
        if not late:
            if b.ts <= self.last_ts_of.get(b.host, -np.inf):
                return Absorbed(stale=True)
            self.last_ts_of[b.host] = b.ts
        rows = [self.vm_row.get(u, -1) for u in b.vms]
        idx = np.fromiter(rows, dtype=np.int64, count=len(rows))
        known = idx >= 0
        unknown = [] if known.all() else [u for u, r in zip(b.vms, rows, strict=True) if r < 0]
        idx = idx[known]
        cpu = np.asarray(b.cpu_pct, dtype=np.float64)[known] / 100.0 * self.alloc[idx, 0]
        mem = np.asarray(b.mem_mib, dtype=np.float64)[known]
        a = np.where(self.seen[idx], self.alpha, 1.0)
        self.cpu[idx] += a * (cpu - self.cpu[idx])
        self.mem[idx] += a * (mem - self.mem[idx])
        self.seen[idx] = True
        if self.window:
            self.hist[idx, self.hpos[idx]] = cpu
            self.hpos[idx] = (self.hpos[idx] + 1) % self.window
            self._cpu_q = None
        self.last_ts = max(self.last_ts, b.ts)
        self.last_sent = max(self.last_sent, b.sent)
        self.samples += int(idx.size)
        return Absorbed(samples=int(idx.size), unknown=unknown)

    # ---- views ----------------------------------------------------------------------------

    def host_arrays(self) -> dict[str, Any]:
        """Host-side arrays in ``self.hosts`` order (cached until a host changes)."""
        if self._host_arrays is None:
            self._host_arrays = _host_arrays(list(self.hosts.values()))
        return self._host_arrays

    def placement(self) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """(V,) host row of each VM, and (V,) whether that host is known."""
        rows = np.fromiter((self.host_row.get(h, -1) for h in self.vm_host), np.int64,
                           count=self.n_vms)  # fmt: skip
        return rows, rows >= 0

    def cpu_demand(self) -> FloatA:
        """(V,) CPU demand in cores: the EWMA, or the window quantile (cached until the
        next sample or VM change)."""
        n = self.n_vms
        if not self.window:
            return self.cpu[:n]
        if self._cpu_q is None:
            self._cpu_q = np.nan_to_num(window_quantile(self.hist[:n], self.q), nan=0.0)
        return self._cpu_q

    def loads(self) -> tuple[FloatA, FloatA]:
        """(H,) CPU and memory load of each host (demand over physical size)."""
        ha = self.host_arrays()
        rows, ok = self.placement()
        n = self.n_vms
        h = len(self.hosts)
        cpu = np.bincount(rows[ok], self.cpu_demand()[ok], minlength=h)
        mem = np.bincount(rows[ok], self.mem[:n][ok], minlength=h)
        phys: FloatA = ha["phys"]
        return cpu / phys[:, 0], mem / phys[:, 1]

    def stale_hosts(self, max_age: float) -> NDArray[np.bool_]:
        """(H,) hosts whose last metric batch is older than ``max_age`` (sample time) behind
        the cluster's newest; a host that never sent one is not judged (``0``: none)."""
        if max_age <= 0:
            return np.zeros(len(self.hosts), dtype=bool)
        last = np.array([self.last_ts_of.get(h, np.inf) for h in self.hosts])
        return last < self.last_ts - max_age

    def to_state(self, stale_s: float = 0.0) -> ClusterState:
        """A validated :class:`ClusterState` of the VMs whose host is known. A host whose
        metrics are more than ``stale_s`` behind (:meth:`stale_hosts`) is held: nothing is
        placed on it and its VMs stay, unless it is in maintenance (evacuated anyway).

        Raises
        ------
        placement.StateError, xdrs.errors.SnapshotError
            When the picture is inconsistent (the engine then waits for more events).
        """
        ha = self.host_arrays()
        rows, ok = self.placement()
        n = self.n_vms
        vids = [v for v, k in zip(self.vm_ids, ok.tolist(), strict=True) if k]
        demand = np.column_stack([self.cpu_demand(), self.mem[:n], self.alloc[:n, 2]])[ok]
        held = self.stale_hosts(stale_s) & ~ha["maintenance"]
        pinned = self.pinned[:n][ok] | held[rows[ok]]
        return make_state(
            list(self.hosts), vids, ha["phys"], self.alloc[:n][ok], demand, rows[ok],
            alloc_cap=ha["alloc_cap"], domain=ha["domain"], maintenance=ha["maintenance"],
            disabled=ha["disabled"] | held, pinned=pinned, rules=self._rules(vids),
            power=ha["power"],
        )  # fmt: skip

    def _rules(self, vids: list[str]) -> Rules | None:
        if not self.rules_raw:
            return None
        known = set(vids)
        raw = [{**r.as_dict(), "vms": [v for v in r.vms if v in known]} for r in self.rules_raw]
        try:
            return parse_rules(raw, self.host_row, {v: i for i, v in enumerate(vids)})
        except SnapshotError as e:
            raise SnapshotError(f"cluster {self.name!r} {e}") from None


def _host_arrays(hosts: list[HostEvent]) -> dict[str, Any]:
    size = np.array([(h.vcpus, h.memory_mb, h.disk_gb) for h in hosts], float).reshape(-1, 3)
    reserved = np.array([(h.vcpu_reserved, h.memory_mb_reserved, h.disk_gb_reserved)
                         for h in hosts], float).reshape(-1, 3)  # fmt: skip
    ratio = np.array([(h.vcpu_ratio, h.memory_ratio, h.disk_ratio) for h in hosts],
                     float).reshape(-1, 3)  # fmt: skip
    domains = {d: i for i, d in enumerate(sorted({h.domain for h in hosts}))}
    powered = all(h.power_w is not None for h in hosts) and bool(hosts)
    return {
        "phys": size,
        "alloc_cap": np.maximum(size - reserved, 0.0) * ratio,
        "domain": np.array([domains[h.domain] for h in hosts], dtype=np.int64),
        "maintenance": np.array([h.maintenance for h in hosts], dtype=bool),
        "disabled": np.array([h.disabled for h in hosts], dtype=bool),
        "power": np.array([h.power_w for h in hosts], float) if powered else None,
    }
