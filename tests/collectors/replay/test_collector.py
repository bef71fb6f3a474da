"""Trace replay: scenarios and the simulated platform's migration call (the trace readers:
test_traces.py)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import Move, Recommendation, VmEvent
from collectors.replay import ReplayCollector, load_trace
from collectors.replay.scenario import DEFAULT, ScenarioError, load_scenario, parse_scenario
from collectors.replay.traces import Trace


class ListSink:
    """Captures what a collector publishes (a test double of the Kafka sink: the Kafka path
    itself is tested against the real broker in tests/xdrs/bus)."""

    def __init__(self):
        self.events = []

    def publish(self, kind, key, event):
        self.events.append((kind, key, event))

    def flush(self):
        pass

    def of(self, kind):
        return [e for k, _, e in self.events if k == kind]


def small_trace(v=6, t=4):
    cpu = np.arange(v * t, dtype=float).reshape(v, t) % 100
    return Trace("test", tuple(f"vm{i}" for i in range(v)), cpu)


def scenario(**over):
    doc = {
        "format": "xdrs-replay-scenario/1",
        "clusters": [
            {"name": "a", "hosts": [{"count": 2, "vcpus": 4, "memory_mb": 16384}]},
            {"name": "b", "hosts": [{"count": 1, "vcpus": 8, "memory_mb": 32768}]},
        ],
        "flavors": [{"vcpus": 1, "memory_mb": 1024}],
        "placement": "spread",
    }
    doc.update(over)
    return parse_scenario(doc)


HOSTS_A = {"name": "a", "hosts": [{"count": 2, "vcpus": 4, "memory_mb": 16384}]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "x"}, "format: invalid enum value 'x'"),
        ({"format": None}, "format: expected `str`, got `null`"),
        ({"clusters": []}, "clusters: expected `array` of length >= 1"),
        ({"clusters": [HOSTS_A, HOSTS_A]}, "clusters: two clusters share a name"),
        ({"flavors": [{"vcpus": -1, "memory_mb": 1}]}, r"flavors\[0\].vcpus: expected `int` >= 1"),
        ({"flavors": [{"vcpus": 1, "memory_mb": 1, "gpu": 1}]},
         r"flavors\[0\]: unknown field 'gpu'"),
        ({"placement": "random"}, "placement: invalid enum value 'random'"),
        ({"vms": 0}, "vms: expected `int` >= 1"),
        ({"seed": "abc"}, "seed: expected `int`, got `str`"),
        ({"seed": -1}, "seed: expected `int` >= 0"),
        ({"clusters": [{"name": "a", "hosts": [{"count": 2.5, "vcpus": 4, "memory_mb": 16384}]}]},
         r"clusters\[0\].hosts\[0\].count: expected `int`, got `float`"),
        ({"clusters": [{"name": "a", "hosts": [{"count": 1, "vcpus": 4, "memory_mb": 2048}]}]},
         r"clusters\[0\].hosts\[0\].memory_mb_reserved: 4096 exceeds memory_mb 2048"),
        ({"memory_base": True}, "memory_base: expected `float`, got `bool`"),
        ({"memory_base": 1e999}, "memory_base: expected `float` <= 1.0"),
        ({"colour": "red"}, "scenario: unknown field 'colour'"),
    ],
    ids=["format", "format-null", "clusters", "cluster-twice", "negative", "unknown",
         "placement", "vms", "seed-str", "seed-negative", "count-float", "reserved",
         "base-bool", "base-inf", "top-unknown"],
)  # fmt: skip
def test_bad_scenarios(change, message):
    with pytest.raises(ScenarioError, match=message):
        scenario(**change)


def test_scenario_file_error_names_the_file(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{")
    with pytest.raises(ScenarioError, match=r"s\.json: not valid JSON"):
        load_scenario(p)
    p.write_bytes(orjson.dumps({"format": "xdrs-replay-scenario/1", "clusters": [], "flavors": []}))
    with pytest.raises(ScenarioError, match=r"s\.json: clusters"):
        load_scenario(p)
    p.write_bytes(b'{"trace": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    with pytest.raises(ScenarioError, match=r"s\.json: trace: expected `str`, got `array`"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match=r"nope\.json: No such file"):
        load_scenario(tmp_path / "nope.json")


def test_inventory_and_metrics_cover_every_vm_once_per_step():
    sink = ListSink()
    c = ReplayCollector(scenario(vms=9), small_trace(), sink, t0=1000.0)
    c.publish_inventory()
    assert len(sink.of("inventory")) == 3 + 9
    c.publish_step(2)
    batches = sink.of("metrics")
    assert len(batches) == 3  # one per host
    got = {v: p for b in batches for v, p in zip(b.vms, b.cpu_pct, strict=True)}
    assert sorted(got) == sorted(c.vm_ids)
    # VM j replays row j % 6, shifted by j // 6 steps
    for j, vm in enumerate(c.vm_ids):
        assert got[vm] == small_trace().cpu_pct[j % 6, (2 + j // 6) % 4]
    assert {b.ts for b in batches} == {1000.0 + 2 * 300}
    for b in batches:  # every VM reported by the host it is on
        assert all(c.hosts[c.place[c.vm_index[v]]].uuid == b.host for v in b.vms)


def _vm_in(c, cluster):
    j = next(j for j in range(len(c.vm_ids)) if c.hosts[c.place[j]].cluster == cluster)
    src = c.hosts[c.place[j]].uuid
    dst = next(h.uuid for h in c.hosts if h.cluster == cluster and h.uuid != src)
    return j, c.vm_ids[j], src, dst


def test_apply_checks_like_a_hypervisor_and_is_idempotent():
    sink = ListSink()
    c = ReplayCollector(scenario(vms=6), small_trace(), sink)
    j, vm, src, dst = _vm_in(c, "a")
    other = next(h.uuid for h in c.hosts if h.cluster == "b")
    moves = [
        Move("r/0", vm, src, dst, "imbalance"),
        Move("r/1", vm, src, dst, "imbalance"),  # VM no longer on src
        Move("r/2", "ghost", src, dst, "imbalance"),
        Move("r/3", vm, dst, other, "imbalance"),  # other cluster
    ]
    rec = Recommendation("r", "a", "imbalance", "balance", 0, 0, 0, moves)
    results = c.apply(rec)
    assert [r.status for r in results] == ["ok", "failed", "failed", "failed"]
    assert "not on the source" in results[1].error
    assert "unknown VM" in results[2].error
    assert "not a host of cluster" in results[3].error
    assert c.hosts[c.place[j]].uuid == dst
    moved = [e for e in sink.of("inventory") if isinstance(e, VmEvent)]
    assert [e.host for e in moved] == [dst]
    assert [r.key for r in sink.of("actions")] == ["r/0", "r/1", "r/2", "r/3"]
    assert c.apply(rec) == []  # the same keys again: nothing applied, nothing published
    assert len(sink.of("actions")) == 4
    c.set_maintenance(src)
    back = Recommendation(
        "r2", "a", "x", "balance", 0, 0, 0, [Move("r2/0", vm, dst, src, "imbalance")]
    )
    assert "in maintenance" in c.apply(back)[0].error


def test_apply_refuses_a_full_destination():
    c = ReplayCollector(scenario(vms=6), small_trace(), ListSink())
    j, vm, src, dst = _vm_in(c, "a")
    d = c.host_index[dst]
    c.cap[d] = c.alloc[c.place == d].sum(axis=0)  # destination exactly full
    rec = Recommendation("r", "a", "x", "balance", 0, 0, 0, [Move("k", vm, src, dst, "imbalance")])
    assert "no allocation room" in c.apply(rec)[0].error
    assert c.hosts[c.place[j]].uuid == src


def test_a_scenario_too_small_for_its_vms_is_refused():
    with pytest.raises(ScenarioError, match="fits on no host"):
        ReplayCollector(scenario(vms=500), small_trace(), ListSink())


def test_default_scenario_starts_unbalanced():
    c = ReplayCollector(DEFAULT, load_trace("planetlab:20110303"), ListSink())
    counts = np.bincount(c.place, minlength=len(c.hosts))
    assert counts.max() > 3 * max(1, int(np.median(counts[counts > 0]))) or (counts == 0).any()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12,
)  # fmt: skip
_VALID = {
    "format": "xdrs-replay-scenario/1",
    "clusters": [{"name": "a", "hosts": [{"count": 2, "vcpus": 4, "memory_mb": 16384}]}],
    "flavors": [{"vcpus": 1, "memory_mb": 1024}],
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["format", "clusters", "flavors", "trace", "vms", "placement",
                        "memory_base", "seed", "colour"]), _json)  # fmt: skip
def test_fuzz_scenario_fields(field, value):
    """Any value in any field: a valid scenario or a ScenarioError naming a field."""
    try:
        parse_scenario({**_VALID, field: value})
    except ScenarioError as e:
        assert str(e).split(":")[0].split(".")[0].split("[")[0] in (*_VALID, field, "scenario")
