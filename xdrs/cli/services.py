"""``xdrs engine`` and ``xdrs replay``: the long-running processes of a deployment.

``xdrs engine`` consumes inventory, metrics and action results and publishes
recommendations, with the Prometheus exporter; several engines in one consumer group share
the clusters. ``xdrs replay`` is the trace-replay collector (also ``xdrs collect replay``).
Both run until SIGTERM or Ctrl-C. With no ``--bootstrap-servers`` they start the embedded
broker themselves. The wiring is :mod:`xdrs.services`.
"""

from __future__ import annotations

import argparse
from typing import Any

from xdrs.cli.options import (
    add_bus_args,
    add_threshold,
    address,
    bus_config,
    checked,
    integer,
    number,
)
from xdrs.cli.platforms import replay

__all__ = ["register", "run_engine"]

ENGINE_NAMES = {"threshold": "--threshold", "period_s": "--period", "max_moves": "--max-moves",
                "demand_window": "--demand-window", "demand_q": "--demand-q"}  # fmt: skip


def register(sub: Any) -> None:
    p = sub.add_parser("engine", help="run the engine daemon (recommendations + /metrics)")
    add_bus_args(p)
    p.add_argument("--group", default="xdrs-engine", help="consumer group of the engines")
    p.add_argument(
        "--metrics-addr",
        type=address,
        default=("127.0.0.1", 9464),
        metavar="HOST:PORT",
        help="Prometheus /metrics (default 127.0.0.1:9464)",
    )
    add_threshold(p)
    p.add_argument(
        "--period",
        type=number(),
        default=300.0,
        metavar="SECONDS",
        help="optimise every cluster at least this often (0: never)",
    )
    p.add_argument(
        "--max-moves",
        type=integer(0),
        default=64,
        metavar="N",
        help="move budget of one recommendation (default 64)",
    )
    p.add_argument(
        "--demand-window",
        type=integer(0),
        default=0,
        metavar="SAMPLES",
        help="CPU demand = the --demand-q quantile of each VM's last SAMPLES samples "
        "(the simulator's backtest chose 72 at 0.95); 0, the default: the EWMA",
    )
    p.add_argument("--demand-q", type=number(), default=0.95, metavar="Q",
                   help="quantile of --demand-window (default 0.95)")  # fmt: skip
    p.set_defaults(func=run_engine, check=_check_engine)
    replay.register_alias(sub)


def _check_engine(args: argparse.Namespace) -> None:
    # lazy: the engine's modules load only for the commands that run it
    from xdrs.engine.engine import EngineArgs  # noqa: PLC0415

    args.engine_args = checked(
        EngineArgs,
        ENGINE_NAMES,
        threshold=args.threshold,
        period_s=args.period,
        max_moves=args.max_moves,
        demand_window=args.demand_window,
        demand_q=args.demand_q,
    )


def run_engine(args: argparse.Namespace) -> int:
    # lazy: the engine daemon brings kafka-python and prometheus_client
    from xdrs.services import broker_for, serve_engine, until_signalled  # noqa: PLC0415

    stop = until_signalled()
    with broker_for(args.bootstrap_servers) as bootstrap:
        config = bus_config(args, "xdrs-engine", bootstrap)
        serve_engine(config, args.engine_args, args.group, args.metrics_addr, stop)
    return 0
