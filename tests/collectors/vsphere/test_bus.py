"""The vSphere collector into the real embedded broker: inventory, metrics, changes, faults.

Everything is real: the simulator (SOAP through pyvmomi), the event bridge, the Kafka
producer and the Tansu broker; the assertions read the topics back with a consumer.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collectors.events import Event, HostEvent, MetricBatch, RulesEvent, VmEvent, inventory_key
from collectors.vsphere import (
    Change,
    CollectorOptions,
    Connection,
    ConnectionSpec,
    VSphereCollector,
)
from collectors.vsphere.events import BridgeOptions, EventBridge, scope_of
from collectors.vsphere.mapping import to_cluster_state
from tests.collectors.vsphere import helpers
from tests.collectors.vsphere.conftest import Vcsim, start_vcsim
from tests.support import wait_for
from tests.xdrs.bus.conftest import read_all
from xdrs._rules_io import parse_rules
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink, make_consumer, records
from xdrs.cli import main

pytestmark = [pytest.mark.vcsim, pytest.mark.broker]

DEADLINE_S = 10.0  # waiting timeouts, not speed assertions


class Recorder:
    """An in-process events sink that keeps what was published (bridge logic tests)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Event | None]] = []

    def publish(self, kind: str, key: str, event: Event | None) -> None:
        self.items.append((kind, key, event))

    def flush(self) -> None:
        pass


def _collector(sim: Vcsim, sink: Any, **bridge: Any) -> tuple[VSphereCollector, EventBridge]:
    conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=3, backoff_s=0.2)
    opts = BridgeOptions(scope_of(sim.url), **{"inventory_every": 0, **bridge})
    b = EventBridge(sink, opts)
    col = VSphereCollector(conn, b, CollectorOptions(interval_s=0.5, perf=False, backoff_s=0.2,
                                                     backoff_max_s=1.0))  # fmt: skip
    return col, b


def _latest(recs: list[Any]) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for r in recs:
        out[r.key] = r.event if r.value is not None else None
    return out


def test_scope_of_url() -> None:
    assert scope_of("https://vc01.example.com/sdk") == "vc01.example.com"
    assert scope_of("https://vc01.example.com:8443/sdk") == "vc01.example.com:8443"
    assert scope_of("http://127.0.0.1:8989/sdk") == "127.0.0.1:8989"


def test_inventory_complete_in_kafka(vcsim_big: Vcsim, config: BusConfig) -> None:
    inv = helpers.inventory(vcsim_big)
    sink = KafkaSink(config)
    col, bridge = _collector(vcsim_big, sink)
    col.cycle()
    sink.close()
    col.conn.close()
    scope = scope_of(vcsim_big.url)
    recs = read_all(config, config.topics.inventory)
    assert [r.error for r in recs if r.error] == []
    events = [r.event for r in recs]
    hosts = {e.uuid: e for e in events if isinstance(e, HostEvent)}
    vms = {e.uuid: e for e in events if isinstance(e, VmEvent)}
    rules = [e for e in events if isinstance(e, RulesEvent)]
    on = [v for v in inv.vms if v.powered_on]
    assert len(hosts) == 64 and len(vms) == len(on) and len(rules) == 4
    assert len(recs) == 64 + len(on) + 4, "each object published once"
    host_rec = {h.id: h for h in inv.hosts}
    for v in on[::97]:  # spot-check sizes, host and cluster
        e = vms[f"{scope}/{v.id}"]
        assert (e.vcpus, e.memory_mb, e.name) == (v.vcpus, v.memory_mib, v.name)
        assert e.host == f"{scope}/{v.host}"
        assert e.cluster == f"{scope}/{host_rec[v.host or ''].cluster}"
    for h in inv.hosts[::9]:
        e = hosts[f"{scope}/{h.id}"]
        assert (e.vcpus, e.memory_mb, e.hostname) == (h.cores, h.memory_mib, h.name)
        assert e.cluster == f"{scope}/{h.cluster}" and e.platform == "vsphere"
        assert e.vcpu_ratio == 4.0 and not e.maintenance
    names = {c.id: c.name for c in inv.clusters}
    assert {e.domain for e in hosts.values()} == set(names.values())
    batches = [r.event for r in read_all(config, config.topics.metrics)]
    assert len(batches) == 64 and all(isinstance(b, MetricBatch) for b in batches)
    where = {u: b.host for b in batches for u in b.vms}
    assert where == {u: e.host for u, e in vms.items()}, "every VM once, in its host's batch"
    v = max(on, key=lambda x: x.cpu_usage_mhz)
    b = next(b for b in batches if b.host == f"{scope}/{v.host}")
    i = b.vms.index(f"{scope}/{v.id}")
    expect = 100 * v.cpu_usage_mhz / (host_rec[v.host or ""].mhz_per_core * v.vcpus)
    assert b.cpu_pct[i] == pytest.approx(min(expect, 100.0), abs=1e-3)
    assert b.mem_mib[i] == pytest.approx(v.mem_consumed_mib, abs=0.1)
    assert bridge.batches == 64


