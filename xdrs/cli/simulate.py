"""``xdrs simulate``: the options of the what-if simulator (the run is :mod:`xdrs.sim.cli`).

Batch mode: several ``--trace`` and ``--policy`` values run every combination;
``--trace planetlab:all`` means every day folder.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from xdrs.cli.options import add_bus_args, add_seed, bus_config, integer, number
from xdrs.limits import MAX_HOSTS

__all__ = ["register"]


def _maintenance_spec(text: str) -> str:
    """``HOSTS@HOUR`` with a finite hour; the hosts are checked against the data centre later."""
    _, sep, hour = text.rpartition("@")
    try:
        ok = bool(sep) and math.isfinite(float(hour)) and float(hour) >= 0
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"expected HOSTS@HOUR such as 0-9,15@20, got {text!r}")
    return text


def register(sub: Any) -> None:
    """Add the ``simulate`` subcommand to the ``xdrs`` parser."""
    p = sub.add_parser("simulate", help="replay utilisation traces through placement policies")
    p.add_argument(
        "--trace",
        action="append",
        default=[],
        metavar="SPEC",
        help="planetlab:<day>, planetlab:all, csv:<file>, bitbrains:<folder>, azure:<file>, "
        "folder, .csv, or bus: (the MetricBatch history on the metrics topic at "
        "--bootstrap-servers)",
    )
    p.add_argument(
        "--policy",
        action="append",
        required=True,
        metavar="NAME",
        help="npa, dvfs, <thr|iqr|mad|lr|lrr>-<mmt|mc|rs|mu>-<param>, "
        "xdrs-consolidate, xdrs-balance, xdrs-demand[:period=24,budget=80,...]",
    )
    p.add_argument(
        "--hosts",
        type=integer(1, MAX_HOSTS),
        metavar="N",
        help=f"hosts of the paper's setup (default 800, at most {MAX_HOSTS:,})",
    )
    p.add_argument(
        "--datacenter",
        type=Path,
        metavar="FILE",
        help="host types and counts, VM sizes: xdrs-datacenter/1 JSON or a "
        "drs-peer-cluster/1 snapshot's hosts (default: the paper's 800 HP ML110 G4/G5)",
    )
    p.add_argument(
        "--core-mhz",
        type=number(1.0, 1e6),
        default=2600.0,
        metavar="MHZ",
        help="with --datacenter SNAPSHOT: MHz of one host core (snapshots count cores)",
    )
    p.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="start from a drs-peer-cluster/1 snapshot (what-if from the "
        "present); --trace then gives the VMs' CPU history as CSV",
    )
    p.add_argument(
        "--hours",
        type=number(0.0, 24.0 * 366, above=True),
        metavar="H",
        help="hours to simulate: the first H hours of a trace (default: all of it), or "
        "with --snapshot and no trace, H hours at the measured demand (default 24)",
    )
    p.add_argument(
        "--traces-dir", metavar="DIR", help="trace sets (default $XDRS_TRACES or ../shared/traces)"
    )
    p.add_argument(
        "--vm-order",
        metavar="DIR",
        help="folder of <day>.txt VM orders (default: the CloudSim reference "
        "order next to the traces if present; 'sorted' for sorted names)",
    )
    p.add_argument(
        "--memory-aware",
        action="store_true",
        help="check memory at every placement (CloudSim: at creation)",
    )
    _resampling_args(p)
    _history_args(p)
    add_seed(p)
    p.add_argument("--out", type=Path, metavar="FILE", help="metrics as JSON, or CSV for *.csv")
    p.add_argument("--report", type=Path, metavar="DIR", help="write PNG plots here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _whatif_args(p)
    p.set_defaults(func=_run)


def _resampling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("traces with real timestamps (CSV, Bitbrains, Azure)")
    g.add_argument(
        "--interval",
        type=number(1.0, 86_400.0),
        default=300.0,
        metavar="S",
        help="decision interval in seconds; samples are averaged per interval (default 300)",
    )
    g.add_argument(
        "--max-gap",
        type=number(0.0, 30 * 86_400.0),
        default=3600.0,
        metavar="S",
        help="carry a VM's last value forward this long without samples, then the VM "
        "is gone (default 3600)",
    )


def _history_args(p: argparse.ArgumentParser) -> None:
    add_bus_args(p)
    g = p.add_argument_group("--trace bus: (the metric history recorded on the metrics topic)")
    g.add_argument(
        "--since",
        type=number(-1e13, 1e13),
        metavar="TS",
        help="keep metric batches from this sample time on (seconds, as the batches' ts)",
    )
    g.add_argument(
        "--until", type=number(-1e13, 1e13), metavar="TS", help="... up to this sample time"
    )
    g.add_argument("--cluster", metavar="NAME", help="keep only this cluster's batches")
    g.add_argument(
        "--history-max-mb",
        type=number(0.0, 1e6, above=True),
        default=512.0,
        metavar="MB",
        help="stop with an error past this many MB of kept batches (default 512)",
    )


def _whatif_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what-if edits")
    g.add_argument("--remove-hosts", type=integer(0), default=0, metavar="N")
    g.add_argument("--add-hosts", type=integer(0, MAX_HOSTS), default=0, metavar="N")
    g.add_argument(
        "--scale-demand",
        type=number(above=True),
        default=1.0,
        metavar="F",
        help="multiply every VM's CPU demand (capped at 100 %%)",
    )
    g.add_argument(
        "--maintenance",
        type=_maintenance_spec,
        metavar="HOSTS@HOUR",
        help="e.g. 0-9,15@20: hosts 0..9, 15 into maintenance at 20 h",
    )


def _run(args: argparse.Namespace) -> int:
    # lazy: the simulator (numba and matplotlib come with it when present and asked for)
    from xdrs.sim.cli import simulate_command  # noqa: PLC0415

    # --trace bus: reads the metrics topic; the bus settings are made here, where the
    # options are declared (xdrs.sim does not import the command line)
    servers = args.bootstrap_servers
    args.bus = bus_config(args, "xdrs-simulate", servers) if servers else None
    return simulate_command(args)
