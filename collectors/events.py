"""The xdrs event schema, version 1: versioned orjson messages on Kafka.

Every message is a JSON object with ``"v": 1`` and a ``"type"``. Inventory messages are keyed
``cluster\\x1fkind\\x1fuuid`` so that a compacted topic keeps the latest description of each
object, and partitioned by their cluster part so that one cluster's events stay in order. A
``null`` value (a tombstone) deletes the object its key names. The README documents each
field; :func:`decode` is the single validating entrance used by every consumer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any, Protocol

import orjson

__all__ = [
    "MAX_MESSAGE_BYTES",
    "VERSION",
    "ActionResult",
    "Deleted",
    "Event",
    "EventError",
    "HostEvent",
    "MetricBatch",
    "Recommendation",
    "RulesEvent",
    "Sink",
    "VmEvent",
    "decode",
    "encode",
    "inventory_key",
    "move_result",
]

VERSION = 1
MAX_MESSAGE_BYTES = 4 << 20
SEP = "\x1f"


class EventError(ValueError):
    """A message that fails validation.

    ``str(e)`` is the dead-letter reason; ``category`` is one of a small fixed set (a bounded
    Prometheus label): malformed, oversized, version, type, schema, tombstone.
    """

    def __init__(self, message: str, category: str = "schema") -> None:
        super().__init__(message)
        self.category = category


class Sink(Protocol):
    """Where a collector publishes: ``publish(topic_kind, key, event)``, then ``flush()``."""

    def publish(self, kind: str, key: str, event: Event | None) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HostEvent:
    """A host's description (capacity in the snapshot format's units: cores, MiB, GiB)."""

    cluster: str
    uuid: str
    vcpus: float
    memory_mb: float
    disk_gb: float = 0.0
    hostname: str = ""
    vcpu_reserved: float = 0.0
    memory_mb_reserved: float = 0.0
    disk_gb_reserved: float = 0.0
    vcpu_ratio: float = 1.0
    memory_ratio: float = 1.0
    disk_ratio: float = 1.0
    maintenance: bool = False
    disabled: bool = False
    domain: str = ""
    power_w: list[float] | None = None
    platform: str = ""
    type: str = "host"
    v: int = VERSION


@dataclass(frozen=True, slots=True)
class VmEvent:
    """A VM's configured size and current host (a host uuid of the same cluster)."""

    cluster: str
    uuid: str
    host: str
    vcpus: float
    memory_mb: float
    disk_gb: float = 0.0
    name: str = ""
    pinned: bool = False
    type: str = "vm"
    v: int = VERSION


@dataclass(frozen=True, slots=True)
class RulesEvent:
    """The cluster's whole rule set, in the snapshot extension's ``rules`` format."""

    cluster: str
    rules: list[dict[str, Any]] = field(default_factory=list)
    type: str = "rules"
    v: int = VERSION


@dataclass(frozen=True, slots=True)
class MetricBatch:
    """One host's samples for one interval: parallel lists, one entry per VM.

    ``ts`` is the sample time (seconds since the epoch, or simulated seconds in a replay);
    ``seq`` counts the collector's batches for this host, so a resent batch is recognised.
    """

    cluster: str
    host: str
    ts: float
    seq: int
    vms: list[str]
    cpu_pct: list[float]
    mem_mib: list[float]
    host_cpu_pct: float | None = None
    sent: float = 0.0
    type: str = "metrics"
    v: int = VERSION


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A plan for one cluster: moves in execution order, with wave numbers."""

    id: str
    cluster: str
    trigger: str
    strategy: str
    ts: float
    objective_before: float
    objective_after: float
    moves: list[dict[str, Any]]
    event_ts: float = 0.0
    type: str = "recommendation"
    v: int = VERSION


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an actuator did with one move; ``key`` is the idempotency key."""

    key: str
    recommendation: str
    cluster: str
    vm: str
    src: str
    dst: str
    status: str
    error: str = ""
    ts: float = 0.0
    type: str = "action"
    v: int = VERSION


def move_result(rec: Recommendation, move: dict[str, Any], error: str = "") -> ActionResult:
    """The result of one of ``rec``'s moves: ``ok`` unless ``error`` says why not."""
    return ActionResult(
        key=str(move.get("key", "")),
        recommendation=rec.id,
        cluster=rec.cluster,
        vm=str(move.get("vm", "")),
        src=str(move.get("src", "")),
        dst=str(move.get("dst", "")),
        status="failed" if error else "ok",
        error=error,
        ts=time.time(),
    )


@dataclass(frozen=True, slots=True)
class Deleted:
    """A tombstone on the inventory topic: the object named by the key is gone."""

    cluster: str
    kind: str
    uuid: str
    type: str = "deleted"
    v: int = VERSION


Event = HostEvent | VmEvent | RulesEvent | MetricBatch | Recommendation | ActionResult | Deleted


def inventory_key(cluster: str, kind: str, uuid: str = "") -> str:
    return SEP.join((cluster, kind, uuid))


def encode(event: Event) -> bytes:
    """The message bytes (orjson serialises the dataclass, ``v`` included, natively)."""
    return orjson.dumps(event)


def decode(key: bytes | None, value: bytes | None) -> Event:
    """Validate one message; raises :class:`EventError` naming what is wrong."""
    if value is None:
        return _tombstone(key)
    if len(value) > MAX_MESSAGE_BYTES:
        raise EventError(f"message of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}", "oversized")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise EventError(f"malformed JSON: {e}", "malformed") from None
    if not isinstance(doc, dict):
        raise EventError(f"expected a JSON object, got {type(doc).__name__}", "malformed")
    version = doc.pop("v", None)
    if version != VERSION:
        raise EventError(
            f"v: unsupported schema version {version!r} (this reader: {VERSION})", "version"
        )
    kind = doc.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise EventError(f"type: unknown event type {kind!r}", "type")
    return parser(doc)


