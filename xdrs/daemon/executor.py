"""Execution: the moves to run, started in parallel under the limits, each on a worker thread.

A move starts when the earlier moves of its recommendation that it depends on have
finished (the plan's order, relaxed to what it requires: the same VM's earlier moves, and
the moves off its destination, which make its room), the limits let it (it waits otherwise), and the
checks pass (it is skipped otherwise, with the reason: expired, held back, an earlier move
on its hosts failed, stale, no longer fits, old metrics). Its ``started`` record is written,
and confirmed, before the platform is called. A result ends it; no result within
``timeout_s`` records it failed (``Timeout``), its slot kept until the call returns.
Every start and end goes on :attr:`Executor.timeline` (the tests check the limits on it).
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

__all__ = ["Executor", "Journal", "Stamp"]

log = logging.getLogger(__name__)
Journal = Callable[[ActionResult, bool], bool]  # (record, confirm) -> recorded


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


@dataclass
class _Flight:
    run: _Run
    index: int
    move: Move
    future: Future[ActionResult]
    since: float
    timed_out: bool = False


class Executor:
    """Runs moves with ``mover`` under ``gate``; every record goes through ``journal``."""

    def __init__(self, mover: Mover, gate: Gate, picture: Picture,
                 clock_now: Callable[[], float], journal: Journal,
                 wall: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.mover, self.gate, self.picture = mover, gate, picture
        self.now, self.journal, self.wall = clock_now, journal, wall
        self.runs: dict[str, _Run] = {}
        self.flights: dict[str, _Flight] = {}
        self.timeline: list[Stamp] = []
        self.waiting: dict[str, str] = {}  # key -> the limit it waits for
        self._pool = ThreadPoolExecutor(gate.limits.total, thread_name_prefix="xdrs-move")

    def submit(self, rec: Recommendation, keys: set[str]) -> None:
        """Queue the moves of ``rec`` whose keys are in ``keys``."""
        run = self.runs.setdefault(rec.id, _Run(rec))
        for i, m in enumerate(rec.moves):
            if m.key in keys and i not in run.todo:
                run.add(i, m)

    def idle(self) -> bool:
        return not self.flights and not any(r.todo for r in self.runs.values())

    def tick(self) -> None:
        """Collect what finished, then start what may start."""
        now = self.now()
        for key, f in list(self.flights.items()):
            if f.future.done():
                self._finish(key, f, now)
            elif not f.timed_out and now - f.since > self.gate.limits.timeout_s:
                f.timed_out = True
                self._failed(f, now, f"Timeout: no result after {self.gate.limits.timeout_s:g} s")
        for rec_id, run in list(self.runs.items()):
            for i, m in sorted(run.todo.items()):
                if run.ready(i, m):
                    self._try(run, i, m, now)
            if not run.todo and not any(f.run is run for f in self.flights.values()):
                del self.runs[rec_id]

    def _try(self, run: _Run, i: int, m: Move, now: float) -> None:
        rec = run.rec
        busy = self.gate.busy(rec.cluster, (m.src, m.dst), now)
        why = "" if busy else self._skip_reason(run, m, now)
        if not busy and not why:
            busy = self.picture.unseen(rec.cluster, m)
        if busy:
            self.waiting[m.key] = busy
            return
        self.waiting.pop(m.key, None)
        if why:
            run.todo.pop(i)
            run.done(i, m)
            self.journal(_status(move_result(rec, m, why), "skipped"), False)
            return
        if not self.journal(_status(move_result(rec, m), "started"), True):
            return  # not recorded: not started (a restart must know of every issued move)
        run.todo.pop(i)
        self.gate.start(rec.cluster, (m.src, m.dst), now)
        self.timeline.append(Stamp(now, "start", m.key, rec.cluster, m.src, m.dst))
        future = self._pool.submit(self._call, rec, m)
        self.flights[m.key] = _Flight(run, i, m, future, now)

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
        incoming = [f.move.vm for f in self.flights.values()
                    if f.move.dst == m.dst and f.run.rec.cluster == rec.cluster]  # fmt: skip
        return self.picture.refuse(rec.cluster, m, incoming, now, self.gate.limits.metric_age_s)

    def _call(self, rec: Recommendation, m: Move) -> ActionResult:
        try:
            return self.mover.move(rec, m)
        except Exception as e:  # a platform bug must not stop the other moves
            log.exception("move %s failed", m.key)
            return move_result(rec, m, f"internal: {type(e).__name__}: {str(e)[:300]}")

    def _finish(self, key: str, f: _Flight, now: float) -> None:
        del self.flights[key]
        m, rec = f.move, f.run.rec
        self.gate.end(rec.cluster, (m.src, m.dst))
        f.run.done(f.index, m)
        self.timeline.append(Stamp(now, "end", key, rec.cluster, m.src, m.dst))
        result = f.future.result()
        if f.timed_out:
            log.warning("move %s returned after its timeout: %s %s", key, result.status,
                        result.error)  # fmt: skip
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

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _status(r: ActionResult, status: str) -> ActionResult:
    return msgspec.structs.replace(r, status=status)
