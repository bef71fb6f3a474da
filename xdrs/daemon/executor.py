"""Execution: the moves to run, started in parallel under the limits, each on a worker thread.

A move starts when the earlier moves of its recommendation that it depends on have
finished (the plan's order, relaxed to what it requires: the same VM's earlier moves, and
the moves off its destination, which make its room), the limits let it (it waits
otherwise), the automation policy in force still lets it (below), and the checks pass (it
is skipped otherwise, with the reason: expired, held back, an earlier move on its hosts
failed, stale, old metrics, a hard rule it would now break, no longer fits; a skip is a
result, so the engine plans again on current data). Its ``started`` record is written,
and confirmed, before the platform is called. A result ends it; no result within
``timeout_s`` records it failed (``Timeout``), its slot kept until the call returns.
Every start and end goes on :attr:`Executor.timeline` (the tests check the limits on it).
A result that comes after the timeout is not lost: a late success is recorded ``ok`` with
the note ``after timeout`` (the record ends true, the picture follows it); a late failure
changes nothing.

**A move adopted at a restart** (:meth:`Executor.adopt`): a migration the previous daemon
started and the platform may still be running (vMotion and Nova's live migration outlive
the daemon that asked for them). It holds its slots like a move in flight (per host, per
cluster, total; it spends no rate token, it is no new start), counts where it lands for
the room and rule checks, and keeps the later moves of its recommendation that depend on
it waiting; the platform is not called for it again. It ends when the picture shows its VM
on the destination (``ok``, note ``adopted after restart``) or when ``timeout_s`` after its
start has passed with the VM elsewhere (``failed``, ``Interrupted``; no back-off: the
daemon failed, not the platform). Its timeline ``start`` is stamped when it is adopted.

**The policy is asked again just before a move starts** (and, for every queued move, as
soon as the policy in force changes: a file reload or ``PUT /v1/automation``), because an
operator who switches a cluster to ``manual`` or a VM to ``never`` means the moves not yet
started too. A move whose VM is now ``never`` moved is skipped (``never: ...``). A move that
now needs approval and has none goes back to waiting for approval, as if it had arrived
under the new policy: it is recorded ``held`` and listed by ``xdrs recommendations list``
and the API (``hold``; an operator may approve it, the approval checking the placement
again). This is what DRS users expect of a switch to manual: nothing more starts on its
own, and the recommendation stays visible for approval instead of vanishing until the next
plan. A move an operator approved runs unless its VM became ``never``; a migration already
started runs to its end.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec

from collectors.events import ActionResult, Move, Recommendation, move_result
from collectors.platform import Mover
from xdrs.daemon.limits import Gate
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import Policy, PolicyFile, ask_reason, verdict

__all__ = ["Executor", "Hold", "Journal", "Stamp", "with_status"]

log = logging.getLogger(__name__)
Journal = Callable[[ActionResult, bool], bool]  # (record, confirm) -> recorded
Hold = Callable[[Recommendation, Move, str], None]  # (rec, move, why): back to approval


@dataclass(frozen=True)
class Stamp:
    """One line of the timeline: ``kind`` is ``start`` or ``end``."""

    t: float
    kind: str
    key: str
    cluster: str
    src: str
    dst: str


@dataclass
class _Run:
    """The moves of one recommendation still to start or finish, in plan order.

    A move waits for the earlier moves of the same VM and for the earlier moves off its
    destination (they make its room); moves off one host, or onto one host, do not wait
    for each other (the checks count the room of migrations in flight).
    """

    rec: Recommendation
    todo: dict[int, Move] = field(default_factory=dict)
    order: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # host -> key of a failed move

    def add(self, i: int, m: Move) -> None:
        self.todo[i] = m
        for k in (("off", m.src), ("vm", m.vm)):
            bisect.insort(self.order.setdefault(k, []), i)

    def ready(self, i: int, m: Move) -> bool:
        off = self.order.get(("off", m.dst))
        return self.order[("vm", m.vm)][0] == i and (not off or off[0] > i)

    def done(self, i: int, m: Move) -> None:
        for k in (("off", m.src), ("vm", m.vm)):
            self.order[k].remove(i)

    def drop(self, i: int, m: Move) -> None:
        """Take a move that will not start out of the queue."""
        self.todo.pop(i)
        self.done(i, m)


@dataclass
class _Flight:
    run: _Run
    index: int
    move: Move
    future: Future[ActionResult]
    since: float
    timed_out: bool = False
    adopted: bool = False  # started before a restart: watched on the picture, no call


class Executor:
    """Runs moves with ``mover`` under ``gate``; every record goes through ``journal``.

    policy : asked again before each move starts (none: only when the moves arrived).
    hold : gives a move that now needs approval back to the approval queue (none: such a
        move is skipped with the reason, and the engine plans again).
    """

    def __init__(self, mover: Mover, gate: Gate, picture: Picture,
                 clock_now: Callable[[], float], journal: Journal,
                 wall: Callable[[], float] = time.time, *, policy: PolicyFile | None = None,
                 hold: Hold | None = None) -> None:  # fmt: skip
        self.mover, self.gate, self.picture = mover, gate, picture
        self.now, self.journal, self.wall = clock_now, journal, wall
        self.policy, self.hold = policy, hold
        self.runs: dict[str, _Run] = {}
        self.flights: dict[str, _Flight] = {}
        self.timeline: list[Stamp] = []
        self.waiting: dict[str, str] = {}  # key -> the limit it waits for
        self.approved: set[str] = set()  # queued keys an operator approved
        self._seen: Policy | None = None  # the policy the queue was last checked against
        self._pool = ThreadPoolExecutor(gate.limits.total, thread_name_prefix="xdrs-move")

    def submit(self, rec: Recommendation, keys: set[str], approved: bool = False) -> None:
        """Queue the moves of ``rec`` whose keys are in ``keys`` (``approved``: by an
        operator, so a policy that asks for approval does not hold them again)."""
        run = self.runs.setdefault(rec.id, _Run(rec))
        for i, m in enumerate(rec.moves):
            if m.key in keys and i not in run.todo:
                run.add(i, m)
                if approved:
                    self.approved.add(m.key)

    def adopt(self, rec: Recommendation, i: int, since: float) -> None:
        """Hold the slots of ``rec.moves[i]``, started before a restart at ``since`` (the
        daemon's clock), until the picture shows it landed or its timeout passes."""
        m, now = rec.moves[i], self.now()
        run = self.runs.setdefault(rec.id, _Run(rec))
        run.add(i, m)
        run.todo.pop(i)  # in flight: the later moves that depend on it wait for it
        self.gate.start(rec.cluster, (m.src, m.dst), now, spend=False)
        self.timeline.append(Stamp(now, "start", m.key, rec.cluster, m.src, m.dst))
        self.flights[m.key] = _Flight(run, i, m, Future(), since, adopted=True)

    def idle(self) -> bool:
        return not self.flights and not any(r.todo for r in self.runs.values())

    def tick(self) -> None:
        """Collect what finished, then start what may start."""
        now = self.now()
        for key, f in list(self.flights.items()):
            if f.adopted:
                self._watch(key, f, now)
            elif f.future.done():
                self._finish(key, f, now)
            elif not f.timed_out and now - f.since > self.gate.limits.timeout_s:
                f.timed_out = True
                self._failed(f, now, f"Timeout: no result after {self.gate.limits.timeout_s:g} s")
        policy = self._recheck()
        for rec_id, run in list(self.runs.items()):
            for i, m in sorted(run.todo.items()):
                if run.ready(i, m):
                    self._try(run, i, m, now, policy)
            if not run.todo and not any(f.run is run for f in self.flights.values()):
                del self.runs[rec_id]

    def _recheck(self) -> Policy | None:
        """The policy in force; when it changed, every queued move is judged by it now."""
        policy = self.policy.current() if self.policy is not None else None
        if policy is not None and policy is not self._seen:
            self._seen = policy
            for run in list(self.runs.values()):
                for i, m in sorted(run.todo.items()):
                    self._consent(run, i, m, policy)
        return policy

    def _try(self, run: _Run, i: int, m: Move, now: float, policy: Policy | None) -> None:
        rec = run.rec
        busy = self.gate.busy(rec.cluster, (m.src, m.dst), now)
        if busy:
            self.waiting[m.key] = busy
            return
        if policy is not None and not self._consent(run, i, m, policy):
            return
        why = self._skip_reason(run, m, now)
        busy = "" if why else self.picture.unseen(rec.cluster, m)
        if busy:
            self.waiting[m.key] = busy
            return
        if why:
            self._skip(run, i, m, why)
            return
        self.waiting.pop(m.key, None)
        started = msgspec.structs.replace(move_result(rec, m), status="started", ts=self.wall())
        if not self.journal(started, True):  # its ts: on the wall clock a restart converts
            return  # not recorded: not started (a restart must know of every issued move)
        self.approved.discard(m.key)
        run.todo.pop(i)
        self.gate.start(rec.cluster, (m.src, m.dst), now)
        self.timeline.append(Stamp(now, "start", m.key, rec.cluster, m.src, m.dst))
        future = self._pool.submit(self._call, rec, m)
        self.flights[m.key] = _Flight(run, i, m, future, now)

    def _consent(self, run: _Run, i: int, m: Move, policy: Policy) -> bool:
        """Whether ``policy`` still lets queued ``m`` start; if not, it leaves the queue:
        skipped (``never``) or back to waiting for approval."""
        v = verdict(policy, run.rec, m)
        if v == "run" or (v == "ask" and m.key in self.approved):
            return True
        if v == "never":
            self._skip(run, i, m, "never: this VM is never moved (set after the move was queued)")
        elif self.hold is None:
            self._skip(run, i, m, f"policy: {ask_reason(policy, run.rec.cluster, m.vm)} since "
                                  "the move was queued; to be planned again")  # fmt: skip
        else:
            self._leave(run, i, m)
            self.hold(run.rec, m, f"awaiting approval: {ask_reason(policy, run.rec.cluster, m.vm)}"
                                  " (changed after the move was queued)")  # fmt: skip
        return False

    def _leave(self, run: _Run, i: int, m: Move) -> None:
        run.drop(i, m)
        self.waiting.pop(m.key, None)
        self.approved.discard(m.key)

    def _skip(self, run: _Run, i: int, m: Move, why: str) -> None:
        self._leave(run, i, m)
        self.journal(with_status(move_result(run.rec, m, why), "skipped"), False)

    def _skip_reason(self, run: _Run, m: Move, now: float) -> str:
        rec = run.rec
        if self.wall() - rec.ts > self.gate.limits.max_age_s:
            return f"expired: recommendation older than {self.gate.limits.max_age_s:g} s"
        for h in (m.src, m.dst):
            if h in run.broken:
                return f"an earlier move of this recommendation on {h} failed ({run.broken[h]})"
        held = self.gate.held(rec.id, m.vm, (m.src, m.dst), now)
        if held:
            return held
        flying = [f.move for f in self.flights.values() if f.run.rec.cluster == rec.cluster]
        incoming = [x.vm for x in flying if x.dst == m.dst]
        return self.picture.refuse(rec.cluster, m, incoming, now, self.gate.limits.metric_age_s,
                                   flying=flying)  # fmt: skip

    def _call(self, rec: Recommendation, m: Move) -> ActionResult:
        try:
            return self.mover.move(rec, m)
        except Exception as e:  # a platform bug must not stop the other moves
            log.exception("move %s failed", m.key)
            return move_result(rec, m, f"internal: {type(e).__name__}: {str(e)[:300]}")

    def _land(self, key: str, f: _Flight, now: float) -> None:
        """Out of flight: its slots freed, the moves that waited for it free to go."""
        del self.flights[key]
        m, rec = f.move, f.run.rec
        self.gate.end(rec.cluster, (m.src, m.dst))
        f.run.done(f.index, m)
        self.timeline.append(Stamp(now, "end", key, rec.cluster, m.src, m.dst))

    def _watch(self, key: str, f: _Flight, now: float) -> None:
        """An adopted move: ended by the picture (landed) or by its timeout."""
        m, rec = f.move, f.run.rec
        there = self.picture.host_of(rec.cluster, m.vm)
        limit = self.gate.limits.timeout_s
        if there != m.dst and now - f.since <= limit:
            return
        self._land(key, f, now)
        if there == m.dst:
            self.gate.moved(rec.id, m.vm, (m.src, m.dst), now)
            r = move_result(rec, m, "")
            r = msgspec.structs.replace(r, error="adopted after restart: the VM is on the "
                                        "destination", ts=self.wall())  # fmt: skip
        else:  # no back-off: the daemon stopped, the platform did not fail
            why = (f"Interrupted: the daemon stopped during the migration; no result "
                   f"{limit:g} s after its start, after restart, VM on "
                   f"{there or 'an unknown host'}")  # fmt: skip
            r = msgspec.structs.replace(move_result(rec, m, why), ts=self.wall())
        self.journal(r, False)

    def _finish(self, key: str, f: _Flight, now: float) -> None:
        self._land(key, f, now)
        m, rec = f.move, f.run.rec
        result = f.future.result()
        if f.timed_out:
            self._late(f, result, now)
            return
        if result.status == "ok":
            self.gate.moved(rec.id, m.vm, (m.src, m.dst), now)
            self.picture.apply(result, now)
            self.journal(result, False)
        else:
            self._failed(f, now, result.error or "failed", result)

    def _failed(self, f: _Flight, now: float, why: str, result: ActionResult | None = None) -> None:
        m, rec = f.move, f.run.rec
        self.gate.failed(rec.id, m.vm, (m.src, m.dst), now)
        f.run.broken.setdefault(m.src, m.key)
        f.run.broken.setdefault(m.dst, m.key)
        self.journal(result or move_result(rec, m, why), False)

    def _late(self, f: _Flight, result: ActionResult, now: float) -> None:
        """A result after the move was recorded failed (``Timeout``): a success is recorded
        ``ok`` (the VM did move; its back-off stays), a failure only logged."""
        log.warning("move %s returned after its timeout: %s %s", f.move.key, result.status,
                    result.error)  # fmt: skip
        if result.status != "ok":
            return
        took = now - f.since
        note = f"after timeout: the platform reported success {took:.0f} s after the start"
        late = msgspec.structs.replace(result, error=note[:4096])
        self.gate.moved(f.run.rec.id, f.move.vm, (f.move.src, f.move.dst), now)
        self.picture.apply(late, now)
        self.journal(late, False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def with_status(r: ActionResult, status: str) -> ActionResult:
    """``r`` with another status (a skip, a hold: the move's result as recorded)."""
    return msgspec.structs.replace(r, status=status)
