"""The OpenStack platform's commands.

- ``xdrs openstack snapshot`` reads a cloud's compute hosts, Placement capacity, servers and
  server groups and writes a ``drs-peer-cluster/1`` snapshot (each availability zone a
  migration domain), so ``xdrs plan`` runs on OpenStack with no Kafka.
- ``xdrs collect openstack`` publishes the cloud's inventory and its load from Prometheus
  to Kafka every interval (:class:`collectors.openstack.collector.OpenStackCollector`).
- ``xdrs actuate openstack`` runs the rebalancing daemon (:mod:`xdrs.daemon`) over the
  cloud's :class:`~collectors.openstack.NovaMover` with the daemon's shared options
  (:mod:`xdrs.cli.daemon`: automation, limits, dry run, HTTP API, ``/metrics``); its
  ``--per-host`` default is Nova's: one live migration per compute host at a time,
  ``max_concurrent_live_migrations``' default.
- ``xdrs openstack load-exporter`` serves trace-driven node_exporter- and Ceilometer-named
  series for a cloud with no load of its own (the test cloud, a demo).

The cloud is a clouds.yaml entry (``--cloud``) or the ``OS_*`` environment; TLS (the
cloud's and Prometheus's) is verified unless ``--insecure``. openstacksdk is imported only
when a command runs; a cloud that refuses or cannot be reached is one ``xdrs: error:`` line
and exit status 1.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from xdrs._io import atomic_write
from xdrs.cli.daemon import add_daemon_args, check_daemon_args, daemon_metrics
from xdrs.cli.options import (
    add_bus_args,
    add_tls_args,
    address,
    bus_config,
    checked,
    integer,
    number,
)
from xdrs.daemon.policy import PolicyFile
from xdrs.errors import CommandError, UsageError
from xdrs.snapshot import snapshot_doc

__all__ = ["ACTUATE_HELP", "COLLECT_HELP", "actuate", "collect", "connection_args", "guarded",
           "register"]  # fmt: skip

COLLECT_HELP = "collect an OpenStack cloud (Nova, Placement, Prometheus) into Kafka"
ACTUATE_HELP = "apply recommendations with Nova live migration (the rebalancing daemon)"
SERIES = {
    "host_cpu": ("--host-cpu-metric", "node_cpu_seconds_total"),
    "host_label": ("--host-label", "fqdn"),
    "idle_mode": ("--idle-mode", "idle"),
    "server_cpu": ("--server-cpu-metric", "ceilometer_cpu"),
    "server_memory": ("--server-memory-metric", "ceilometer_memory_usage"),
    "server_label": ("--server-label", "resource"),
}


def connection_args(p: argparse.ArgumentParser) -> None:
    """A cloud's name, TLS and timeout: every OpenStack command's options."""
    p.add_argument(
        "--cloud", metavar="NAME", help="clouds.yaml entry (default: the OS_* environment)"
    )
    p.add_argument("--cloud-id", metavar="ID", help="prefix of this cloud's ids (default: --cloud)")
    add_tls_args(p)


def register(sub: Any) -> None:
    top = sub.add_parser("openstack", help="snapshot a live OpenStack cloud, serve test load")
    group = top.add_subparsers(dest="openstack_command", required=True, parser_class=type(top))
    p = group.add_parser("snapshot", help="write a drs-peer-cluster/1 snapshot of a cloud")
    connection_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="SNAPSHOT.json")
    p.set_defaults(func=guarded(_snapshot))
    load_exporter(group.add_parser("load-exporter", help=LOAD_HELP))


def series_args(p: argparse.ArgumentParser) -> None:
    """The Prometheus series names (node_exporter's and Ceilometer's by default)."""
    for option, default in SERIES.values():
        p.add_argument(option, default=default, metavar="NAME", help=f"(default {default})")


def _names(args: argparse.Namespace, window_s: float = 60.0) -> Any:
    # lazy: the platform package (openstacksdk) loads only when a command runs
    from collectors.openstack.prometheus import SeriesNames  # noqa: PLC0415

    fields = {f: getattr(args, o[2:].replace("-", "_")) for f, (o, _) in SERIES.items()}
    names = {f: o for f, (o, _) in SERIES.items()} | {"window_s": "--window"}
    return checked(SeriesNames, names, window_s=window_s, **fields)


def collect(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``xdrs collect openstack``."""
    connection_args(p)
    add_bus_args(p)
    p.add_argument("--prometheus-url", required=True, metavar="URL",
                   help="the deployment's Prometheus (http(s)://HOST:PORT)")  # fmt: skip
    add_tls_args(p, "prometheus-")
    series_args(p)
    p.add_argument("--window", type=number(1.0, 86_400.0), default=60.0, metavar="SECONDS",
                   help="rate window of the CPU series (default 60)")  # fmt: skip
    p.add_argument("--interval", type=number(above=True), default=30.0, metavar="SECONDS",
                   help="collection period (default 30)")  # fmt: skip
    p.add_argument("--cycles", type=integer(0), default=0, metavar="N",
                   help="stop after N collections (0: never)")  # fmt: skip
    p.add_argument("--metrics-addr", type=address, metavar="HOST:PORT",
                   help="serve the collector's own /metrics here (default: none)")  # fmt: skip
    p.set_defaults(func=guarded(_run_collect))


