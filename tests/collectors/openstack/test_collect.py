"""``xdrs collect openstack`` into the real broker, and the collector through faults: Nova's
API stopped mid-run and brought back, wrong credentials."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.events import (
    Deleted,
    HostEvent,
    MetricBatch,
    RulesEvent,
    VmEvent,
    inventory_key,
)
from collectors.openstack import cluster_id
from collectors.openstack.collector import CollectorOptions, OpenStackCollector
from tests.collectors.openstack.conftest import (
    CLOUD,
    Cloud,
    ListSink,
    Load,
    boot,
    delete_all,
    nova,
    unique,
)
from tests.support import wait_for
from tests.xdrs.bus.conftest import read_all
from xdrs.bus import BusConfig
from xdrs.bus.broker import free_port
from xdrs.bus.kafka import KafkaSink

pytestmark = [pytest.mark.openstack, pytest.mark.prometheus, pytest.mark.broker]


def _xdrs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())", *args],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(conn: Any) -> Iterator[Any]:
    s = boot(conn, unique("collect"), availability_zone="az2")
    try:
        yield s
    finally:
        conn.compute.delete_server(s)
        conn.compute.wait_for_delete(s, wait=120)


@pytest.fixture(scope="module")
def pair(conn: Any) -> Iterator[dict[str, Any]]:
    """Two servers of an anti-affinity group in az1."""
    group = conn.compute.create_server_group(name=unique("pair"), policy="anti-affinity")
    made: list[Any] = []
    try:
        for _ in range(2):
            made.append(boot(conn, unique("pair"), availability_zone="az1",
                             scheduler_hints={"group": group.id}))  # fmt: skip
        yield {"group": group, "servers": made}
    finally:
        delete_all(conn, made)
        conn.compute.delete_server_group(group)


def test_collect_command_publishes_inventory_and_batches(
    cloud: Cloud, conn: Any, load: Load, server: Any, pair: dict[str, Any], config: BusConfig
) -> None:
    load.refresh(conn)
    # the exporter's series for the new server: two scrapes inside the rate window
    assert wait_for(lambda: server.id in load.client().query(
        load.names.queries()["server_cpu"], "resource")[1], 30, every=0.5)  # fmt: skip
    bus = ["--bootstrap-servers", config.bootstrap, "--topic-prefix", config.topics.prefix]
    r = _xdrs(cloud.env(), "collect", "openstack", "--cloud", CLOUD, "--prometheus-url",
              load.url, "--window", "5", "--interval", "1", "--cycles", "3", *bus)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "3 collections" in r.stdout and "9 Prometheus queries" in r.stdout, r.stdout
    inv = [x.event for x in read_all(config, config.topics.inventory)]
    hosts = {e.uuid: e for e in inv if isinstance(e, HostEvent)}
    assert set(hosts) == {f"{CLOUD}/fake-{i}" for i in (1, 2, 3)}
    assert {h.domain for h in hosts.values()} == {"az1", "az2"}
    vms = {e.uuid: e for e in inv if isinstance(e, VmEvent)}
    mine = vms[f"{CLOUD}/{server.id}"]
    assert mine.vcpus == 1 and not mine.pinned
    for s in (server, *pair["servers"]):  # each server's host and zone as Nova says
        now = conn.compute.get_server(s.id)
        vm = vms[f"{CLOUD}/{s.id}"]
        assert vm.host == f"{CLOUD}/{now.compute_host}"
        assert hosts[vm.host].domain == now.availability_zone
    assert hosts[mine.host].domain == "az2"
    rules = [e for e in inv if isinstance(e, RulesEvent)]
    assert rules and all(r.cluster == cluster_id(CLOUD) for r in rules)
    group = pair["group"]
    rule = next(r for r in rules[-1].rules if r.name.endswith(f"({group.id})"))
    assert rule.name == f"{group.name} ({group.id})" and rule.type == "anti_affinity"
    assert sorted(rule.vms) == sorted(f"{CLOUD}/{s.id}" for s in pair["servers"])
    apart = {vms[v].host for v in rule.vms}
    assert len(apart) == 2 and {hosts[h].domain for h in apart} == {"az1"}
    batches = [x.event for x in read_all(config, config.topics.metrics)]
    assert all(isinstance(b, MetricBatch) and b.cluster == cluster_id(CLOUD) for b in batches)
    assert len(batches) == 9  # three hosts, three cycles
    assert any(f"{CLOUD}/{server.id}" in b.vms for b in batches if isinstance(b, MetricBatch))


def test_wrong_password_is_one_clear_error(cloud: Cloud, load: Load, tmp_path: Path) -> None:
    text = cloud.clouds_yaml.read_text()
    password = next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if "password:" in line
    )
    bad = tmp_path / "clouds.yaml"
    bad.write_text(text.replace(password, "not-the-password-42"))
    env = dict(cloud.env(), OS_CLIENT_CONFIG_FILE=str(bad))
    r = _xdrs(env, "collect", "openstack", "--cloud", CLOUD, "--prometheus-url", load.url,
              "--cycles", "1", "--bootstrap-servers", "127.0.0.1:9")  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"xdrs: error: cloud {CLOUD}: authentication failed (check user, password, project)"
    ]
    assert "not-the-password-42" not in r.stderr + r.stdout


def test_nova_api_down_mid_run_is_retried_without_duplicates(
    conn: Any, load: Load, server: Any
) -> None:
    sink = ListSink()
    opts = CollectorOptions(CLOUD, interval_s=0.5, backoff_s=0.5, backoff_max_s=2.0,
                            names=load.names)  # fmt: skip
    col = OpenStackCollector(conn, load.client(), sink, opts)
    stop = threading.Event()
    runner = threading.Thread(target=col.run, args=(stop,))
    runner.start()
    try:
        assert wait_for(lambda: col.done >= 2 and not col.held_servers, 60, every=0.2)
        nova("stop", "api")
        try:
            assert wait_for(lambda: col.failures >= 2, 60, every=0.2)
            assert runner.is_alive()
        finally:
            nova("start", "api")
        after = col.done
        assert wait_for(lambda: col.done >= after + 3, 90, every=0.2)
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    keys = Counter(k for kind, k, _ in sink.items if kind == "inventory")
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]


def test_actuate_with_wrong_password_is_one_clear_error(cloud: Cloud, tmp_path: Path) -> None:
    text = cloud.clouds_yaml.read_text()
    password = next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if "password:" in line
    )
    bad = tmp_path / "clouds.yaml"
    bad.write_text(text.replace(password, "not-the-password-42"))
    env = dict(cloud.env(), OS_CLIENT_CONFIG_FILE=str(bad))
    r = _xdrs(env, "actuate", "openstack", "--cloud", CLOUD, "--bootstrap-servers", "127.0.0.1:9")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"xdrs: error: cloud {CLOUD}: authentication failed (check user, password, project)"
    ]


def test_load_exporter_command_serves_every_host_and_server(
    cloud: Cloud, server: Any, tmp_path: Path
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
         "openstack", "load-exporter", "--cloud", CLOUD, "--listen", f"127.0.0.1:{port}",
         "--host-label", "node", "--server-label", "instance"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cloud.env(),
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "3 hosts" in line and f"127.0.0.1:{port}/metrics" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        for h in ("fake-1", "fake-2", "fake-3"):
            assert f'node_memory_MemTotal_bytes{{node="{h}"}} 8.589934592e+09' in text
            assert f'node_cpu_seconds_total{{cpu="9",mode="idle",node="{h}"}}' in text
        assert f'ceilometer_cpu{{instance="{server.id}"}}' in text
        assert f'ceilometer_memory_usage{{instance="{server.id}"}}' in text
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_only_a_changed_provider_is_read_again(conn: Any, load: Load) -> None:
    col = OpenStackCollector(conn, load.client(), ListSink(), CollectorOptions(CLOUD,
                             names=load.names))  # fmt: skip
    col.cycle()
    col.cycle()
    assert col.providers.fetched == 3  # the second cycle read Placement's listing only
    s = boot(conn, unique("gen"), availability_zone="az1:fake-2")
    try:
        col.cycle()  # the allocation bumped fake-2's provider generation: fake-2 read again
        assert col.providers.fetched == 4
        host = col.current[inventory_key(cluster_id(CLOUD), "host", f"{CLOUD}/fake-2")]
        assert isinstance(host, HostEvent)
        vm = col.current[inventory_key(cluster_id(CLOUD), "vm", f"{CLOUD}/{s.id}")]
        assert isinstance(vm, VmEvent) and vm.host == host.uuid
    finally:
        conn.compute.delete_server(s)
        conn.compute.wait_for_delete(s, wait=120)


def test_a_deleted_server_is_tombstoned_on_the_inventory_topic(
    conn: Any, load: Load, config: BusConfig
) -> None:
    s = boot(conn, unique("gone"), availability_zone="az2")
    uid, cluster = f"{CLOUD}/{s.id}", cluster_id(CLOUD)
    key = inventory_key(cluster, "vm", uid).encode()
    sink = KafkaSink(config)
    opts = CollectorOptions(CLOUD, interval_s=1.0, names=load.names)
    col = OpenStackCollector(conn, load.client(), sink, opts)
    stop = threading.Event()
    runner = threading.Thread(target=col.run, args=(stop,))
    runner.start()
    deleted = False

    def ours() -> list[Any]:
        return [r for r in read_all(config, config.topics.inventory) if r.key == key]

    try:
        assert wait_for(ours, 60, every=1.0)
        conn.compute.delete_server(s)
        conn.compute.wait_for_delete(s, wait=120)
        deleted = True
        assert wait_for(lambda: any(r.value is None for r in ours()), 60, every=1.0), ours()
    finally:
        stop.set()
        runner.join(30)
        sink.close()
        if not deleted:
            conn.compute.delete_server(s)
            conn.compute.wait_for_delete(s, wait=120)
    got = ours()
    assert isinstance(got[0].event, VmEvent) and got[0].event.uuid == uid
    last = got[-1]  # the tombstone, after the server's event (one key: one partition)
    assert last.value is None and last.event == Deleted(cluster=cluster, kind="vm", uuid=uid)
    assert [r.value is None for r in got].count(True) == 1 and col.tombstones >= 1
    assert all(r.partition == last.partition and r.offset < last.offset for r in got[:-1])
