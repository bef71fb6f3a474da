"""The metric history recorded on the Kafka metrics topic, as a simulator trace.

Every :class:`~collectors.events.MetricBatch` on the topic (one host's samples at one time)
is a row of samples ``(ts, vm, cpu_pct)``; the rows go through the one resampler
(:func:`collectors.replay.resample.resample`), so the history is handled like any trace
with real timestamps: mean per decision interval, gaps carried forward up to a limit, then
the VM is absent, and a report of what that did.

The read is bounded: only batches whose ``ts`` lies in ``[since, until]`` are kept, the
read ends soon after the end offsets found at its start (at the first empty poll past
them, at most ``DRAIN_S`` later, so a busy topic does not keep it going), and
more than ``max_bytes`` of kept messages is an error that says how to narrow the range. A
batch sent twice (same cluster, host and ``seq``) counts once; messages that do not decode
are counted and skipped, as the engine does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from collectors.events import MetricBatch
from collectors.replay.resample import ResampleError, Samples, resample
from collectors.replay.traces import Trace, TraceError
from xdrs.bus.config import BusConfig
from xdrs.bus.kafka import Record, check_reachable, make_consumer, records

__all__ = ["MAX_HISTORY_BYTES", "History", "HistoryRange", "read_history"]

MAX_HISTORY_BYTES = 512 << 20  # default size limit of the kept messages
DRAIN_S = 10.0  # past the end offsets read at the start, read at most this much longer


@dataclass(frozen=True)
class HistoryRange:
    """Which part of the history to read: sample times ``since..until`` (seconds, as the
    batches' ``ts``), one ``cluster`` or all, at most ``max_bytes`` of kept messages."""

    since: float = -math.inf
    until: float = math.inf
    cluster: str | None = None
    max_bytes: int = MAX_HISTORY_BYTES

    def keeps(self, b: MetricBatch) -> bool:
        in_time = self.since <= b.ts <= self.until
        return in_time and (self.cluster is None or b.cluster == self.cluster)


@dataclass
class _Rows:
    """Samples gathered so far (columns as Python lists; converted once at the end)."""

    names: dict[str, int]
    ts: list[float]
    vm: list[int]
    cpu: list[float]
    seen: set[tuple[str, str, int]]
    kept_bytes: int = 0
    batches: int = 0
    undecodable: int = 0
    duplicates: int = 0

    def add(self, b: MetricBatch) -> None:
        key = (b.cluster, b.host, b.seq)
        if key in self.seen:
            self.duplicates += 1
            return
        self.seen.add(key)
        self.batches += 1
        ids = [self.names.setdefault(v, len(self.names)) for v in b.vms]
        self.ts += [b.ts] * len(ids)
        self.vm += ids
        self.cpu += b.cpu_pct


@dataclass(frozen=True)
class History:
    """The trace read from the topic and what the read kept and skipped."""

    trace: Trace
    batches: int
    duplicates: int
    undecodable: int
    kept_bytes: int

    def summary(self) -> str:
        return (
            f"{self.batches} metric batches ({self.kept_bytes:,} bytes) read, "
            f"{self.duplicates} sent twice counted once, {self.undecodable} undecodable "
            "messages skipped"
        )


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _gather(consumer: KafkaConsumer, topic: str, rng: HistoryRange) -> _Rows:
    rows = _Rows({}, [], [], [], set())
    parts = _partitions(consumer, topic)
    if not parts:
        return rows
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    # Tansu's end offsets count batches, not records: past them, read on until a poll
    # comes back empty (bounded in time, so a busy topic does not keep the read going)
    deadline: float | None = None
    while deadline is None or time.monotonic() < deadline:
        got = 0
        for r in records(consumer, timeout_ms=500):
            got += 1
            _take(rows, r, rng, topic)
        if deadline is None and all(consumer.position(p) >= ends[p] for p in parts):
            deadline = time.monotonic() + DRAIN_S
        elif deadline is not None and not got:
            break
    return rows


def _take(rows: _Rows, r: Record, rng: HistoryRange, topic: str) -> None:
    if not isinstance(r.event, MetricBatch):
        rows.undecodable += r.event is None
        return
    if not rng.keeps(r.event):
        return
    rows.kept_bytes += len(r.value or b"")
    if rows.kept_bytes > rng.max_bytes:
        raise TraceError(
            f"{topic}: more than {rng.max_bytes:,} bytes of metric batches in the range; "
            "narrow it (--since/--until/--cluster) or raise --history-max-mb"
        )
    rows.add(r.event)


def read_history(
    config: BusConfig,
    rng: HistoryRange = HistoryRange(),
    *,
    interval: float = 300.0,
    max_gap: float = 3600.0,
) -> History:
    """The metrics topic of ``config`` as a trace resampled onto ``interval`` seconds.

    Raises
    ------
    TraceError
        No broker, no batch in the range, more than ``rng.max_bytes`` kept, or a span the
        resampler refuses; the message names the topic.
    """
    topic = config.topics.metrics
    try:
        check_reachable(config)
        consumer = make_consumer(config, None)
        try:
            rows = _gather(consumer, topic, rng)
        finally:
            consumer.close()
    except KafkaError as e:
        raise TraceError(f"{topic} at {config.bootstrap}: {type(e).__name__}: {e}") from None
    if not rows.ts:
        raise TraceError(
            f"{topic} at {config.bootstrap}: no metric batch in the range "
            f"({_shown_range(rng)}; {rows.undecodable} undecodable messages skipped)"
        )
    names = tuple(rows.names)
    s = Samples(names, np.array(rows.ts), np.array(rows.vm, dtype=np.int64), np.array(rows.cpu))
    try:
        r = resample(s, interval, max_gap)
    except ResampleError as e:
        raise TraceError(f"{topic}: {e}") from None
    trace = Trace(f"bus:{topic}", names, r.cpu_pct, interval, present=r.present,
                  resampling=r.report)  # fmt: skip
    return History(trace, rows.batches, rows.duplicates, rows.undecodable, rows.kept_bytes)


def _shown_range(rng: HistoryRange) -> str:
    where = f"cluster {rng.cluster!r}, " if rng.cluster is not None else ""
    return f"{where}ts {rng.since:g}..{rng.until:g}"