def test_rules_mapped_as_snapshot(vcsim_small: Vcsim) -> None:
    inv = helpers.inventory(vcsim_small)
    c0 = inv.clusters[0]
    c0_hosts = [h.id for h in inv.hosts if h.cluster == c0.id]
    on = [v.id for v in inv.vms if v.powered_on and v.host in c0_hosts]
    with vcsim_small.connect() as admin:
        helpers.add_anti_affinity(admin, c0.id, "apart", on[:3])
        helpers.add_vm_host_rule(admin, c0.id, "pin", on[3:6], c0_hosts[:4], mandatory=False)
    rec = Recorder()
    col, _ = _collector(vcsim_small, rec)
    inv = col.cycle()
    col.conn.close()
    scope = scope_of(vcsim_small.url)
    ev = next(e for _, k, e in rec.items if k == inventory_key(f"{scope}/{c0.id}", "rules"))
    assert isinstance(ev, RulesEvent) and len(ev.rules) == 2
    st = to_cluster_state(inv, [c0.id])
    parsed = parse_rules([r.as_dict() for r in ev.rules],
                         {f"{scope}/{h}": i for i, h in enumerate(st.host_ids)},
                         {f"{scope}/{v}": i for i, v in enumerate(st.vm_ids)})  # fmt: skip
    want = st.rules
    assert parsed.vv_names == want.vv_names and parsed.vh_names == want.vh_names
    for name in ("vv_vm", "vv_group", "vv_anti", "vh_vm", "vh_rule", "vh_kind", "vh_hosts"):
        assert np.array_equal(getattr(parsed, name), getattr(want, name)), name


def test_bridge_diffs_and_tombstones(vcsim_small: Vcsim) -> None:
    rec = Recorder()
    col, bridge = _collector(vcsim_small, rec)
    inv = col.cycle()
    first = len(rec.items)
    bridge.on_inventory(inv)  # the same inventory again: nothing new
    assert [k for k, *_ in rec.items[first:]] == []
    gone = next(v for v in inv.vms if v.powered_on)
    shrunk = type(inv)(inv.source, inv.collected_at + 1, inv.datacenters, inv.clusters,
                       inv.hosts, tuple(v for v in inv.vms if v.id != gone.id))  # fmt: skip
    bridge.on_inventory(shrunk)
    new = rec.items[first:]
    scope = scope_of(vcsim_small.url)
    vm_keys = [k for _, k, e in new if e is None]
    assert len(vm_keys) == 1 and vm_keys[0].endswith(f"{scope}/{gone.id}")
    assert all(isinstance(e, RulesEvent) or e is None for _, _, e in new)
    col.conn.close()


