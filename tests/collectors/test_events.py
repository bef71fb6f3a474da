"""The event schema: every type round-trips; every kind of bad message names its fault.

The fuzz tests hold ``decode`` to its contract: whatever the bytes, it returns a typed event
or raises :class:`EventError` with a bounded reason and a known category, nothing else.
"""

from __future__ import annotations

import json
import typing

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.events import (
    CATEGORIES,
    MAX_MESSAGE_BYTES,
    ActionResult,
    DeadLetter,
    Deleted,
    Event,
    EventError,
    HostEvent,
    MetricBatch,
    Move,
    MoveReason,
    Recommendation,
    Rule,
    RuleKind,
    RulesEvent,
    VmEvent,
    decode,
    encode,
    inventory_key,
)
from placement import Reason
from placement.rules import KIND_NAMES

EVENTS = [
    HostEvent(
        "c1", "h1", 32, 262144, 1000, maintenance=True, power_w=[100.0 + i for i in range(11)]
    ),
    VmEvent("c1", "v1", "h1", 2, 4096, 40, pinned=True),
    RulesEvent(
        "c1",
        [Rule("r", "anti_affinity", ["v1", "v2"]), Rule("p", "vm_host", ["v1"], "should", ["h1"])],
    ),
    MetricBatch("c1", "h1", 1700000000.0, 3, ["v1", "v2"], [12.5, 0], [2048, 100.5]),
    Recommendation(
        "c1-1",
        "c1",
        "overload",
        "balance",
        1.0,
        0.2,
        0.1,
        [Move("c1-1/0", "v1", "h1", "h2", "overload", -0.5, 4096.0, 2)],
    ),
    ActionResult("c1-1/0", "c1-1", "c1", "v1", "h1", "h2", "ok"),
    DeadLetter("xdrs.metrics", 0, 7, "c1\x1fhost\x1fh1", "why", "schema", "{}", 1.0),
]
HOST, VM, RULES, METRICS, REC = EVENTS[:5]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip(event):
    assert decode(b"k", encode(event)) == event


def test_wire_format_is_the_readme_json():
    doc = orjson.loads(encode(REC))
    assert doc["v"] == 1 and doc["type"] == "recommendation"
    assert doc["moves"] == [{"key": "c1-1/0", "vm": "v1", "src": "h1", "dst": "h2",
                             "reason": "overload", "gain": -0.5, "cost_mib": 4096.0,
                             "wave": 2}]  # fmt: skip
    rules = orjson.loads(encode(RULES))["rules"]
    assert rules[0] == {"name": "r", "type": "anti_affinity", "vms": ["v1", "v2"]}


def test_decoded_moves_and_rules_are_typed():
    rec = decode(b"k", encode(REC))
    assert isinstance(rec, Recommendation) and isinstance(rec.moves[0], Move)
    assert rec.moves[0].dst == "h2" and rec.moves[0].wave == 2
    rules = decode(b"k", encode(RULES))
    assert isinstance(rules, RulesEvent) and rules.rules[1].hosts == ["h1"]


def test_declared_names_match_the_placement_core():
    assert set(typing.get_args(MoveReason)) == {r.name.lower() for r in Reason}
    assert set(typing.get_args(RuleKind)) == set(KIND_NAMES)


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


def _raw(event, field: str, text: bytes) -> bytes:
    """``event`` with ``field`` set to raw JSON ``text`` (which orjson could not write)."""
    d = orjson.loads(encode(event))
    d[field] = "\x00"
    return orjson.dumps(d).replace(b'"\\u0000"', text)


