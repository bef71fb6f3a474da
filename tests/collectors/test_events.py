"""The event schema: every type round-trips; every kind of bad message names its fault."""

from __future__ import annotations

import orjson
import pytest

from collectors.events import (
    MAX_MESSAGE_BYTES,
    ActionResult,
    Deleted,
    EventError,
    HostEvent,
    MetricBatch,
    Recommendation,
    RulesEvent,
    VmEvent,
    decode,
    encode,
    inventory_key,
)

EVENTS = [
    HostEvent(
        "c1", "h1", 32, 262144, 1000, maintenance=True, power_w=[100.0 + i for i in range(11)]
    ),
    VmEvent("c1", "v1", "h1", 2, 4096, 40, pinned=True),
    RulesEvent("c1", [{"name": "r", "type": "anti_affinity", "vms": ["v1", "v2"]}]),
    MetricBatch("c1", "h1", 1700000000.0, 3, ["v1", "v2"], [12.5, 0], [2048, 100.5]),
    Recommendation(
        "c1-1",
        "c1",
        "overload",
        "balance",
        1.0,
        0.2,
        0.1,
        [{"key": "c1-1/0", "vm": "v1", "src": "h1", "dst": "h2"}],
    ),
    ActionResult("c1-1/0", "c1-1", "c1", "v1", "h1", "h2", "ok"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_round_trip(event):
    assert decode(b"k", encode(event)) == event


def test_tombstone_names_the_deleted_object():
    key = inventory_key("c1", "vm", "v9").encode()
    assert decode(key, None) == Deleted("c1", "vm", "v9")


def _doc(event, **changes):
    d = orjson.loads(encode(event))
    for k, v in changes.items():
        if v is KeyError:
            d.pop(k)
        else:
            d[k] = v
    return orjson.dumps(d)


HOST, VM, METRICS = EVENTS[0], EVENTS[1], EVENTS[3]
BAD = [
    ("malformed", b'{"v": 1, "type": "host"', "malformed JSON"),
    ("array", b"[1, 2]", "expected a JSON object"),
    ("version", _doc(HOST, v=2), "unsupported schema version 2"),
    ("no-version", _doc(HOST, v=KeyError), "unsupported schema version None"),
    ("type", _doc(HOST, type="gpu"), "unknown event type 'gpu'"),
    ("missing", _doc(HOST, uuid=KeyError), "host.uuid: missing"),
    ("negative", _doc(VM, vcpus=-2), "vm.vcpus: expected a number > 0"),
    ("string-number", _doc(VM, memory_mb="4096"), "vm.memory_mb: expected a number > 0"),
    ("bool-number", _doc(VM, disk_gb=True), "vm.disk_gb: expected a finite number"),
    (
        "nan",
        b'{"v":1,"type":"vm","cluster":"c","uuid":"u","host":"h","vcpus":NaN}',
        "malformed JSON",
    ),
    ("extra", _doc(VM, colour="red"), "vm: unknown field 'colour'"),
    ("power", _doc(HOST, power_w=[1, 2]), "host.power_w: expected null or 11 numbers"),
    ("lengths", _doc(METRICS, cpu_pct=[1.0]), "differ in length (2, 1, 2)"),
    ("cpu-type", _doc(METRICS, cpu_pct=[1.0, "x"]), "metrics.cpu_pct: expected finite"),
    ("vm-ids", _doc(METRICS, vms=["a", 3]), "metrics.vms: expected VM uuids"),
    ("seq", _doc(METRICS, seq=-1), "metrics.seq: expected an integer >= 0"),
    ("tombstone", None, "tombstone with a key that names no host or VM"),
]


@pytest.mark.parametrize(("value", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_messages_name_the_fault(value, message):
    with pytest.raises(EventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(b"c1\x1fjunk", value)


def test_oversized_message_is_refused_before_parsing():
    big = b'{"v":1,' + b" " * MAX_MESSAGE_BYTES + b"}"
    with pytest.raises(EventError) as e:
        decode(None, big)
    assert e.value.category == "oversized"


def test_categories_are_a_small_fixed_set():
    cats = set()
    for _, value, _ in BAD:
        try:
            decode(b"c1\x1fjunk", value)
        except EventError as e:
            cats.add(e.category)
    assert cats == {"malformed", "version", "type", "schema", "tombstone"}