def test_metric_ts_strictly_increasing(vcsim_small: Vcsim) -> None:
    rec = Recorder()
    col, bridge = _collector(vcsim_small, rec)
    inv = col.cycle()
    from collectors.vsphere import quickstats_samples

    same = quickstats_samples(inv)
    bridge.on_metrics(same)  # same sample times again: still newer per host
    batches = [e for kind, _, e in rec.items if kind == "metrics"]
    assert len(batches) == 32
    by_host: dict[str, list[float]] = {}
    for b in batches:
        assert isinstance(b, MetricBatch)
        by_host.setdefault(b.host, []).append(b.ts)
    assert all(ts[1] > ts[0] for ts in by_host.values())
    col.conn.close()


@pytest.fixture
def inventory_reader(config: BusConfig) -> Iterator[Any]:
    consumer = make_consumer(config, None)
    from kafka import TopicPartition

    topic = config.topics.inventory
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen: dict[bytes, Any] = {}

    def poll() -> dict[bytes, Any]:
        seen.update(_latest(list(records(consumer, timeout_ms=100))))
        return seen

    yield poll
    consumer.close()


def test_power_off_and_relocation_appear_as_events(
    vcsim_small: Vcsim, config: BusConfig, inventory_reader: Any
) -> None:
    inv = helpers.inventory(vcsim_small)
    on = [v for v in inv.vms if v.powered_on]
    a, b = on[0], on[1]
    other = helpers.sibling(inv, b.host)
    sink = KafkaSink(config)
    col, bridge = _collector(vcsim_small, sink)
    col.opts = CollectorOptions(interval_s=600, perf=False)  # only the watcher after cycle 1
    stop = threading.Event()
    worker = threading.Thread(target=col.run, args=(stop,), daemon=True)
    worker.start()
    scope = scope_of(vcsim_small.url)
    cluster_of = {h.id: f"{scope}/{h.cluster}" for h in inv.hosts}
    key_a = inventory_key(cluster_of[a.host or ""], "vm", f"{scope}/{a.id}").encode()
    key_b = inventory_key(cluster_of[b.host or ""], "vm", f"{scope}/{b.id}").encode()
    try:
        assert wait_for(lambda: key_a in inventory_reader() and key_b in inventory_reader())
        with vcsim_small.connect() as admin:
            helpers.wait_task(helpers.vm(admin, a.id).PowerOffVM_Task())
            helpers.wait_task(helpers.vm(admin, b.id).RelocateVM_Task(
                helpers.vim.vm.RelocateSpec(host=helpers.host(admin, other))))  # fmt: skip

        def seen() -> bool:
            s = inventory_reader()
            return s[key_a] is None and s[key_b].host == f"{scope}/{other}"

        assert wait_for(seen, timeout=DEADLINE_S), "changes not on the topic in time"
        assert col.cycles == 1, "seen through WaitForUpdatesEx, not a new inventory"
    finally:
        stop.set()
        worker.join(10)
        sink.close()
        col.conn.close()
    assert bridge.tombstones == 1


def test_simulator_killed_no_crash_no_duplicates(
    vcsim_bin: Path, tmp_path: Path, config: BusConfig
) -> None:
    args = ("-hosts", "8", "-vms", "40", "-clusters", "2")
    sim = start_vcsim(vcsim_bin, tmp_path / "a", *args)
    sink = KafkaSink(config)
    col, bridge = _collector(sim, sink)
    stop = threading.Event()
    worker = threading.Thread(target=col.run, args=(stop,), daemon=True)
    worker.start()
    try:
        assert wait_for(lambda: col.cycles >= 2)
        sim.stop(signal.SIGKILL)
        down = col.cycles
        time.sleep(1.5)
        assert worker.is_alive(), "collector died with the simulator"
        sim = start_vcsim(vcsim_bin, tmp_path / "b", *args, "-listen", f"127.0.0.1:{sim.port}")
        assert wait_for(lambda: col.reconnects >= 1 and col.cycles >= down + 2)
    finally:
        stop.set()
        worker.join(10)
        sim.stop()
        sink.close()
        col.conn.close()
    assert not worker.is_alive()
    inv = read_all(config, config.topics.inventory)
    n_on = sum(isinstance(r.event, VmEvent) for r in inv)
    assert len(inv) == 8 + n_on + 2, "no inventory event published twice"
    assert bridge.tombstones == 0
    batches = read_all(config, config.topics.metrics)
    assert len(batches) == 8 * col.cycles, "metrics resumed after the restart"


