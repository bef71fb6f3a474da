"""The daemon's decisions, without Kafka: recommendations and approvals in, records out.

:meth:`Rebalancer.receive` sorts the moves of a recommendation by the automation policy:
``run`` goes to the :class:`~xdrs.daemon.executor.Executor`, ``ask`` is recorded ``held``
(pending approval), ``never`` is recorded ``skipped``. A newer recommendation of a cluster
supersedes the held moves of older ones (they are recorded ``skipped``). :meth:`decide`
takes an operator's approval or rejection; an approval of a move whose VM is no longer on
the move's source is refused with the reason. A key with any record but ``held`` is never
issued again: :meth:`restore` rebuilds that set (and the held moves) from the topics after a
restart. A move that was started but has no result may still be migrating (the platform's
migration outlives the daemon): with its VM on the destination it is ``ok`` at once; if its
``started`` record is younger than ``timeout_s`` (on the daemon's clock, as below) it is
adopted (:meth:`~xdrs.daemon.executor.Executor.adopt`: it holds its slots, the platform is
not called again, and it ends ``ok`` when its VM shows on the destination or ``failed``,
``Interrupted``, at its timeout); an older one is ``failed``, ``Interrupted``, at once.
It also rebuilds the cooldowns, host holds and back-offs of the
:class:`~xdrs.daemon.limits.Gate` from the recent ``ok`` and ``failed`` records: each
record's wall-clock ``ts`` becomes a time of the daemon's clock (``now - (wall - ts) *
clock_rate``), records older than the longest of ``vm_cooldown_s``, ``host_hold_s`` and
``backoff_s`` are ignored, a move resolved ``ok`` at the restart counts as ended then, and
an interrupted one backs nothing off (the daemon failed, not the platform).

No flapping at plan level: a recommendation whose benefit (``objective_before -
objective_after``) is not positive or is below ``Limits.min_benefit`` times
``objective_before`` has all its moves skipped (``below-margin: ...``) before anything runs
or waits for approval, unless one of its moves is mandatory (:func:`mandatory`).

Skipped moves are re-planned by the engine: a ``skipped`` record is a result, it ends the
engine's wait for the recommendation, and the engine's next trigger plans on current data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from collectors.events import ActionResult, Approval, Move, Recommendation, move_result
from collectors.platform import Mover
from xdrs.daemon.dryrun import describe
from xdrs.daemon.executor import Executor, Journal, with_status
from xdrs.daemon.limits import Gate, Limits
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import Policy, PolicyFile, mandatory, verdict

__all__ = ["FAIL_KINDS", "SKIP_KINDS", "Counts", "Rebalancer", "kind_of"]

log = logging.getLogger(__name__)

FINAL = ("ok", "failed", "skipped")
RECENT = 1024  # recommendations remembered for ``show`` (with their moves' last records)
RECENT_SKIPS = 200  # skipped records remembered (the held-back reasons)


# the skip reasons' first words -> a bounded label set (the exporter's ``why``)
SKIP_KINDS = {"held": "held", "stale": "stale", "expired": "expired", "metrics": "old_metrics",
              "no": "no_room", "destination": "maintenance", "an": "earlier_failed",
              "never": "never", "rejected": "rejected", "superseded": "superseded",
              "approval": "placement_changed", "rule": "rule",
              "below-margin": "below_margin"}  # fmt: skip
FAIL_KINDS = {"Timeout": "timeout", "Interrupted": "interrupted", "internal": "internal"}


def kind_of(error: str, kinds: dict[str, str], default: str) -> str:
    """The label of a reason: its first word looked up in ``kinds``, else ``default``."""
    first = error.split(":", 1)[0].split(" ", 1)[0]
    return kinds.get(first, default)


@dataclass
class Counts:
    """What the daemon recorded, by status; ``skipped`` and ``failed`` also by the kind of
    reason (:data:`SKIP_KINDS`, :data:`FAIL_KINDS`; ``other`` and ``platform`` otherwise)."""

    by_status: dict[str, int] = field(default_factory=dict)
    skipped_by: dict[str, int] = field(default_factory=dict)
    failed_by: dict[str, int] = field(default_factory=dict)

    def add(self, r: ActionResult) -> None:
        self.by_status[r.status] = self.by_status.get(r.status, 0) + 1
        if r.status == "skipped":
            why = kind_of(r.error, SKIP_KINDS, "other")
            self.skipped_by[why] = self.skipped_by.get(why, 0) + 1
        elif r.status == "failed":
            why = kind_of(r.error, FAIL_KINDS, "platform")
            self.failed_by[why] = self.failed_by.get(why, 0) + 1


class Rebalancer:
    """Policy, approvals and execution of the recommendations ``mover`` owns.

    Its public methods take :attr:`lock` (re-entrant): the daemon's loop and the HTTP API's
    threads share it, and whoever reads :attr:`picture` or the views below holds it too.
    """

    def __init__(self, mover: Mover, policy: PolicyFile, limits: Limits, picture: Picture,
                 clock_now: Callable[[], float], journal: Journal,
                 wall: Callable[[], float] = time.time,
                 dry_run: Callable[[str], None] | None = None,
                 clock_rate: float = 1.0) -> None:  # fmt: skip
        """dry_run : given, every recommendation is described to it, line by line
        (:mod:`xdrs.daemon.dryrun`), and nothing is run nor recorded.
        clock_rate : seconds of ``clock_now`` per second of ``wall`` (the replay's scaled
        clock runs faster than real time); converts the records' ``ts`` at a restart."""
        if not 0 < clock_rate < float("inf"):
            raise ValueError(f"clock_rate: expected a number > 0, got {clock_rate!r}")
        self.mover, self.policy, self.picture = mover, policy, picture
        self.dry_run = dry_run
        self.now, self.wall, self.clock_rate = clock_now, wall, clock_rate
        self.counts = Counts()
        self.records: list[ActionResult] = []
        self._journal = journal
        self.executor = Executor(mover, Gate(limits), picture, clock_now, self.journal, wall,
                                 policy=policy, hold=self._hold)  # fmt: skip
        self.known: set[str] = set()  # keys never to issue again
        self.held: dict[str, tuple[Recommendation, set[str]]] = {}  # rec id -> held keys
        self.lock = threading.RLock()
        self.recent: OrderedDict[str, Recommendation] = OrderedDict()
        self.last: dict[str, ActionResult] = {}  # key -> last record (recent recommendations)
        self.skips: deque[ActionResult] = deque(maxlen=RECENT_SKIPS)

    def journal(self, r: ActionResult, confirm: bool) -> bool:
        if not self._journal(r, confirm):
            return False
        if r.status != "held":
            self.known.add(r.key)
        if r.status == "skipped":
            self.skips.append(r)
        self.counts.add(r)
        self.records.append(r)
        if r.recommendation in self.recent:
            self.last[r.key] = r
        return True

    def _remember(self, rec: Recommendation) -> None:
        self.recent[rec.id] = rec
        self.recent.move_to_end(rec.id)
        while len(self.recent) > RECENT:
            _, old = self.recent.popitem(last=False)
            for m in old.moves:
                self.last.pop(m.key, None)

    def receive(self, rec: Recommendation) -> None:
        with self.lock:
            self._receive(rec)

    def _receive(self, rec: Recommendation) -> None:
        if not self.mover.owns(rec.cluster):
            return
        self._remember(rec)
        fresh = [m for m in rec.moves if m.key not in self.known]
        if not fresh or rec.id in self.held or self._short(rec, fresh):
            return
        if self.dry_run is not None:
            gate = self.executor.gate
            for line in describe(rec, self.policy.current(), self.picture, gate, self.now(),
                                 self.wall):  # fmt: skip
                self.dry_run(line)
            return
        self._supersede(rec)
        policy = self.policy.current()
        run, ask = set(), set()
        for m in fresh:
            v = verdict(policy, rec, m)
            if v == "never":
                self.journal(with_status(move_result(rec, m, "never: this VM is never moved"),
                                     "skipped"), False)  # fmt: skip
            elif v == "ask":
                why = "awaiting approval: " + _level_why(policy.level(rec.cluster), m.vm, policy)
                self.journal(with_status(move_result(rec, m, why), "held"), False)
                ask.add(m.key)
            else:
                run.add(m.key)
        if ask:
            self.held[rec.id] = (rec, ask)
        if run:
            self.executor.submit(rec, run)

    def _short(self, rec: Recommendation, fresh: list[Move]) -> bool:
        """Skip ``fresh`` (described, in a dry run) if ``rec`` is below the margin."""
        why = self._below_margin(rec)
        if why and self.dry_run is not None:
            self.dry_run(f"dry-run {rec.id}: cluster {rec.cluster}: would skip its "
                         f"{len(fresh)} moves: {why}")  # fmt: skip
        elif why:
            self._supersede(rec)
            for m in fresh:
                self.journal(with_status(move_result(rec, m, why), "skipped"), False)
        return bool(why)

    def _below_margin(self, rec: Recommendation) -> str:
        """Why ``rec`` does not beat the current state by the margin, or ``""``."""
        margin = self.executor.gate.limits.min_benefit
        if margin <= 0 or any(mandatory(rec, m) for m in rec.moves):
            return ""
        before = rec.objective_before
        benefit = before - rec.objective_after
        if benefit > 0 and benefit >= margin * before:
            return ""
        return (
            f"below-margin: benefit {benefit:.4g} is under {margin:g} of the objective "
            f"{before:.4g} (min_benefit)"
        )

    def _supersede(self, rec: Recommendation) -> None:
        for rid, (old, _keys) in list(self.held.items()):
            if old.cluster == rec.cluster and old.ts <= rec.ts:
                self._drop_held(rid, f"superseded: by recommendation {rec.id}")

    def _drop_held(self, rec_id: str, why: str, keys: Iterable[str] | None = None) -> None:
        rec, held = self.held[rec_id]
        chosen = held if keys is None else held & set(keys)
        for m in rec.moves:
            if m.key in chosen:
                self.journal(with_status(move_result(rec, m, why), "skipped"), False)
        held -= chosen
        if not held:
            del self.held[rec_id]

    def decide(self, a: Approval) -> str:
        """Apply an operator's decision; returns why it was refused (``""``: taken)."""
        with self.lock:
            return self._decide(a)

    def _decide(self, a: Approval) -> str:
        entry = self.held.get(a.recommendation)
        if entry is None:
            return f"recommendation {a.recommendation} has no move waiting for approval"
        rec, held = entry
        unknown = sorted(set(a.keys) - held)
        if unknown:
            return f"move {unknown[0]} of {rec.id} is not waiting for approval"
        keys = set(a.keys) or set(held)
        if a.decision == "reject":
            self._drop_held(rec.id, f"rejected: by {a.by or 'an operator'}", keys)
            return ""
        changed = [m for m in rec.moves if m.key in keys
                   and self.picture.host_of(rec.cluster, m.vm) != m.src]  # fmt: skip
        if changed:
            m = changed[0]
            where = self.picture.host_of(rec.cluster, m.vm) or "an unknown host"
            why = f"approval refused: placement changed: VM {m.vm} is on {where}, not on {m.src}"
            self._drop_held(rec.id, why, keys)
            return why
        held -= keys
        if not held:
            del self.held[rec.id]
        self.executor.submit(rec, keys, approved=True)
        return ""

    def _hold(self, rec: Recommendation, m: Move, why: str) -> None:
        """A queued move that the policy, changed since, wants approved waits again."""
        self.journal(with_status(move_result(rec, m, why), "held"), False)
        self.held.setdefault(rec.id, (rec, set()))[1].add(m.key)

    def tick(self) -> None:
        with self.lock:
            self.executor.tick()

    def restore(self, actions: Iterable[ActionResult], recs: Iterable[Recommendation]) -> None:
        """Rebuild from the topics after a restart (the picture must be read first)."""
        with self.lock:
            self._restore(list(actions), recs)

    def _restore(self, actions: list[ActionResult], recs: Iterable[Recommendation]) -> None:
        status: dict[str, ActionResult] = {}
        for r in actions:
            if r.status in FINAL or r.key not in status or status[r.key].status == "held":
                status[r.key] = r
        self.known |= {k for k, r in status.items() if r.status != "held"}
        self._marks(actions)
        by_id = {rec.id: rec for rec in recs}
        started = [r for r in status.values() if r.status == "started"]
        owned = {c: self._owns(c) for c in {r.cluster for r in started}}
        for r in started:  # another daemon's move (another platform) is its own to settle
            if owned[r.cluster] and self.dry_run is None:
                self._resolve(r, by_id.get(r.recommendation))
        for rec in by_id.values():
            keys = {m.key for m in rec.moves if m.key in status and status[m.key].status == "held"}
            try:
                ours = bool(keys) and self.mover.owns(rec.cluster)
            except Exception:  # as when it arrived: one recommendation must not stop a restart
                log.exception("restoring %s failed", rec.id)
                continue
            if ours:
                self.held[rec.id] = (rec, keys)
                self._remember(rec)
                self.last.update((k, status[k]) for k in keys)

    def _marks(self, actions: list[ActionResult]) -> None:
        """The gate's cooldowns, holds and back-offs from the recent results of our clusters,
        on the daemon's clock (the latest record of a VM or host wins, as when they came)."""
        gate = self.executor.gate
        lim = gate.limits
        longest = max(lim.vm_cooldown_s, lim.host_hold_s, lim.backoff_s)
        now, wall = self.now(), self.wall()
        ours: dict[str, bool] = {}
        for r in sorted(filter(_marks_gate, actions), key=_ts):
            age = max(0.0, wall - r.ts) * self.clock_rate  # a clock ahead of ours: now
            if age >= longest:
                continue
            if r.cluster not in ours:
                ours[r.cluster] = self._owns(r.cluster)
            if ours[r.cluster]:
                mark = gate.moved if r.status == "ok" else gate.failed
                mark(r.recommendation, r.vm, (r.src, r.dst), now - age)

    def _owns(self, cluster: str) -> bool:
        try:
            return self.mover.owns(cluster)
        except Exception:  # as when it arrived: one record must not stop a restart
            log.exception("restoring the records of %s failed", cluster)
            return False

    def _resolve(self, r: ActionResult, rec: Recommendation | None) -> None:
        """A move started before the restart, without a result: adopted if it may still be
        migrating (younger than its timeout, its recommendation known), else ended now by
        the picture. An interrupted move backs nothing off: the daemon failed, not the
        platform."""
        there = self.picture.host_of(r.cluster, r.vm)
        age = max(0.0, self.wall() - r.ts) * self.clock_rate  # a clock ahead of ours: now
        index = _index(rec, r) if there != r.dst else None
        if rec is not None and index is not None and age < self.executor.gate.limits.timeout_s:
            self.executor.adopt(rec, index, self.now() - age)
        elif there == r.dst:  # stamped now: a later restart's cooldown counts from here
            self.journal(msgspec.structs.replace(r, status="ok", ts=self.wall()), False)
            self.executor.gate.moved(r.recommendation, r.vm, (r.src, r.dst), self.now())
        else:
            why = (f"Interrupted: the daemon stopped during the migration; VM on "
                   f"{there or 'an unknown host'}")  # fmt: skip
            self.journal(msgspec.structs.replace(r, status="failed", error=why, ts=self.wall()),
                         False)  # fmt: skip

    def close(self) -> None:
        self.executor.close()


def _index(rec: Recommendation | None, r: ActionResult) -> int | None:
    """The index of ``r``'s move in ``rec`` (the same VM and hosts), or None."""
    for i, m in enumerate(rec.moves if rec is not None else ()):
        if m.key == r.key:
            return i if (m.vm, m.src, m.dst) == (r.vm, r.src, r.dst) else None
    return None


def _ts(r: ActionResult) -> float:
    return r.ts


def _marks_gate(r: ActionResult) -> bool:
    """A result that set a cooldown or a back-off when it came (an interrupted one did not)."""
    return r.status == "ok" or (
        r.status == "failed" and kind_of(r.error, FAIL_KINDS, "") != "interrupted"
    )


def _level_why(level: str, vm: str, policy: Policy) -> str:
    if policy.vms.get(vm) == "ask":
        return f"VM {vm} is set to always ask"
    return f"cluster automation is {level}"
