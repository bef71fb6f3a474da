"""The vSphere platform's bus commands: ``xdrs collect vsphere`` and ``xdrs actuate vsphere``.

``collect`` runs the vSphere collector with the event bridge into Kafka (inventory, rules,
metric batches, changes; :class:`collectors.vsphere.bus.BusCollector`); ``actuate`` runs the
rebalancing daemon (:class:`xdrs.daemon.service.RebalanceDaemon`) over this vCenter's
clusters with the platform's mover (RelocateVM_Task): automation levels, limits, dry run,
the HTTP API and ``/metrics`` from :mod:`xdrs.cli.daemon`; ``--vmotion-gbps`` picks
vCenter's per-host limit (8 vMotions at 10 GbE and faster, 4 below: the 1 GbE class; the
vMotion NIC's speed is not read from vCenter); it needs ``collect vsphere`` running (its
picture of the clusters comes from the inventory and metrics topics). Both run
until SIGTERM or Ctrl-C (``collect --cycles N`` stops after N collections). One process of
each per vCenter; ``--vcenter-id`` (default: the URL's host[:port]) scopes every id so
several vCenters share one bus.
"""

from __future__ import annotations

import argparse

from xdrs.cli.daemon import add_daemon_args, check_daemon_args, daemon_metrics
from xdrs.cli.options import add_bus_args, add_ratio_args, bus_config, checked, integer, number
from xdrs.cli.vsphere import connect, connection_args, guarded
from xdrs.daemon.policy import PolicyFile

__all__ = ["ACTUATE_HELP", "COLLECT_HELP", "actuate", "collect"]

COLLECT_HELP = "collect a vCenter into Kafka"
ACTUATE_HELP = "apply recommendations with RelocateVM_Task"
BRIDGE_NAMES = {
    "scope": "--vcenter-id",
    "cpu_ratio": "--cpu-ratio",
    "mem_ratio": "--mem-ratio",
    "metric_source": "--metric-source",
    "inventory_every": "--inventory-every",
}


def _scope_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vcenter-id",
        metavar="NAME",
        help="prefix of this vCenter's cluster, host and VM ids on the bus "
        "(default: the URL's host[:port])",
    )


def collect(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``xdrs collect vsphere``."""
    connection_args(p)
    _scope_args(p)
    add_bus_args(p)
    p.add_argument(
        "--interval",
        type=number(above=True),
        default=20.0,
        metavar="SECONDS",
        help="inventory and metrics collection period (default 20)",
    )
    p.add_argument(
        "--cycles", type=integer(0), default=0, metavar="N", help="stop after N (0: never)"
    )
    p.add_argument("--no-perf", action="store_true", help="quickStats only, no QueryPerf")
    p.add_argument(
        "--metric-source",
        default="quickstats",
        metavar="quickstats|perf",
        help="values published as VM demand (default quickstats)",
    )
    add_ratio_args(p)
    p.add_argument(
        "--inventory-every",
        type=integer(0),
        default=15,
        metavar="N",
        help="republish the whole inventory every N collections (0: never)",
    )
    p.set_defaults(func=guarded(_run_collect))


def actuate(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``xdrs actuate vsphere``."""
    connection_args(p)
    _scope_args(p)
    add_bus_args(p)
    p.add_argument("--task-timeout", type=number(above=True), default=600.0, metavar="SECONDS",
                   help="a migration with no result after this fails (default 600)")  # fmt: skip
    p.add_argument("--vmotion-gbps", type=number(above=True), default=10.0, metavar="GBIT/S",
                   help="speed of the hosts' vMotion network: 10 or more, vCenter's limit of "
                   "8 vMotions per host; below 10 (1 GbE), 4 (default 10)")  # fmt: skip
    add_daemon_args(p, "vsphere-10g", per_host_note="; 4 with --vmotion-gbps below 10")
    p.set_defaults(func=guarded(_run_actuate), check=_check_actuate)


def _check_actuate(args: argparse.Namespace) -> None:
    args.daemon_platform = "vsphere-10g" if args.vmotion_gbps >= 10.0 else "vsphere-1g"
    # the daemon's own timeout: the task's, plus the time to read its result
    check_daemon_args(args, timeout_s=args.task_timeout + 60.0)


def _scope(args: argparse.Namespace) -> str:
    # lazy: pyvmomi (optional extra) comes with the vSphere package
    from collectors.vsphere.events import scope_of  # noqa: PLC0415

    return str(args.vcenter_id or scope_of(args.url))


def _run_collect(args: argparse.Namespace) -> int:
    # lazy: pyvmomi (optional extra) and the bus (kafka-python)
    from collectors.vsphere.bus import BusCollector  # noqa: PLC0415
    from collectors.vsphere.collector import CollectorOptions  # noqa: PLC0415
    from collectors.vsphere.events import BridgeOptions  # noqa: PLC0415
    from xdrs.bus.kafka import KafkaSink  # noqa: PLC0415
    from xdrs.services import (  # noqa: PLC0415
        broker_for,
        create_or_fail,
        run_source,
        until_signalled,
    )

    bridge = checked(
        BridgeOptions,
        BRIDGE_NAMES,
        scope=_scope(args),
        cpu_ratio=args.cpu_ratio,
        mem_ratio=args.mem_ratio,
        metric_source=args.metric_source,
        inventory_every=args.inventory_every,
    )
    opts = CollectorOptions(interval_s=args.interval, perf=not args.no_perf)
    stop = until_signalled()
    with connect(args) as conn, broker_for(args.bootstrap_servers) as bootstrap:
        config = bus_config(args, "xdrs-collect-vsphere", bootstrap)
        create_or_fail(config)
        sink = KafkaSink(config)
        source = BusCollector(conn, sink, bridge, opts, cycles=args.cycles)
        run_source(source, stop, sink)
        print(f"xdrs collect vsphere: {source.summary()}")
    return 0


def _run_actuate(args: argparse.Namespace) -> int:
    # lazy: pyvmomi (optional extra) and the bus (kafka-python)
    from collectors.vsphere.bus import bus_mover  # noqa: PLC0415
    from xdrs.daemon.service import DaemonOptions, serve  # noqa: PLC0415
    from xdrs.services import broker_for, create_or_fail, until_signalled  # noqa: PLC0415

    scope = _scope(args)
    opts = DaemonOptions(limits=args.limits, policy=args.automation_policy or PolicyFile(),
                         dry_run=args.dry_run)  # fmt: skip
    stop = until_signalled()
    with connect(args) as conn, broker_for(args.bootstrap_servers) as bootstrap:
        _ = conn.si  # log in now: a wrong password or URL fails before any Kafka traffic
        config = bus_config(args, "xdrs-actuate-vsphere", bootstrap)
        create_or_fail(config)
        mover = bus_mover(conn, scope, timeout_s=args.task_timeout)
        with daemon_metrics(args) as registry:
            daemon = serve(config, mover, opts, stop, args.api_config, registry)
        n = daemon.core.counts.by_status if daemon.core is not None else {}
        print(f"xdrs actuate vsphere: {n.get('ok', 0)} moved, {n.get('failed', 0)} failed, "
              f"{n.get('skipped', 0)} skipped, {n.get('held', 0)} held for approval")  # fmt: skip
    return 0
