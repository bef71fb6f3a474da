"""The xdrs event schema, version 1: typed structs, JSON on Kafka.

Every message is a JSON object with ``"v": 1`` and a ``"type"``. Inventory messages are keyed
``cluster\\x1fkind\\x1fuuid`` so that a compacted topic keeps the latest description of each
object, and partitioned by their cluster part so that one cluster's events stay in order. A
``null`` value (a tombstone) deletes the object its key names. Each type is declared once
below as a msgspec ``Struct`` (fields, bounds, defaults); the README documents each field.
:func:`decode` is the single validating entrance used by every consumer: what it returns is
typed and checked, so consumers read attributes and re-check nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Literal, Protocol, TypeVar, get_args

import msgspec
from msgspec import Meta, Struct

from collectors._schema import (
    Amount,
    Count,
    Name,
    Percent,
    Signed,
    Size,
    Text,
    Version,
    explain,
    show,
)

__all__ = [
    "CATEGORIES",
    "MAX_MESSAGE_BYTES",
    "VERSION",
    "ActionResult",
    "Approval",
    "DeadLetter",
    "Deleted",
    "Event",
    "EventError",
    "HostEvent",
    "MetricBatch",
    "Move",
    "Recommendation",
    "Rule",
    "RulesEvent",
    "Sink",
    "VmEvent",
    "decode",
    "encode",
    "inventory_key",
    "move_result",
]

VERSION: Literal[1] = 1
MAX_MESSAGE_BYTES = 4 << 20
SEP = "\x1f"
Category = Literal["malformed", "oversized", "version", "type", "schema", "tombstone",
                   "unknown_cluster", "unknown_vm", "internal"]  # fmt: skip
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
# placement.Reason in lower case (a test holds the two together)
MoveReason = Literal["rule", "maintenance", "capacity", "overload", "imbalance",
                     "consolidation", "make_room"]  # fmt: skip
RuleKind = Literal["must", "must_not", "should", "should_not"]  # placement.rules.KIND_NAMES


class EventError(ValueError):
    """A message that fails validation.

    ``str(e)`` is the dead-letter reason, naming the field; ``category`` is one of
    :data:`CATEGORIES` (a bounded Prometheus label).
    """

    def __init__(self, message: str, category: str = "schema") -> None:
        super().__init__(message)
        self.category = category


class Sink(Protocol):
    """Where a collector publishes: ``publish(topic_kind, key, event)``, then ``flush()``."""

    def publish(self, kind: str, key: str, event: Event | None) -> None: ...

    def flush(self) -> None: ...


class _Event(Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Common configuration: immutable, unknown fields refused, tagged by ``type``."""


class HostEvent(_Event, frozen=True, tag="host"):
    """A host's description (capacity in the snapshot format's units: cores, MiB, GiB)."""

    cluster: Name
    uuid: Name
    vcpus: Size
    memory_mb: Size
    disk_gb: Amount = 0.0
    hostname: Text = ""
    vcpu_reserved: Amount = 0.0
    memory_mb_reserved: Amount = 0.0
    disk_gb_reserved: Amount = 0.0
    vcpu_ratio: Size = 1.0
    memory_ratio: Size = 1.0
    disk_ratio: Size = 1.0
    maintenance: bool = False
    disabled: bool = False
    domain: Text = ""
    power_w: Annotated[list[Amount], Meta(min_length=11, max_length=11)] | None = None
    platform: Text = ""
    v: Version = VERSION

    def __post_init__(self) -> None:
        for size, reserved in (("vcpus", "vcpu_reserved"), ("memory_mb", "memory_mb_reserved"),
                               ("disk_gb", "disk_gb_reserved")):  # fmt: skip
            if getattr(self, reserved) > getattr(self, size):
                raise ValueError(
                    f"{reserved}: {getattr(self, reserved):g} exceeds {size} "
                    f"{getattr(self, size):g}"
                )


class VmEvent(_Event, frozen=True, tag="vm"):
    """A VM's configured size and current host (a host uuid of the same cluster)."""

    cluster: Name
    uuid: Name
    host: Name
    vcpus: Size
    memory_mb: Size
    disk_gb: Amount = 0.0
    name: Text = ""
    pinned: bool = False
    v: Version = VERSION


