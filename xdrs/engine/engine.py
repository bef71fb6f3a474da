"""The engine: events in, recommendations out. No Kafka here (see :mod:`xdrs.engine.daemon`).

:meth:`Engine.apply` folds one decoded event into the cluster tables; :meth:`Engine.due`
says which clusters need the optimiser and why; :meth:`Engine.recommend` runs the placement
core on a cluster and returns the recommendation to publish. Time comes in as an argument,
so the logic is tested without clocks.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collectors.events import (
    ActionResult,
    Deleted,
    Event,
    HostEvent,
    MetricBatch,
    Move,
    Recommendation,
    RulesEvent,
    VmEvent,
)
from placement import BalanceArgs, EvacuateArgs, OrderArgs, Reason, StateError, order_plan, run
from placement.objectives import imbalance
from placement.strategies.balance import THRESHOLDS
from xdrs.engine.table import ClusterTable
from xdrs.errors import SnapshotError

__all__ = ["Engine", "EngineArgs", "Trigger"]

MAX_DEMAND_WINDOW = 2016  # a week of 5-minute samples
TRIGGERS = ("maintenance", "overload", "imbalance", "periodic")
Trigger = str


@dataclass(frozen=True)
class EngineArgs:
    """When and how the engine optimises.

    threshold : DRS-style migration threshold 1..5 of the balance strategy.
    alpha : EWMA weight of a new demand sample (window of about ``2 / alpha - 1`` samples).
    period_s : optimise every cluster at least this often (``0`` disables).
    cooldown_s : least time between two optimiser runs on one cluster.
    pending_s : how long a published recommendation blocks the next optional one while its
        moves are being applied (results on the actions topic end the wait early).
    max_moves : move budget of one recommendation (mandatory moves are never cut).
    stale_s : a host whose last metrics are this far (sample time) behind its cluster's
        newest is held: no move to or from it (``0``: never).
    demand_window, demand_q : with a window (samples, > 0) a VM's CPU demand is the
        ``demand_q`` quantile of its last ``demand_window`` samples, the forecast that won
        the simulator's backtest (``bench/RESULTS-forecast.md``: 72 samples, 0.95);
        ``0`` (the default) keeps the EWMA of ``alpha``.
    """

    threshold: int = 3
    alpha: float = 0.3
    period_s: float = 300.0
    cooldown_s: float = 5.0
    pending_s: float = 120.0
    max_moves: int | None = 64
    order: OrderArgs = field(default_factory=OrderArgs)
    demand_window: int = 0
    demand_q: float = 0.95
    stale_s: float = 900.0

    def validate(self) -> None:
        if self.threshold not in THRESHOLDS:
            raise ValueError(f"threshold: expected 1..5, got {self.threshold}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha: expected a number in (0, 1], got {self.alpha}")
        for name in ("period_s", "cooldown_s", "pending_s", "stale_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a number >= 0")
        if not 0 <= self.demand_window <= MAX_DEMAND_WINDOW:
            raise ValueError(f"demand_window: expected 0..{MAX_DEMAND_WINDOW} samples, "
                             f"got {self.demand_window}")  # fmt: skip
        if not 0.0 < self.demand_q <= 1.0:
            raise ValueError(f"demand_q: expected a number in (0, 1], got {self.demand_q}")

    def balance(self) -> BalanceArgs:
        return BalanceArgs(threshold=self.threshold, max_moves=self.max_moves)


@dataclass
class _Clock:
    last_run: float = -np.inf
    pending: set[str] = field(default_factory=set)  # idempotency keys not yet reported
    pending_since: float = -np.inf
    dirty: bool = True
    first_sd: float | None = None  # imbalance when demand was first known for every VM
    evacuating: frozenset[str] = frozenset()  # maintenance hosts the last evacuation addressed
    evacuated_at: float = -np.inf


@dataclass
class ClusterView:
    """What the exporter shows of one cluster: an immutable copy made after each loop."""

    hosts: list[str]
    cpu_load: np.ndarray[Any, Any]
    mem_load: np.ndarray[Any, Any]
    capacity: np.ndarray[Any, Any]
    imbalance: float
    target: float
    vms: int
    last_sent: float
    complete: bool  # every VM has had a sample
    initial: float | None  # imbalance when every VM first had a sample


class Engine:
    """All clusters this process owns, and the decision of when to optimise them."""

    def __init__(self, args: EngineArgs | None = None, *, seed: int = 0) -> None:
        self.args = args or EngineArgs()
        self.args.validate()
        self.tables: dict[str, ClusterTable] = {}
        self.clocks: dict[str, _Clock] = {}
        self.seed = seed
        self._ids = itertools.count()
        self.samples = 0

    def table(self, cluster: str) -> ClusterTable:
        t = self.tables.get(cluster)
        if t is None:
            t = self.tables[cluster] = ClusterTable(
                cluster, self.args.alpha, self.args.demand_window, self.args.demand_q
            )
            self.clocks[cluster] = _Clock()
        return t

    def drop(self, cluster: str) -> None:
        self.tables.pop(cluster, None)
        self.clocks.pop(cluster, None)

    # ---- events ---------------------------------------------------------------------------

    def apply(self, e: Event) -> tuple[str, str]:
        """Fold one event in; returns ``(category, reason)`` of what could not be taken.

        ``("", "")`` when all was taken. A metric batch naming VMs the cluster does not know
        is taken for the VMs it knows, and the rest is reported (``unknown_vm``).
        """
        if isinstance(e, MetricBatch):
            return self._metrics(e)
        if isinstance(e, HostEvent | VmEvent | RulesEvent | Deleted):
            self._inventory(e)
        elif isinstance(e, ActionResult):
            self._result(e)
        return "", ""

    def _inventory(self, e: HostEvent | VmEvent | RulesEvent | Deleted) -> None:
        t = self.table(e.cluster)
        self.clocks[e.cluster].dirty = True
        if isinstance(e, HostEvent):
            t.put_host(e)
        elif isinstance(e, VmEvent):
            t.put_vm(e)
        elif isinstance(e, RulesEvent):
            t.put_rules(e)
        elif e.kind == "host":
            t.delete_host(e.uuid)
        else:
            t.delete_vm(e.uuid)

    def _metrics(self, b: MetricBatch) -> tuple[str, str]:
        t = self.tables.get(b.cluster)
        if t is None:
            return "unknown_cluster", f"metrics for unknown cluster {b.cluster!r}"
        got = t.absorb(b)
        self.samples += got.samples
        self.clocks[b.cluster].dirty |= got.samples > 0
        if got.unknown:
            n, first = len(got.unknown), got.unknown[0]
            return "unknown_vm", f"metrics for {n} unknown VM(s) of {b.cluster!r}: {first!r}..."
        return "", ""

    def absorb_late(self, b: MetricBatch) -> list[str]:
        """Samples of an earlier batch for VMs that were unknown then; returns those still
        unknown."""
        t = self.tables.get(b.cluster)
        if t is None:
            return list(b.vms)
        got = t.absorb(b, late=True)
        self.samples += got.samples
        self.clocks[b.cluster].dirty |= got.samples > 0
        return got.unknown

    def _result(self, r: ActionResult) -> None:
        clock = self.clocks.get(r.cluster)
        if clock is None or r.status in ("started", "held"):
            return  # the daemon's journal, not a result: the move is still pending
        clock.pending.discard(r.key)
        clock.dirty = True
        if r.status == "ok":
            # the platform confirmed the move: plan on it now rather than on the old host
            # until the collector's next inventory event says the same
            self.tables[r.cluster].move_vm(r.vm, r.src, r.dst)

    # ---- decisions ------------------------------------------------------------------------

    def due(self, now: float) -> list[tuple[str, Trigger]]:
        """Clusters to optimise now, each with the most urgent trigger that fired."""
        out = []
        for name, clock in self.clocks.items():
            if now - clock.last_run < self.args.cooldown_s:
                continue
            trigger = self._trigger(name, clock, now)
            if trigger:
                out.append((name, trigger))
        return out

    def _trigger(self, name: str, clock: _Clock, now: float) -> Trigger:
        t = self.tables[name]
        if not t.hosts or not t.n_vms:
            return ""
        waiting = clock.pending and now - clock.pending_since < self.args.pending_s
        draining = self._draining(t)
        recent = now - clock.evacuated_at < self.args.pending_s
        if draining and not (recent and draining <= clock.evacuating):
            # a new host in maintenance preempts any pending plan; one already addressed is
            # looked at again after pending_s (its moves failed, or a VM on it cannot move)
            return "maintenance"
        if waiting or not t.seen[: t.n_vms].all():
            return ""  # moves being applied, or demand not known for every VM yet
        periodic = self.args.period_s > 0 and now - clock.last_run >= self.args.period_s
        if not (clock.dirty or periodic):
            return ""
        clock.dirty = False
        return self._load_trigger(t, clock) or ("periodic" if periodic else "")

    @staticmethod
    def _draining(t: ClusterTable) -> frozenset[str]:
        """The hosts in maintenance that still hold VMs."""
        rows, known = t.placement()
        busy = np.unique(rows[known])
        hosts = list(t.hosts)
        return frozenset(hosts[r] for r in busy[t.host_arrays()["maintenance"][busy]])

    def _load_trigger(self, t: ClusterTable, clock: _Clock) -> Trigger:
        cpu, mem = t.loads()
        ha = t.host_arrays()
        args = self.args.balance()
        live = ~(ha["maintenance"] | ha["disabled"] | t.stale_hosts(self.args.stale_s))
        sd = imbalance(np.column_stack([cpu, mem]), args.weights, live)
        if clock.first_sd is None:
            clock.first_sd = sd
        if (((cpu > args.capacity.cpu_target) | (mem > args.capacity.mem_target)) & live).any():
            return "overload"
        return "imbalance" if sd > THRESHOLDS[self.args.threshold][0] else ""

    def recommend(
        self, name: str, trigger: Trigger, now: float, wall: float | None = None
    ) -> Recommendation | None:
        """Run the placement core on one cluster; ``None`` when the plan has no move.

        ``now`` is the monotonic clock of :meth:`due`; ``wall`` (epoch seconds) stamps the
        recommendation.
        """
        wall = time.time() if wall is None else wall
        clock = self.clocks[name]
        clock.last_run = now
        try:
            state = self.tables[name].to_state(self.args.stale_s)
        except (StateError, SnapshotError):
            return None  # an inconsistent picture (e.g. a VM on a deleted host) waits
        strategy = "evacuate" if trigger == "maintenance" else "balance"
        args = EvacuateArgs() if strategy == "evacuate" else self.args.balance()
        plan = run(strategy, state, args, seed=self.seed)
        if trigger == "maintenance":
            clock.evacuating, clock.evacuated_at = self._draining(self.tables[name]), now
        if plan.n_moves == 0:
            return None
        waves = order_plan(plan, state, self.args.order)
        rec_id = f"{name}-{int(wall * 1000)}-{next(self._ids)}"
        moves = _moves(rec_id, state, plan, waves)
        clock.pending = {m.key for m in moves}
        clock.pending_since = now
        return Recommendation(
            id=rec_id, cluster=name, trigger=trigger, strategy=strategy, ts=wall,
            objective_before=float(plan.objective_before),
            objective_after=float(plan.objective_after), moves=moves,
            event_ts=self.tables[name].last_sent,
        )  # fmt: skip

    def view(self, name: str) -> ClusterView | None:
        t = self.tables[name]
        if not t.hosts:
            return None
        cpu, mem = t.loads()
        ha = t.host_arrays()
        live = ~(ha["maintenance"] | ha["disabled"])
        sd = imbalance(np.column_stack([cpu, mem]), self.args.balance().weights, live)
        return ClusterView(list(t.hosts), cpu, mem, ha["phys"].copy(), float(sd),
                           THRESHOLDS[self.args.threshold][0], t.n_vms, t.last_sent,
                           bool(t.seen[: t.n_vms].all()), self.clocks[name].first_sd)  # fmt: skip


def _moves(rec_id: str, state: Any, plan: Any, waves: list[Any]) -> list[Move]:
    wave_of = np.zeros(plan.n_moves, dtype=np.int64)
    for w, wave in enumerate(waves):
        wave_of[wave.start : wave.stop] = w
    h, v = state.host_ids, state.vm_ids
    return [
        Move(key=f"{rec_id}/{i}", vm=v[vm], src=h[s], dst=h[d],
             reason=Reason(r).name.lower(), gain=round(float(g), 6),  # type: ignore[arg-type]
             cost_mib=round(float(c), 1), wave=int(w))
        for i, (vm, s, d, r, g, c, w) in enumerate(zip(
            plan.vm.tolist(), plan.src.tolist(), plan.dst.tolist(), plan.reason.tolist(),
            plan.gain.tolist(), plan.cost_mib.tolist(), wave_of.tolist(), strict=True))
    ]  # fmt: skip
