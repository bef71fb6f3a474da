"""The trace-replay platform's commands: ``xdrs collect replay`` (alias ``xdrs replay``).

The replay collector publishes a simulated data centre driven by a utilisation trace;
``--apply`` also applies the engine's recommendations to it (the replayed cluster lives in
this process, so it has no separate ``actuate`` command). The replay options are shared
with ``xdrs demo``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from collectors.replay import Scenario, Trace, TraceError, load_scenario, load_trace
from collectors.replay.mover import LinkModel
from collectors.replay.scenario import DEFAULT, ScenarioError
from xdrs.cli.daemon import add_daemon_args, check_daemon_args, daemon_metrics
from xdrs.cli.options import add_bus_args, add_link_gbps, bus_config, checked, integer, number
from xdrs.daemon.policy import PolicyFile
from xdrs.errors import UsageError

__all__ = [
    "HELP",
    "add_mover_args",
    "add_replay_args",
    "check_mover_args",
    "collect",
    "default_trace_dir",
    "load_replay",
    "run_replay",
]

HELP = "run the trace-replay collector"


def default_trace_dir() -> Path | None:
    """``$XDRS_TRACES``, else ``../shared/traces`` beside the checkout, else none."""
    env = os.environ.get("XDRS_TRACES")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[4] / "shared" / "traces"
    return guess if guess.is_dir() else None


def add_replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", default=DEFAULT.trace, metavar="planetlab:DAY")
    p.add_argument(
        "--trace-dir",
        type=Path,
        default=default_trace_dir(),
        metavar="DIR",
        help="folder holding planetlab/<day>/ (default $XDRS_TRACES or "
        "../shared/traces; the packaged day otherwise)",
    )
    p.add_argument("--scenario", type=Path, metavar="FILE", help="replay scenario JSON")
    p.add_argument(
        "--speed",
        type=number(0.0),
        default=4.0,
        metavar="STEPS/S",
        help="simulated 5-minute steps per second (default 4; 0: no pause)",
    )


def add_mover_args(p: argparse.ArgumentParser) -> None:
    """The replay mover's migration model (the daemon's options: :func:`add_daemon_args`)."""
    p.add_argument("--fail-rate", type=number(0.0), default=0.0, metavar="P",
                   help="probability that a migration fails (0..1, default 0)")  # fmt: skip
    add_link_gbps(p, "per migration")
    p.add_argument(
        "--dirty-rate",
        type=number(0.0),
        default=0.0,
        metavar="MIB/S",
        help="memory a guest dirties per second while migrating (default 0)",
    )


def check_mover_args(args: argparse.Namespace) -> None:
    """Build ``args.link_model``; errors name the option."""
    args.link_model = checked(
        LinkModel, {"fail_rate": "--fail-rate", "link_gbps": "--link-gbps",
                    "dirty_mib_s": "--dirty-rate"},
        fail_rate=args.fail_rate, link_gbps=args.link_gbps, dirty_mib_s=args.dirty_rate,
    )  # fmt: skip


def load_replay(args: argparse.Namespace) -> tuple[Scenario, Trace]:
    """The scenario and the trace the replay options name; bad files are usage errors."""
    try:
        scenario = load_scenario(args.scenario) if args.scenario else DEFAULT
        return scenario, load_trace(args.trace, args.trace_dir)
    except (ScenarioError, TraceError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{e.filename}: {e.strerror}") from None


def collect(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``xdrs collect replay`` / ``xdrs replay``."""
    add_bus_args(p)
    add_replay_args(p)
    p.add_argument("--steps", type=integer(0), default=None, metavar="N", help="stop after N steps")
    p.add_argument(
        "--apply",
        action="store_true",
        help="run the rebalancing daemon over the replayed cluster (its options below)",
    )
    add_daemon_args(p, "replay")
    p.set_defaults(func=run_replay, check=_check_collect)


def _check_collect(args: argparse.Namespace) -> None:
    check_daemon_args(args)
    if not args.apply:
        for given, option in ((args.automation, "--automation"), (args.dry_run, "--dry-run"),
                              (args.api, "--api"),
                              (args.metrics_addr, "--metrics-addr")):  # fmt: skip
            if given:
                raise UsageError(f"{option}: needs --apply (the daemon's option)")


def register_alias(sub: Any) -> None:
    """``xdrs replay``: the name the README and the compose file use."""
    collect(sub.add_parser("replay", help=HELP))


def run_replay(args: argparse.Namespace) -> int:
    # lazy: the runtime brings kafka-python, prometheus_client and the engine
    from xdrs.daemon.service import DaemonOptions  # noqa: PLC0415
    from xdrs.services import broker_for, serve_replay, until_signalled  # noqa: PLC0415

    scenario, trace = load_replay(args)
    daemon = DaemonOptions(limits=args.limits, policy=args.automation_policy or PolicyFile(),
                           dry_run=args.dry_run)  # fmt: skip
    stop = until_signalled()
    # the metrics port first: a taken one fails before the broker starts
    with daemon_metrics(args) as registry, broker_for(args.bootstrap_servers) as bootstrap:
        config = bus_config(args, "xdrs-replay", bootstrap)
        serve_replay(config, scenario, trace, stop, speed=args.speed, steps=args.steps,
                     apply=args.apply, daemon=daemon, api=args.api_config,
                     registry=registry)  # fmt: skip
    return 0