DEEP = b"[" * 1000 + b"]" * 1000  # the 2 KB message of issue 10
BAD = [
    ("malformed", b'{"v": 1, "type": "host"', "malformed", "malformed JSON"),
    ("array", b"[1, 2]", "malformed", "expected a JSON object"),
    ("utf8", _doc(VM, name="x")[:-2] + b'\xff"}', "malformed", "malformed JSON"),
    ("deep-string", _raw(VM, "host", DEEP), "malformed", "nested too deeply"),
    ("deep-rules", _raw(RULES, "rules", DEEP), "malformed", "nested too deeply"),
    ("version", _doc(HOST, v=2), "version", "unsupported schema version 2"),
    ("version-true", _doc(HOST, v=True), "version", "unsupported schema version true"),
    ("version-float", _doc(HOST, v=1.0), "version", "unsupported schema version 1.0"),
    ("no-version", _doc(HOST, v=KeyError), "version", "unsupported schema version None"),
    ("type", _doc(HOST, type="gpu"), "type", "unknown event type 'gpu'"),
    ("type-deep", _raw(HOST, "type", b"[[[1]]]"), "type", "unknown event type"),
    ("missing", _doc(HOST, uuid=KeyError), "schema", "host.uuid: missing"),
    ("negative", _doc(VM, vcpus=-2), "schema", "vm.vcpus: expected `float` > 0"),
    ("string-number", _doc(VM, memory_mb="4096"), "schema", "vm.memory_mb: expected `float`"),
    ("bool-number", _doc(VM, disk_gb=True), "schema", "vm.disk_gb: expected `float`"),
    ("nan", _raw(VM, "vcpus", b"NaN"), "malformed", "malformed JSON"),
    ("inf", _raw(VM, "vcpus", b"1e999"), "schema", "vm.vcpus: number out of range"),
    ("huge", _doc(VM, memory_mb=1e300), "schema", "vm.memory_mb: expected `float` <= "),
    ("huge-int", _raw(METRICS, "seq", b"1" * 40), "schema", "metrics.seq: "),
    ("extra", _doc(VM, colour="red"), "schema", "vm: unknown field 'colour'"),
    ("power", _doc(HOST, power_w=[1, 2]), "schema", "host.power_w: expected `array` of "),
    ("reserved", _doc(HOST, vcpu_reserved=33), "schema", "host.vcpu_reserved: 33 exceeds"),
    ("lengths", _doc(METRICS, cpu_pct=[1.0]), "schema", "differ in length (2, 1, 2)"),
    ("cpu-type", _doc(METRICS, cpu_pct=[1.0, "x"]), "schema", "metrics.cpu_pct[1]: expected"),
    ("cpu-150", _doc(METRICS, cpu_pct=[1.0, 150]), "schema", "metrics.cpu_pct[1]: expected"),
    ("vm-ids", _doc(METRICS, vms=["a", 3]), "schema", "metrics.vms[1]: expected `str`"),
    ("vm-twice", _doc(METRICS, vms=["a", "a"]), "schema", "metrics.vms: a VM appears twice"),
    ("seq", _doc(METRICS, seq=-1), "schema", "metrics.seq: expected `int` >= 0"),
    ("rule-dup-vm", _doc(RULES, rules=[{"name": "r", "type": "affinity", "vms": ["a", "a"]}]),
     "schema", "rules.rules[0].vms: the rule lists a VM twice"),
    ("rule-kind", _doc(RULES, rules=[{"name": "r", "type": "vm_host", "vms": ["a"]}]),
     "schema", "rules.rules[0].kind: a vm_host rule needs"),
    ("rule-names", _doc(RULES, rules=[{"name": "r", "type": "affinity", "vms": ["a"]}] * 2),
     "schema", "rules.rules: two rules share a name"),
    ("move-reason", _doc(REC, moves=[{"key": "k", "vm": "v", "src": "a", "dst": "b",
                                      "reason": "whim"}]),
     "schema", "recommendation.moves[0].reason: invalid enum value 'whim'"),
    ("move-missing", _doc(REC, moves=[{"key": "k", "vm": "v", "src": "a", "reason": "rule"}]),
     "schema", "recommendation.moves[0].dst: missing"),
    ("status", _doc(EVENTS[5], status="meh"), "schema", "action.status: invalid enum value"),
    ("tombstone", None, "tombstone", "key: tombstone with a key that names no host or VM"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "category", "message"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])  # fmt: skip
def test_bad_messages_name_the_fault(value, category, message):
    with pytest.raises(EventError) as e:
        decode(b"c1\x1fjunk", value)
    assert message in str(e.value)
    assert e.value.category == category


def test_the_deep_message_is_about_2_kb():
    assert 2000 < len(_raw(VM, "host", DEEP)) < 2300


@pytest.mark.parametrize("key", [b"c1\x1fvm\x1f\xff\xfe", b"\xc3\x28\x1fhost\x1fh"])
def test_a_tombstone_key_that_is_not_utf8_is_refused(key):
    with pytest.raises(EventError, match="key: tombstone key is not UTF-8") as e:
        decode(key, None)
    assert e.value.category == "tombstone"


def test_a_long_value_is_cut_in_the_reason():
    with pytest.raises(EventError) as e:
        decode(b"k", _doc(REC, trigger="x" * 100_000))
    assert len(str(e.value)) <= 512 and str(e.value).startswith("recommendation.trigger")


def test_oversized_message_is_refused_before_parsing():
    big = b'{"v":1,' + b" " * MAX_MESSAGE_BYTES + b"}"
    with pytest.raises(EventError) as e:
        decode(None, big)
    assert e.value.category == "oversized"


# ---- fuzzing ------------------------------------------------------------------------------

EVENT_TYPES = typing.get_args(Event)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip


def _holds_contract(key: bytes | None, value: bytes | None) -> None:
    try:
        event = decode(key, value)
    except EventError as e:
        assert str(e) and len(str(e)) <= 1024
        assert e.category in CATEGORIES
        return
    assert isinstance(event, EVENT_TYPES)
    assert decode(key, encode(event)) == event  # what decodes re-encodes to the same event


@FUZZ
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=40)))
def test_fuzz_arbitrary_bytes(value, key):
    _holds_contract(key, value)


@FUZZ
@given(st.binary(max_size=60))
def test_fuzz_tombstone_keys(key):
    _holds_contract(key, None)


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(doc):
    _holds_contract(b"k", _dumps(doc))


def _dumps(doc: object) -> bytes:
    """JSON as a careless producer writes it (big integers, Infinity included)."""
    return json.dumps(doc).encode()


def _nested(depth: int, leaf: bytes) -> bytes:
    return b"[" * depth + leaf + b"]" * depth


@FUZZ
@given(
    st.sampled_from(EVENTS),
    st.data(),
    st.one_of(
        json_values.map(_dumps),
        st.tuples(st.integers(1, 5000), st.sampled_from([b"", b"1", b'"x"', b"{}"])).map(
            lambda t: _nested(*t)
        ),
        st.sampled_from([b"1e999", b"-1e999", b"1" * 30, b"-0", b"true", b"null", b'"\\ud800"']),
    ),
)
def test_fuzz_mutations_of_valid_events(event, data, raw):
    """One field of a valid event replaced (or dropped, or added) by something arbitrary."""
    doc = orjson.loads(encode(event))
    field = data.draw(st.sampled_from([*doc, "extra"]))
    if data.draw(st.booleans(), label="drop") and field in doc:
        doc.pop(field)
        _holds_contract(b"k", orjson.dumps(doc))
        return
    _holds_contract(b"k", _raw_doc(doc, field, raw))


def _raw_doc(doc: dict, field: str, raw: bytes) -> bytes:
    doc = {**doc, field: "\x00"}
    return orjson.dumps(doc).replace(b'"\\u0000"', raw)
