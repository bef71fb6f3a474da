"""Collection cycle cost of the OpenStack collector: the test cloud, and 1,000 hypervisors /
20,000 servers from the test cloud's recorded answers scaled up.

``python -m bench.openstack`` times, median of ``--repeat`` runs, against a cloud served by
``tests/collectors/openstack/replay.py`` in a process of its own (Keystone, Placement, Nova
and Prometheus answers recorded from the test cloud by ``scripts/openstack/record.py``,
grown to ``--hosts`` / ``--servers``; loopback HTTP, so the network costs nothing): the
inventory (``collect_inventory``: services, providers, two Placement calls per host, the
server pages, server groups), the three Prometheus queries, the mapping to events, a whole
cycle into a null sink, and the Prometheus queries a cycle sends at every size (they must
not grow with the servers). Then with the embedded Kafka broker: events/s of a first cycle
(the whole inventory and every batch) and of a steady one (batches only). With
``--live`` (the test cloud up, ``OS_CLIENT_CONFIG_FILE`` naming its clouds.yaml), also the
inventory of the real cloud. Writes bench/RESULTS-openstack.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.timing import timed

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "RESULTS-openstack.md"
CLOUD = "xdrs-test"


class _NullSink:
    def __init__(self) -> None:
        self.events = 0

    def publish(self, kind: str, key: str, event: Any) -> None:
        self.events += 1

    def flush(self) -> None:
        pass


def _serve(hosts: int, servers: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.collectors.openstack.replay", str(hosts), str(servers)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    url = proc.stdout.readline().strip() if proc.stdout else ""
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"replay server did not start: {url!r}")
    return proc, url


def _connect(url: str, tmp: Path) -> Any:
    from collectors.openstack import CloudSpec, connect
    from tests.collectors.openstack.replay import clouds_yaml, keystone_port, load

    auth = f"{url}/{keystone_port(load())}/v3"
    before = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml(tmp / "clouds.yaml", CLOUD, auth))
    try:
        return connect(CloudSpec(CLOUD))
    finally:  # the live cloud's clouds.yaml again (--live)
        if before is None:
            del os.environ["OS_CLIENT_CONFIG_FILE"]
        else:
            os.environ["OS_CLIENT_CONFIG_FILE"] = before


def measure(hosts: int, servers: int, repeat: int) -> dict[str, Any]:
    from collectors.openstack import collect_inventory, inventory_events
    from collectors.openstack.collector import CollectorOptions, OpenStackCollector
    from collectors.openstack.prometheus import PromClient, PromSpec, SeriesNames, query_load

    proc, url = _serve(hosts, servers)
    try:
        with tempfile.TemporaryDirectory() as d:
            conn = _connect(url, Path(d))
            names = SeriesNames(window_s=5.0)
            prom = PromClient(PromSpec(f"{url}/prometheus"))
            res: dict[str, Any] = {}
            res["inventory"], inv = timed(lambda: collect_inventory(conn, CLOUD), repeat)
            res["prometheus"], load = timed(lambda: query_load(prom, names), repeat)
            res["mapping"], events = timed(lambda: inventory_events(inv, CLOUD), repeat)
            sink = _NullSink()
            col = OpenStackCollector(conn, prom, sink, CollectorOptions(CLOUD, names=names))
            res["first"], _ = timed(col.cycle, 1)
            first_events, sink.events, before = sink.events, 0, prom.queries
            res["cycle"], _ = timed(col.cycle, repeat)
            res["counts"] = {
                "hosts": len(inv.hosts), "servers": len(inv.servers), "events": len(events),
                "first_events": first_events, "steady_events": sink.events // repeat,
                "queries_per_cycle": (prom.queries - before) / repeat,
                "series": len(load.host_busy) + len(load.server_cpu_ns) + len(load.server_mem_mb),
            }  # fmt: skip
            res["kafka"] = measure_kafka(conn, prom, names, repeat)
            conn.close()
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(30)
    return res


def measure_kafka(conn: Any, prom: Any, names: Any, repeat: int) -> dict[str, Any]:
    """Events/s of collector cycles into the embedded broker (every event acknowledged)."""
    from collectors.openstack.collector import CollectorOptions, OpenStackCollector
    from xdrs.bus import BusConfig, EmbeddedBroker, Topics
    from xdrs.bus.kafka import KafkaSink, create_topics

    out: dict[str, Any] = {"first": [], "steady": []}
    with EmbeddedBroker() as broker:
        config = BusConfig(broker.bootstrap, topics=Topics(f"bench{time.time_ns()}."))
        create_topics(config)
        sink = KafkaSink(config)
        col = OpenStackCollector(conn, prom, sink, CollectorOptions(CLOUD, names=names))
        for i in range(repeat + 1):
            before = col.published + col.tombstones + col.batches
            t0 = time.perf_counter()
            col.cycle()  # flushes: every event acknowledged by the broker
            n = col.published + col.tombstones + col.batches - before
            out["first" if i == 0 else "steady"].append((time.perf_counter() - t0, n))
        sink.close()
    return out


LIVE_SERVERS = 6  # m1.tiny, two per host: inside the test cloud's quota of 10 instances


def measure_live(repeat: int) -> dict[str, Any]:
    """The real test cloud with ``LIVE_SERVERS`` servers booted for the run (deleted after):
    its inventory, and the inventory events built and published into the embedded broker
    (acknowledged), as a first cycle publishes them (its metrics need the tests' exporter,
    so they are timed on the recorded answers above)."""
    from collectors.events import inventory_key
    from collectors.openstack import CloudSpec, collect_inventory, connect
    from collectors.openstack.mapping import inventory_events
    from tests.collectors.openstack.conftest import boot, delete_all, unique
    from xdrs.bus import BusConfig, EmbeddedBroker, Topics
    from xdrs.bus.kafka import KafkaSink, create_topics

    conn = connect(CloudSpec(CLOUD))
    zones = {1: "az1", 2: "az1", 3: "az2"}  # fake-1, fake-2 in az1; fake-3 in az2
    made = [boot(conn, unique("bench"), "m1.tiny", availability_zone=f"{zones[h]}:fake-{h}")
            for h in [i % 3 + 1 for i in range(LIVE_SERVERS)]]  # fmt: skip
    try:
        times, inv = timed(lambda: collect_inventory(conn, CLOUD), repeat)
        with EmbeddedBroker() as broker:
            config = BusConfig(broker.bootstrap, topics=Topics(f"benchos{time.time_ns()}."))
            create_topics(config)
            sink = KafkaSink(config)

            def publish() -> int:
                events = inventory_events(collect_inventory(conn, CLOUD), CLOUD)
                for e in events:
                    kind = type(e).__name__.removesuffix("Event").lower()  # host, vm, rules
                    sink.publish("inventory", inventory_key(e.cluster, kind, getattr(
                        e, "uuid", "") if kind != "rules" else ""), e)  # fmt: skip
                sink.flush()
                return len(events)

            cycle, n = timed(publish, repeat)
            sink.close()
    finally:
        delete_all(conn, made)
        conn.close()
    return {"inventory": times, "cycle": cycle, "events": n, "hosts": len(inv.hosts),
            "servers": len(inv.servers)}  # fmt: skip


def _row(name: str, times: list[float], what: str) -> str:
    med = statistics.median(times)
    return f"| {name} | {med * 1000:,.0f} ms | {min(times) * 1000:,.0f} ms | {what} |"


def _rate(name: str, runs: list[tuple[float, int]]) -> str:
    t = statistics.median(r[0] for r in runs)
    n = int(statistics.median(r[1] for r in runs))
    return f"| {name} | {n:,} | {t * 1000:,.0f} ms | {n / t:,.0f} |"


def report(
    sizes: list[dict[str, Any]], live: dict[str, Any] | None, repeat: int, load: tuple[float, float]
) -> str:
    lines = [
        "# OpenStack collector benchmark (`python -m bench.openstack`)", "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; median of {repeat} "
        f"runs (min beside it); 1-minute load average {load[0]:.2f} at the start, "
        f"{load[1]:.2f} at the end. Target: a 20,000-server cycle well inside a 60 s "
        "interval.", "",
        "The cloud is the test cloud's recorded answers scaled up, served over loopback HTTP "
        "by a process of its own (`tests/collectors/openstack/replay.py`): what is timed is "
        "the collector's own work and HTTP on loopback, not a real Nova's database.", "",
    ]  # fmt: skip
    for s in sizes:
        c = s["counts"]
        lines += [
            f"## {c['hosts']:,} hypervisors, {c['servers']:,} servers", "",
            "| step | median | min | what |", "|---|---|---|---|",
            _row("inventory, every provider read", s["inventory"],
                 f"{2 * c['hosts'] + 4 + -(-c['servers'] // 1000):,} HTTP calls and the "
                 "hypervisor, aggregate and group listings (two Placement calls per host; "
                 "server pages of 1,000)"),
            _row("Prometheus", s["prometheus"], f"3 queries, {c['series']:,} series"),
            _row("mapping", s["mapping"], f"{c['events']:,} inventory events built"),
            _row("first cycle", s["first"], f"{c['first_events']:,} events (inventory + "
                 "batches), every provider read"),
            _row("steady cycle", s["cycle"], f"{c['steady_events']:,} events (batches); "
                 "providers unchanged: Placement's listing only"),
            "", f"Prometheus queries per cycle: {c['queries_per_cycle']:g}.", "",
            "| into Kafka (embedded broker) | events | cycle | events/s |", "|---|---|---|---|",
            _rate("first cycle", s["kafka"]["first"]),
            _rate("steady cycle", s["kafka"]["steady"]), "",
        ]  # fmt: skip
    if live is not None:
        lines += [
            "## The test cloud (real Nova, Placement, Keystone)", "",
            f"{live['hosts']} hosts, {live['servers']} servers (booted for the run; Nova's "
            "`max_limit` is 5 there, so servers come in pages of 5):", "",
            "| step | median | min | what |", "|---|---|---|---|",
            _row("inventory", live["inventory"], "services, hypervisors, providers, "
                 "servers, server groups, aggregates"),
            _row("inventory into Kafka", live["cycle"], f"inventory again, {live['events']} "
                 "events built and published to the embedded broker, acknowledged"), "",
        ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10x200,100x2000,1000x20000", metavar="HxS,...")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--live", action="store_true", help="also the running test cloud")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    sizes = []
    start_load = os.getloadavg()[0]
    for spec in args.sizes.split(","):
        h, s = (int(x) for x in spec.split("x"))
        sizes.append(measure(h, s, args.repeat))
        print(f"{h} hosts / {s} servers: cycle "
              f"{statistics.median(sizes[-1]['cycle']):.2f} s", flush=True)  # fmt: skip
    live = measure_live(args.repeat) if args.live else None
    loads = (start_load, os.getloadavg()[0])
    args.out.write_text(report(sizes, live, args.repeat, loads) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