def test_collect_command_publishes(vcsim_small: Vcsim, config: BusConfig,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("XDRS_VSPHERE_PASSWORD", "pass")
    argv = ["collect", "vsphere", "--url", vcsim_small.url, "--user", "user", "--cycles", "2",
            "--interval", "0.3", "--no-perf", "--vcenter-id", "vc-a", "--bootstrap-servers",
            config.bootstrap, "--topic-prefix", config.topics.prefix]  # fmt: skip
    assert main(argv) == 0
    assert "2 collections" in capsys.readouterr().out
    inv = read_all(config, config.topics.inventory)
    hosts = [r.event for r in inv if isinstance(r.event, HostEvent)]
    assert len(hosts) == 16 and all(h.uuid.startswith("vc-a/host-") for h in hosts)
    assert len(read_all(config, config.topics.metrics)) == 32


def test_collect_command_bad_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["collect", "vsphere", "--url", "http://127.0.0.1:9/sdk", "--user", "u",
            "--cpu-ratio", "0"]  # fmt: skip
    assert main(argv) == 2
    assert "--cpu-ratio" in capsys.readouterr().err


def test_changes_update_events_without_an_inventory(vcsim_small: Vcsim) -> None:
    """Maintenance, power-on and cross-cluster host changes as the watcher reports them.

    The simulator does not notify maintenance mode, so these Change records are written
    here the way UpdateWatcher produces them (the watcher itself is tested above).
    """
    rec = Recorder()
    col, bridge = _collector(vcsim_small, rec)
    inv = col.cycle()
    col.conn.close()
    scope = scope_of(vcsim_small.url)
    cluster_of = {h.id: f"{scope}/{h.cluster}" for h in inv.hosts}
    off = next(v for v in inv.vms if not v.powered_on and v.host)
    on = next(v for v in inv.vms if v.powered_on)
    far = next(h.id for h in inv.hosts if cluster_of[h.id] != cluster_of[on.host or ""])
    host = inv.hosts[0]
    rec.items.clear()
    now = time.time()
    bridge.on_changes([
        Change("host", host.id, "maintenance", True, now),
        Change("vm", off.id, "power_state", "poweredOn", now),
        Change("vm", on.id, "host", far, now),
    ])  # fmt: skip
    got = {k: e for _, k, e in rec.items}
    h = got[inventory_key(cluster_of[host.id], "host", f"{scope}/{host.id}")]
    assert isinstance(h, HostEvent) and h.maintenance
    powered = got[inventory_key(cluster_of[off.host or ""], "vm", f"{scope}/{off.id}")]
    assert isinstance(powered, VmEvent) and powered.vcpus == off.vcpus
    old_key = inventory_key(cluster_of[on.host or ""], "vm", f"{scope}/{on.id}")
    new = got[inventory_key(cluster_of[far], "vm", f"{scope}/{on.id}")]
    assert got[old_key] is None, "tombstone in the old cluster"
    assert isinstance(new, VmEvent) and new.host == f"{scope}/{far}"
    assert len(rec.items) == 4
    rec.items.clear()
    bridge.on_changes([Change("vm", off.id, "power_state", "poweredOff", now)])
    assert [(k, e) for _, k, e in rec.items] == [
        (inventory_key(cluster_of[off.host or ""], "vm", f"{scope}/{off.id}"), None)]  # fmt: skip
