"""``xdrs demo``: the whole pipeline on one machine, with nothing configured.

It starts the embedded broker (unless ``--bootstrap-servers`` is given), then the demo
(:mod:`xdrs.demo`): the trace-replay collector on a PlanetLab day, the engine daemon, the
Prometheus exporter and the rebalancing daemon over the replay platform's timed mover
(``--fail-rate``, ``--link-gbps``, ``--dirty-rate``) with the daemon's own options
(:mod:`xdrs.cli.daemon`: automation, limits, ``--dry-run``, ``--api``). ``--duration``
bounds the run.
"""

from __future__ import annotations

import argparse
from typing import Any

from xdrs.cli.daemon import add_daemon_args, check_daemon_args
from xdrs.cli.options import add_bus_args, add_threshold, bus_config, checked, number, port
from xdrs.cli.platforms.replay import add_mover_args, add_replay_args, check_mover_args, load_replay

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the event pipeline on a replayed PlanetLab day")
    add_bus_args(p)
    add_replay_args(p)
    p.add_argument("--duration", type=number(above=True), default=60.0, metavar="SECONDS")
    add_threshold(p)
    p.add_argument(
        "--metrics-port",
        type=port,
        default=0,
        metavar="PORT",
        help="Prometheus /metrics on 127.0.0.1:PORT (default: a free port)",
    )
    p.add_argument("--quiet", action="store_true", help="summary only")
    add_mover_args(p)
    add_daemon_args(p, "replay", metrics=False)  # its metrics: --metrics-port, the engine's
    p.set_defaults(func=_run, check=_check)


def _check(args: argparse.Namespace) -> None:
    # lazy: the engine's modules load only for the commands that run it
    from xdrs.engine.engine import EngineArgs  # noqa: PLC0415

    args.engine_args = checked(
        EngineArgs,
        {"threshold": "--threshold"},
        threshold=args.threshold,
        cooldown_s=1.0,
        pending_s=30.0,
    )
    check_mover_args(args)
    check_daemon_args(args)


def _run(args: argparse.Namespace) -> int:
    # lazy: the demo brings kafka-python, prometheus_client and the engine daemon
    from xdrs.demo import DemoOptions, run_demo  # noqa: PLC0415
    from xdrs.services import broker_for  # noqa: PLC0415

    scenario, trace = load_replay(args)
    opts = DemoOptions(
        duration_s=args.duration,
        speed=args.speed,
        engine=args.engine_args,
        metrics_port=args.metrics_port,
        quiet=args.quiet,
        embedded=not args.bootstrap_servers,
        link=args.link_model,
        automation=args.automation_policy,
        limits=args.limits,
        dry_run=args.dry_run,
        api=args.api_config,
    )
    with broker_for(args.bootstrap_servers) as bootstrap:
        return run_demo(opts, scenario, trace, bus_config(args, "xdrs-demo", bootstrap))
