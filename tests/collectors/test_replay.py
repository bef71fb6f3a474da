"""Trace replay: scenarios and the simulated platform's migration call (the trace readers:
test_traces.py)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from collectors.events import Recommendation, VmEvent
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "x"}, "format: expected"),
        ({"clusters": []}, "clusters: expected a non-empty array"),
        (
            {"flavors": [{"vcpus": -1, "memory_mb": 1}]},
            r"flavors\[0\].vcpus: expected a number >= 0",
        ),
        ({"flavors": [{"vcpus": 1, "memory_mb": 1, "gpu": 1}]}, r"flavors\[0\].gpu: unknown field"),
        ({"placement": "random"}, "placement: expected 'skewed' or 'spread'"),
        ({"vms": 0}, "vms: expected an integer > 0"),
    ],
    ids=["format", "clusters", "negative", "unknown", "placement", "vms"],
)
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
        {"key": "r/0", "vm": vm, "src": src, "dst": dst},
        {"key": "r/1", "vm": vm, "src": src, "dst": dst},  # VM no longer on src
        {"key": "r/2", "vm": "ghost", "src": src, "dst": dst},
        {"key": "r/3", "vm": vm, "src": dst, "dst": other},  # other cluster
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
        "r2", "a", "x", "balance", 0, 0, 0, [{"key": "r2/0", "vm": vm, "src": dst, "dst": src}]
    )
    assert "in maintenance" in c.apply(back)[0].error


def test_apply_refuses_a_full_destination():
    c = ReplayCollector(scenario(vms=6), small_trace(), ListSink())
    j, vm, src, dst = _vm_in(c, "a")
    d = c.host_index[dst]
    c.cap[d] = c.alloc[c.place == d].sum(axis=0)  # destination exactly full
    rec = Recommendation(
        "r", "a", "x", "balance", 0, 0, 0, [{"key": "k", "vm": vm, "src": src, "dst": dst}]
    )
    assert "no allocation room" in c.apply(rec)[0].error
    assert c.hosts[c.place[j]].uuid == src


def test_a_scenario_too_small_for_its_vms_is_refused():
    with pytest.raises(ScenarioError, match="fits on no host"):
        ReplayCollector(scenario(vms=500), small_trace(), ListSink())


def test_default_scenario_starts_unbalanced():
    c = ReplayCollector(DEFAULT, load_trace("planetlab:20110303"), ListSink())
    counts = np.bincount(c.place, minlength=len(c.hosts))
    assert counts.max() > 3 * max(1, int(np.median(counts[counts > 0]))) or (counts == 0).any()