def _tombstone(key: bytes | None) -> Deleted:
    parts = (key or b"").decode("utf-8", "replace").split(SEP)
    if len(parts) != 3 or parts[1] not in ("host", "vm") or not parts[0] or not parts[2]:
        raise EventError(f"tombstone with a key that names no host or VM: {key!r}", "tombstone")
    return Deleted(cluster=parts[0], kind=parts[1], uuid=parts[2])


# ---- field checks -------------------------------------------------------------------------


def _str(x: object) -> bool:
    return isinstance(x, str) and 0 < len(x) <= 1024


def _num(x: object) -> bool:
    return type(x) in (int, float) and math.isfinite(x) and x >= 0  # type: ignore[arg-type,operator]


def _pos(x: object) -> bool:
    return _num(x) and x > 0  # type: ignore[operator]


def _bool(x: object) -> bool:
    return isinstance(x, bool)


def _int(x: object) -> bool:
    return type(x) is int and x >= 0


def _text(x: object) -> bool:
    return isinstance(x, str)


def _opt_num(x: object) -> bool:
    return x is None or _num(x)


def _power(x: object) -> bool:
    return x is None or (isinstance(x, list) and len(x) == 11 and all(_num(w) for w in x))


def _rules(x: object) -> bool:
    return isinstance(x, list) and all(isinstance(r, dict) for r in x)


def _moves(x: object) -> bool:
    return isinstance(x, list) and all(isinstance(m, dict) for m in x)


Check = Callable[[object], bool]
EXPECT: dict[Check, str] = {
    _str: "a non-empty string",
    _num: "a finite number >= 0",
    _pos: "a number > 0",
    _bool: "true or false",
    _int: "an integer >= 0",
    _text: "a string",
    _opt_num: "null or a number >= 0",
    _power: "null or 11 numbers >= 0 (watts)",
    _rules: "an array of rule objects",
    _moves: "an array of move objects",
}

HOST: dict[str, Check] = {
    "cluster": _str,
    "uuid": _str,
    "vcpus": _pos,
    "memory_mb": _pos,
    "disk_gb": _num,
    "hostname": _text,
    "vcpu_reserved": _num,
    "memory_mb_reserved": _num,
    "disk_gb_reserved": _num,
    "vcpu_ratio": _pos,
    "memory_ratio": _pos,
    "disk_ratio": _pos,
    "maintenance": _bool,
    "disabled": _bool,
    "domain": _text,
    "power_w": _power,
    "platform": _text,
}
VM: dict[str, Check] = {
    "cluster": _str,
    "uuid": _str,
    "host": _str,
    "vcpus": _pos,
    "memory_mb": _pos,
    "disk_gb": _num,
    "name": _text,
    "pinned": _bool,
}
RULES: dict[str, Check] = {"cluster": _str, "rules": _rules}
RECOMMENDATION: dict[str, Check] = {
    "id": _str,
    "cluster": _str,
    "trigger": _str,
    "strategy": _str,
    "ts": _num,
    "objective_before": _num,
    "objective_after": _num,
    "moves": _moves,
    "event_ts": _num,
}
ACTION: dict[str, Check] = {
    "key": _str,
    "recommendation": _str,
    "cluster": _str,
    "vm": _str,
    "src": _str,
    "dst": _str,
    "status": _str,
    "error": _text,
    "ts": _num,
}


def _checked(doc: dict[str, Any], spec: dict[str, Check], cls: type[Any]) -> Any:
    kind = doc.pop("type")
    extra = sorted(set(doc) - set(spec))
    if extra:
        raise EventError(f"{kind}: unknown field {extra[0]!r}")
    fields = cls.__dataclass_fields__
    for name, check in spec.items():
        if name not in doc:
            f = fields[name]
            if f.default is MISSING and f.default_factory is MISSING:
                raise EventError(f"{kind}.{name}: missing")
            continue
        if not check(doc[name]):
            raise EventError(f"{kind}.{name}: expected {EXPECT[check]}, got {doc[name]!r:.80}")
    return cls(**doc)


def _list(x: object) -> bool:
    return isinstance(x, list)


EXPECT[_list] = "an array"
METRICS: dict[str, Check] = {
    "cluster": _str,
    "host": _str,
    "ts": _num,
    "seq": _int,
    "vms": _list,
    "cpu_pct": _list,
    "mem_mib": _list,
    "host_cpu_pct": _opt_num,
    "sent": _num,
}


def _metrics(doc: dict[str, Any]) -> MetricBatch:
    batch: MetricBatch = _checked(doc, METRICS, MetricBatch)
    n = len(batch.vms)
    if len(batch.cpu_pct) != n or len(batch.mem_mib) != n:
        raise EventError(
            f"metrics: vms, cpu_pct and mem_mib differ in length "
            f"({n}, {len(batch.cpu_pct)}, {len(batch.mem_mib)})"
        )
    if not all(map(_str, batch.vms)):
        raise EventError("metrics.vms: expected VM uuids (non-empty strings)")
    if not all(map(_num, batch.cpu_pct)):
        raise EventError("metrics.cpu_pct: expected finite numbers >= 0")
    if not all(map(_num, batch.mem_mib)):
        raise EventError("metrics.mem_mib: expected finite numbers >= 0")
    return batch


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "host": lambda d: _checked(d, HOST, HostEvent),
    "vm": lambda d: _checked(d, VM, VmEvent),
    "rules": lambda d: _checked(d, RULES, RulesEvent),
    "metrics": _metrics,
    "recommendation": lambda d: _checked(d, RECOMMENDATION, Recommendation),
    "action": lambda d: _checked(d, ACTION, ActionResult),
}
