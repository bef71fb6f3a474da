"""Approvals through the bus: what waits for an operator, and the operator's decision.

The state is read from the topics, never from the daemon's memory: a recommendation is
pending while one of its moves' last record on the actions topic is ``held``. A decision
is an :class:`~collectors.events.Approval` on the recommendations topic (the daemon reads it
in order after the recommendation); before sending an approval, the placement is checked on
the compacted inventory topic, and a move whose VM is no longer on its source refuses the
approval with the reason (the daemon checks again with its own picture).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import TopicPartition

from collectors.events import (
    ActionResult,
    Approval,
    Event,
    Recommendation,
    VmEvent,
    inventory_key,  # fmt: skip
)
from xdrs.bus.config import BusConfig
from xdrs.bus.kafka import KafkaSink, make_consumer, records
from xdrs.errors import CommandError

__all__ = ["Pending", "decide", "pending", "read_topic"]


@dataclass(frozen=True)
class Pending:
    """A recommendation and the last record of each of its moves (absent: none yet)."""

    rec: Recommendation
    last: dict[str, ActionResult]

    @property
    def held(self) -> list[str]:
        return [m.key for m in self.rec.moves if self._status(m.key) == "held"]

    def _status(self, key: str) -> str:
        r = self.last.get(key)
        return "" if r is None else r.status


def read_topic(config: BusConfig, topic: str) -> Iterator[Event]:
    """Every decodable event of ``topic``, read to its end by assignment."""
    consumer = make_consumer(config, None)
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not parts:
            return
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        while True:
            got = list(records(consumer, timeout_ms=300))
            for r in got:
                if r.event is not None:
                    yield r.event
            if not got and all(consumer.position(p) >= ends[p] for p in parts):
                return
    finally:
        consumer.close()


def pending(config: BusConfig, everything: bool = False) -> list[Pending]:
    """Recommendations with a move waiting for approval (``everything``: all of them)."""
    recs = {e.id: e for e in read_topic(config, config.topics.recommendations)
            if isinstance(e, Recommendation)}  # fmt: skip
    last: dict[str, ActionResult] = {}
    for e in read_topic(config, config.topics.actions):
        if isinstance(e, ActionResult):
            last[e.key] = e
    out = [Pending(r, {m.key: last[m.key] for m in r.moves if m.key in last})
           for r in recs.values()]  # fmt: skip
    return out if everything else [p for p in out if p.held]


def _placement(config: BusConfig) -> dict[tuple[str, str], str]:
    return {(e.cluster, e.uuid): e.host for e in read_topic(config, config.topics.inventory)
            if isinstance(e, VmEvent)}  # fmt: skip


def decide(config: BusConfig, rec_id: str, decision: str, keys: list[str], by: str,
           wait_s: float) -> list[ActionResult]:  # fmt: skip
    """Send a decision on ``rec_id``'s held moves (``keys``: all when empty) and return the
    daemon's records of them (within ``wait_s``). Refusals raise :class:`CommandError`."""
    found = {p.rec.id: p for p in pending(config, everything=True)}
    p = found.get(rec_id)
    if p is None:
        raise CommandError(f"recommendation {rec_id!r}: not on the recommendations topic")
    if not p.held:
        raise CommandError(f"recommendation {rec_id!r}: no move is waiting for approval")
    chosen = keys or p.held
    for k in chosen:
        if k not in p.held:
            raise CommandError(f"move {k!r}: not a move of {rec_id!r} waiting for approval")
    if decision == "approve":
        _check_placement(config, p.rec, set(chosen))
    sink = KafkaSink(config)
    try:
        a = Approval(rec_id, p.rec.cluster, decision, list(keys), by=by, ts=time.time())  # type: ignore[arg-type]
        sink.publish("recommendations", inventory_key(p.rec.cluster, "approval", rec_id), a)
        sink.flush(10)
    finally:
        sink.close(5)
    return _answers(config, set(chosen), wait_s)


def _check_placement(config: BusConfig, rec: Recommendation, keys: set[str]) -> None:
    where = _placement(config)
    for m in rec.moves:
        here = where.get((rec.cluster, m.vm))
        if m.key in keys and here != m.src:
            raise CommandError(
                f"approval of {rec.id} refused: placement changed: VM {m.vm} is on "
                f"{here or 'no known host'}, not on {m.src}"
            )


def _answers(config: BusConfig, keys: set[str], wait_s: float) -> list[ActionResult]:
    deadline = time.monotonic() + wait_s
    while True:
        last: dict[str, ActionResult] = {}
        for e in read_topic(config, config.topics.actions):
            if isinstance(e, ActionResult) and e.key in keys:
                last[e.key] = e
        done = [r for r in last.values() if r.status != "held"]
        if len(done) == len(keys) or time.monotonic() >= deadline:
            return done
        time.sleep(0.2)
