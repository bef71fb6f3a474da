"""``xdrs collect vsphere`` and ``xdrs actuate vsphere``: a vCenter on the event bus.

``collect`` runs the vSphere collector with the event bridge into Kafka (inventory, rules,
metric batches, changes); ``actuate`` applies the engine's recommendations for this
vCenter's clusters with RelocateVM_Task and publishes the results. Both run until SIGTERM
or Ctrl-C (``collect --cycles N`` stops after N collections). One process of each per
vCenter; ``--vcenter-id`` (default: the URL's host[:port]) scopes every id so several
vCenters share one bus.
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from xdrs.cli.vsphere import _connect, _connection_args, _guarded
from xdrs.services import _create, _until_signalled, add_bus_args, broker_for, bus_config

__all__ = ["register"]

log = logging.getLogger(__name__)


def _scope_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vcenter-id",
        metavar="NAME",
        help="prefix of this vCenter's cluster, host and VM ids on the bus "
        "(default: the URL's host[:port])",
    )


def register(sub: Any) -> None:
    top = sub.add_parser("collect", help="publish a platform's inventory and metrics to Kafka")
    plat = top.add_subparsers(dest="collect_platform", required=True, parser_class=type(top))
    p = plat.add_parser("vsphere", help="collect a vCenter into Kafka")
    _connection_args(p)
    _scope_args(p)
    add_bus_args(p)
    p.add_argument(
        "--interval",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="inventory and metrics collection period (default 20)",
    )
    p.add_argument("--cycles", type=int, default=0, metavar="N", help="stop after N (0: never)")
    p.add_argument("--no-perf", action="store_true", help="quickStats only, no QueryPerf")
    p.add_argument(
        "--metric-source",
        choices=("quickstats", "perf"),
        default="quickstats",
        help="values published as VM demand (default quickstats)",
    )
    p.add_argument("--cpu-ratio", type=float, default=4.0, help="vCPUs per core (default 4)")
    p.add_argument("--mem-ratio", type=float, default=1.0, help="memory over-commit (1)")
    p.add_argument(
        "--inventory-every",
        type=int,
        default=15,
        metavar="N",
        help="republish the whole inventory every N collections (0: never)",
    )
    p.set_defaults(func=_guarded(run_collect))
    top = sub.add_parser("actuate", help="apply recommendations on a platform")
    plat = top.add_subparsers(dest="actuate_platform", required=True, parser_class=type(top))
    p = plat.add_parser("vsphere", help="apply recommendations with RelocateVM_Task")
    _connection_args(p)
    _scope_args(p)
    add_bus_args(p)
    p.add_argument(
        "--group", metavar="NAME", help="consumer group (default xdrs-actuator-<vcenter id>)"
    )
    p.add_argument("--task-timeout", type=float, default=600.0, metavar="SECONDS")
    p.add_argument(
        "--max-age",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="recommendations older than this are not applied (default 600)",
    )
    p.add_argument(
        "--confirm-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="publish a recommendation's results once the collector has published the moved "
        "VMs on their new hosts, waiting at most this long (default 30; 0: do not wait)",
    )
    p.set_defaults(func=_guarded(run_actuate))


def _scope(args: argparse.Namespace) -> str:
    from collectors.vsphere.events import scope_of  # noqa: PLC0415

    return str(args.vcenter_id or scope_of(args.url))


def run_collect(args: argparse.Namespace) -> int:
    from collectors.vsphere import CollectorOptions, VSphereCollector  # noqa: PLC0415
    from collectors.vsphere.events import BridgeOptions, EventBridge  # noqa: PLC0415
    from xdrs.bus.kafka import KafkaSink  # noqa: PLC0415
    from xdrs.cli.plan import UsageError  # noqa: PLC0415

    bopts = BridgeOptions(
        _scope(args),
        cpu_ratio=args.cpu_ratio,
        mem_ratio=args.mem_ratio,
        metric_source=args.metric_source,
        inventory_every=args.inventory_every,
    )
    try:
        bopts.validate()
        if args.interval <= 0:
            raise ValueError(f"interval: expected a number > 0, got {args.interval}")
    except ValueError as e:
        raise UsageError(f"--{str(e).replace('_', '-')}") from None
    opts = CollectorOptions(interval_s=args.interval, perf=not args.no_perf)
    stop = _until_signalled()
    with _connect(args) as conn, broker_for(args) as bootstrap:
        config = bus_config(args, "xdrs-collect-vsphere", bootstrap)
        _create(config)
        sink = KafkaSink(config)
        bridge = EventBridge(sink, bopts)
        col = VSphereCollector(conn, bridge, opts)
        try:
            if args.cycles:
                _cycles(col, args.cycles, args.interval, stop)
            else:
                col.run(stop)
        finally:
            sink.close()
        print(
            f"xdrs collect vsphere: {col.cycles} collections, {bridge.published} inventory "
            f"events, {bridge.tombstones} tombstones, {bridge.batches} metric batches"
        )
    return 0


def _cycles(col: Any, n: int, interval: float, stop: threading.Event) -> None:
    for i in range(n):
        if stop.is_set():
            return
        deadline = col.clock() + interval
        col.cycle()
        if i < n - 1:
            col.watch_until(deadline, stop)


def run_actuate(args: argparse.Namespace) -> int:
    from collectors.vsphere.mover import VSphereMover  # noqa: PLC0415
    from xdrs.actuate import ActuatorDaemon  # noqa: PLC0415

    scope = _scope(args)
    stop = _until_signalled()
    with _connect(args) as conn, broker_for(args) as bootstrap:
        _ = conn.si  # log in now: a wrong password or URL fails before any Kafka traffic
        config = bus_config(args, "xdrs-actuate-vsphere", bootstrap)
        _create(config)
        mover = VSphereMover(conn, scope, timeout_s=args.task_timeout)
        daemon = ActuatorDaemon(
            config,
            mover,
            args.group or f"xdrs-actuator-{scope}",
            max_age_s=args.max_age,
            confirm_s=args.confirm_timeout,
        )
        daemon.run(stop)
        ok = sum(r.status == "ok" for r in daemon.results)
        print(
            f"xdrs actuate vsphere: {ok} moved, {len(daemon.results) - ok} failed, "
            f"{daemon.skipped} already applied"
        )
    return 0