def actuate(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``xdrs actuate openstack``."""
    connection_args(p)
    add_bus_args(p)
    p.add_argument("--migration-timeout", type=number(above=True), default=600.0,
                   metavar="SECONDS", help="one live migration at most (default 600)")  # fmt: skip
    # --per-host 1: Nova's max_concurrent_live_migrations per compute host, its default
    add_daemon_args(p, "nova", per_host_note=": Nova's max_concurrent_live_migrations")
    p.set_defaults(func=guarded(_run_actuate), check=_check_actuate)


def _check_actuate(args: argparse.Namespace) -> None:
    # the daemon's own timeout: the migration's, plus the time to read its result
    check_daemon_args(args, args.migration_timeout + 60.0, "--migration-timeout")


def guarded(fn: Any) -> Any:
    """Run ``fn`` with openstacksdk present; cloud failures become :class:`CommandError`."""

    def handler(args: argparse.Namespace) -> int:
        try:
            # lazy: openstacksdk, an optional extra, loads only when an OpenStack command runs
            from collectors.openstack import OpenStackError  # noqa: PLC0415
        except ImportError as e:
            raise UsageError(
                f"openstack: openstacksdk is not installed ({e}); pip install 'xdrs[openstack]'"
            ) from None
        try:
            status: int = fn(args)
            return status
        except OpenStackError as e:
            raise CommandError(str(e)) from None

    return handler


def scope(args: argparse.Namespace) -> str:
    """The prefix of the cloud's ids on the bus (``--cloud-id``, else ``--cloud``)."""
    return str(args.cloud_id or args.cloud or "openstack")


def connect(args: argparse.Namespace) -> Any:
    # lazy: openstacksdk (optional extra)
    from collectors.openstack import CloudSpec  # noqa: PLC0415
    from collectors.openstack import connect as sdk_connect  # noqa: PLC0415

    spec = CloudSpec(args.cloud, args.ca_bundle, args.insecure, args.timeout)
    return sdk_connect(spec)


def _snapshot(args: argparse.Namespace) -> int:
    # lazy: openstacksdk (optional extra)
    from collectors.openstack import collect_inventory, to_cluster_state  # noqa: PLC0415
    from collectors.openstack.connection import error  # noqa: PLC0415

    conn = connect(args)
    try:
        inv = collect_inventory(conn, str(conn.config.get_auth_args().get("auth_url", "")))
    except Exception as e:  # the SDK's and keystoneauth's many failure types
        raise error(scope(args), e) from None
    finally:
        conn.close()
    state = to_cluster_state(inv, scope(args))
    doc = snapshot_doc(state)
    _name(doc, inv, scope(args))
    atomic_write(args.out, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(
        f"xdrs openstack snapshot: {state.n_hosts} hosts, {state.n_vms} active servers, "
        f"{int(state.domain.max(initial=-1)) + 1} availability zones -> {args.out}"
    )
    return 0


def _name(doc: dict[str, Any], inv: Any, prefix: str) -> None:
    """Host names, server names and availability zones as domains in the snapshot."""
    hosts = {f"{prefix}/{h.name}": h for h in inv.hosts}
    names = {f"{prefix}/{s.id}": s.name for s in inv.servers}
    for h in doc["hosts"]:
        h["hostname"] = hosts[h["uuid"]].name
        h["domain"] = hosts[h["uuid"]].zone or "nova"
    for v in doc["vms"]:
        v["name"] = names[v["uuid"]]
    doc["generator"] = {
        "name": "xdrs openstack snapshot",
        "source": inv.source,
        "collected_at": inv.collected_at,
    }


def _prom_spec(args: argparse.Namespace) -> Any:
    # lazy: the platform package (openstacksdk) loads only when a command runs
    from collectors.openstack.prometheus import PromSpec  # noqa: PLC0415

    return checked(
        PromSpec,
        {"url": "--prometheus-url", "ca_bundle": "--prometheus-ca-bundle",
         "insecure": "--prometheus-insecure", "timeout_s": "--prometheus-timeout"},
        url=args.prometheus_url, ca_bundle=args.prometheus_ca_bundle,
        insecure=args.prometheus_insecure, timeout_s=args.prometheus_timeout,
    )  # fmt: skip


def _run_collect(args: argparse.Namespace) -> int:
    # lazy: openstacksdk (optional extra), the bus (kafka-python) and prometheus_client
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    from collectors.openstack.collector import (  # noqa: PLC0415
        CollectorOptions,
        CollectorStats,
        OpenStackCollector,
    )
    from collectors.openstack.prometheus import PromClient  # noqa: PLC0415
    from xdrs.bus.kafka import KafkaSink  # noqa: PLC0415
    from xdrs.services import (  # noqa: PLC0415
        broker_for,
        create_or_fail,
        run_source,
        until_signalled,
    )

    series = _names(args, args.window)
    opts = checked(lambda **kw: CollectorOptions(names=series, **kw),
                   {"scope": "--cloud-id", "interval_s": "--interval"},
                   scope=scope(args), interval_s=args.interval)  # fmt: skip
    prom = PromClient(_prom_spec(args))
    registry = CollectorRegistry()
    stats = CollectorStats(registry)
    stop = until_signalled()
    conn = connect(args)  # wrong credentials fail here, before any Kafka traffic
    with broker_for(args.bootstrap_servers) as bootstrap:
        config = bus_config(args, "xdrs-collect-openstack", bootstrap)
        create_or_fail(config)
        server = None
        if args.metrics_addr:
            try:
                server, _ = start_http_server(args.metrics_addr[1], addr=args.metrics_addr[0],
                                              registry=registry)  # fmt: skip
            except OSError as e:
                raise UsageError(f"--metrics-addr: {e.strerror or e}") from None
        sink = KafkaSink(config)
        col = OpenStackCollector(conn, prom, sink, opts, stats=stats, cycles=args.cycles)
        try:
            run_source(col, stop, sink)
        finally:
            conn.close()
            if server is not None:
                server.shutdown()
        print(f"xdrs collect openstack: {col.summary()}")
    return 0


def _run_actuate(args: argparse.Namespace) -> int:
    # lazy: openstacksdk (optional extra) and the bus (kafka-python)
    from collectors.openstack import NOVA_PATIENCE, NovaMover  # noqa: PLC0415
    from xdrs.daemon.service import DaemonOptions, serve  # noqa: PLC0415
    from xdrs.services import broker_for, create_or_fail, until_signalled  # noqa: PLC0415

    opts = DaemonOptions(limits=args.limits, policy=args.automation_policy or PolicyFile(),
                         dry_run=args.dry_run)  # fmt: skip
    stop = until_signalled()
    conn = connect(args)
    try:
        patience = replace(NOVA_PATIENCE, timeout_s=args.migration_timeout)
        mover = NovaMover(conn, scope(args), patience)
        with daemon_metrics(args) as registry, broker_for(args.bootstrap_servers) as bootstrap:
            config = bus_config(args, "xdrs-actuate-openstack", bootstrap)
            create_or_fail(config)
            daemon = serve(config, mover, opts, stop, args.api_config, registry)
    finally:
        conn.close()
    n = daemon.core.counts.by_status if daemon.core is not None else {}
    print(f"xdrs actuate openstack: {n.get('ok', 0)} moved, {n.get('failed', 0)} failed, "
          f"{n.get('skipped', 0)} skipped, {n.get('held', 0)} held for approval")  # fmt: skip
    return 0


# ---- the load exporter --------------------------------------------------------------------------

LOAD_HELP = "serve trace-driven node_exporter and Ceilometer series for a cloud's servers"


def load_exporter(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``xdrs openstack load-exporter``."""
    connection_args(p)
    series_args(p)
    p.add_argument("--listen", type=address, default=("127.0.0.1", 9180), metavar="HOST:PORT",
                   help="serve /metrics here (default 127.0.0.1:9180)")  # fmt: skip
    p.add_argument("--trace", default="planetlab:20110303", metavar="SPEC",
                   help="the trace whose VMs' CPU the servers take (default: the packaged "
                   "PlanetLab day)")  # fmt: skip
    p.add_argument("--trace-dir", type=Path, metavar="DIR")
    p.add_argument("--step", type=number(above=True), default=10.0, metavar="SECONDS",
                   help="wall seconds per trace step (default 10)")  # fmt: skip
    p.add_argument("--refresh", type=number(above=True), default=10.0, metavar="SECONDS",
                   help="read where the servers run this often (default 10)")  # fmt: skip
    p.set_defaults(func=guarded(_run_load_exporter))


def _run_load_exporter(args: argparse.Namespace) -> int:
    # lazy: openstacksdk (optional extra) and prometheus_client
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    from collectors.openstack import collect_inventory  # noqa: PLC0415
    from collectors.openstack.connection import error  # noqa: PLC0415
    from collectors.openstack.loadexporter import LoadExporter, LoadModel, follow  # noqa: PLC0415
    from collectors.replay.traces import TraceError, load_trace  # noqa: PLC0415
    from xdrs.services import until_signalled  # noqa: PLC0415

    try:
        trace = load_trace(args.trace, args.trace_dir)
    except (TraceError, OSError) as e:
        raise UsageError(f"--trace: {e}") from None
    model = LoadModel(trace, step_s=args.step)
    registry = CollectorRegistry()
    registry.register(LoadExporter(model, _names(args)))
    conn = connect(args)
    try:
        model.update(collect_inventory(conn, scope(args)))
    except Exception as e:  # the SDK's and keystoneauth's many failure types
        raise error(scope(args), e) from None
    try:
        server, _ = start_http_server(args.listen[1], addr=args.listen[0], registry=registry)
    except OSError as e:
        raise UsageError(f"--listen: {e.strerror or e}") from None
    print(f"xdrs openstack load-exporter: {len(model.hosts)} hosts, {len(model.servers)} "
          f"servers on http://{args.listen[0]}:{server.server_address[1]}/metrics",
          flush=True)  # fmt: skip
    stop = until_signalled()
    try:
        follow(model, lambda: collect_inventory(conn, scope(args)), args.refresh, stop)
    finally:
        server.shutdown()
        conn.close()
    return 0