class Rule(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One placement rule, in the snapshot extension's ``rules`` format."""

    name: Name
    type: Literal["affinity", "anti_affinity", "vm_host"]
    vms: list[Name]
    kind: RuleKind | None = None
    hosts: list[Name] | None = None

    def __post_init__(self) -> None:
        if len(set(self.vms)) != len(self.vms):
            raise ValueError("vms: the rule lists a VM twice")
        host_rule = self.type == "vm_host"
        if host_rule and (self.kind is None or self.hosts is None):
            raise ValueError("kind: a vm_host rule needs kind and hosts")
        if not host_rule and (self.kind is not None or self.hosts is not None):
            raise ValueError(f"type: {self.type} rules take no kind or hosts")

    def as_dict(self) -> dict[str, object]:
        """The rule as the snapshot format's JSON object."""
        out: dict[str, object] = msgspec.to_builtins(self)
        return out


class RulesEvent(_Event, frozen=True, tag="rules"):
    """The cluster's whole rule set; rule names are unique."""

    cluster: Name
    rules: list[Rule] = []
    v: Version = VERSION

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rules: two rules share a name")


class MetricBatch(_Event, frozen=True, tag="metrics"):
    """One host's samples for one interval: parallel lists, one entry per VM.

    ``ts`` is the sample time (seconds since the epoch, or simulated seconds in a replay);
    ``seq`` counts the collector's batches for this host, so a resent batch is recognised.
    ``cpu_pct`` is percent of each VM's own vCPUs (0..100), ``mem_mib`` resident MiB.
    """

    cluster: Name
    host: Name
    ts: Amount
    seq: Count
    vms: list[Name]
    cpu_pct: list[Percent]
    mem_mib: list[Amount]
    host_cpu_pct: Amount | None = None
    sent: Amount = 0.0
    v: Version = VERSION

    def __post_init__(self) -> None:
        n = len(self.vms)
        if len(self.cpu_pct) != n or len(self.mem_mib) != n:
            raise ValueError(
                f"vms, cpu_pct and mem_mib differ in length ({n}, {len(self.cpu_pct)}, "
                f"{len(self.mem_mib)})"
            )
        if len(set(self.vms)) != n:
            raise ValueError("vms: a VM appears twice in one batch")


class Move(Struct, frozen=True, forbid_unknown_fields=True):
    """One recommended live migration; ``key`` (``recommendation/index``) is idempotent."""

    key: Name
    vm: Name
    src: Name
    dst: Name
    reason: MoveReason
    gain: Signed = 0.0
    cost_mib: Amount = 0.0
    wave: Count = 0


class Recommendation(_Event, frozen=True, tag="recommendation"):
    """A plan for one cluster: moves in execution order, with wave numbers."""

    id: Name
    cluster: Name
    trigger: Name
    strategy: Name
    ts: Amount
    objective_before: Amount
    objective_after: Amount
    moves: list[Move]
    event_ts: Amount = 0.0
    v: Version = VERSION


class ActionResult(_Event, frozen=True, tag="action"):
    """What an actuator did with one move; ``key`` is the idempotency key.

    ``status``: ``ok`` / ``failed`` (the platform's result), ``skipped`` (not run, ``error``
    says why: stale, no longer fits, old metrics, held back, rejected), and two records of
    the rebalancing daemon that are not results: ``started`` (written before the platform
    is called, so a restart never issues the move again) and ``held`` (waiting for an
    operator's approval).
    """

    key: Name
    recommendation: Name
    cluster: Name
    vm: Name
    src: Name
    dst: Name
    status: Literal["ok", "failed", "skipped", "started", "held"]
    error: Text = ""
    ts: Amount = 0.0
    v: Version = VERSION


class Approval(_Event, frozen=True, tag="approval"):
    """An operator's decision on a recommendation's held moves (on the recommendations
    topic, keyed ``cluster\x1fapproval\x1frecommendation``); ``keys`` empty: all of them."""

    recommendation: Name
    cluster: Name
    decision: Literal["approve", "reject"]
    keys: list[Name] = msgspec.field(default_factory=list)
    by: Text = ""
    ts: Amount = 0.0
    v: Version = VERSION


class Deleted(_Event, frozen=True, tag="deleted"):
    """A tombstone on the inventory topic: the object named by the key is gone."""

    cluster: Name
    kind: Literal["host", "vm"]
    uuid: Name
    v: Version = VERSION


class DeadLetter(_Event, frozen=True, tag="dead_letter"):
    """A message that could not be taken, with why (on the dead-letter topic)."""

    topic: Text
    partition: Count
    offset: Count
    key: Text
    reason: Text
    category: Category
    payload: str  # the first 64 KiB of the message, decoded leniently
    ts: Amount = 0.0
    v: Version = VERSION


Event = (
    HostEvent | VmEvent | RulesEvent | MetricBatch | Recommendation | ActionResult | Approval
    | Deleted | DeadLetter
)  # fmt: skip
TYPES = frozenset(str(t.__struct_config__.tag) for t in get_args(Event))
T = TypeVar("T")


def move_result(rec: Recommendation, move: Move, error: str = "") -> ActionResult:
    """The result of one of ``rec``'s moves: ``ok`` unless ``error`` says why not."""
    return ActionResult(
        key=move.key,
        recommendation=rec.id,
        cluster=rec.cluster,
        vm=move.vm,
        src=move.src,
        dst=move.dst,
        status="failed" if error else "ok",
        error=error[:4096],
        ts=time.time(),
    )


def inventory_key(cluster: str, kind: str, uuid: str = "") -> str:
    return SEP.join((cluster, kind, uuid))


_ENCODER = msgspec.json.Encoder()


def encode(event: Event) -> bytes:
    """The message bytes (``type`` and ``v`` included)."""
    return _ENCODER.encode(event)


class _Envelope(Struct):
    """What every message must say before its type is looked at: raw, so nothing is built."""

    v: msgspec.Raw = msgspec.Raw(b"")
    type: msgspec.Raw = msgspec.Raw(b"")


_EVENT = msgspec.json.Decoder(Event)
_ENVELOPE = msgspec.json.Decoder(_Envelope)


def decode(key: bytes | None, value: bytes | None) -> Event:
    """Validate one message; raises :class:`EventError` naming what is wrong.

    Nothing else escapes: JSON nested past the recursion limit is malformed, and every
    message's version and type are checked before its fields.
    """
    if value is None:
        return _tombstone(key)
    if len(value) > MAX_MESSAGE_BYTES:
        raise EventError(f"message of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}", "oversized")
    kind = _check_envelope(_safely(_ENVELOPE.decode, value, "message"))
    event: Event = _safely(_EVENT.decode, value, kind)
    return event


def _safely(decoder: Callable[[bytes], T], value: bytes, where: str) -> T:
    """``decoder(value)``, its failures turned into :class:`EventError` naming ``where``."""
    try:
        return decoder(value)
    except msgspec.ValidationError as e:
        if where == "message":  # only the top level can fail the envelope: not an object
            raise EventError(f"expected a JSON object: {str(e)[:100]}", "malformed") from None
        raise EventError(explain(e, where)) from None
    except msgspec.DecodeError as e:
        raise EventError(f"malformed JSON: {str(e)[:200]}", "malformed") from None
    except RecursionError:
        raise EventError("malformed JSON: nested too deeply", "malformed") from None


def _check_envelope(env: _Envelope) -> str:
    """The message's type; :class:`EventError` unless its version is exactly ``1``."""
    version = bytes(env.v)
    if version != b"1":
        text = version[:40].decode("utf-8", "replace") + ("..." if len(version) > 40 else "")
        got = text if version else "None (missing)"
        raise EventError(f"v: unsupported schema version {got} (this reader: {VERSION})",
                         "version")  # fmt: skip
    raw = bytes(env.type)
    try:
        kind = msgspec.json.decode(raw, type=str) if raw else None
    except (msgspec.DecodeError, RecursionError):
        kind = None
    if kind not in TYPES:
        shown = show(kind) if kind is not None else show(raw.decode("utf-8", "replace"))
        raise EventError(f"type: unknown event type {shown}", "type")
    return str(kind)


def _tombstone(key: bytes | None) -> Deleted:
    try:
        parts = (key or b"").decode("utf-8").split(SEP)
    except UnicodeDecodeError:
        raise EventError(f"key: tombstone key is not UTF-8: {show(key)}", "tombstone") from None
    if len(parts) != 3 or parts[1] not in ("host", "vm") or not parts[0] or not parts[2]:
        raise EventError(f"key: tombstone with a key that names no host or VM: {show(key)}",
                         "tombstone")  # fmt: skip
    if max(len(parts[0]), len(parts[2])) > 1024:
        raise EventError("key: tombstone names an id over 1024 characters", "tombstone")
    return Deleted(cluster=parts[0], kind="host" if parts[1] == "host" else "vm", uuid=parts[2])
