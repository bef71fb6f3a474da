"""``xdrs simulate``: replay traces through policies, print a table, write metrics and plots.

The options are declared in :mod:`xdrs.cli.simulate`; this module runs them.

Batch mode: several ``--trace`` and ``--policy`` values run every combination;
``--trace planetlab:all`` means every day folder.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from collectors.replay.traces import Trace, TraceError, first_hours, load_trace, traces_root
from xdrs.errors import UsageError
from xdrs.sim.datacenter import DatacenterError, read_datacenter
from xdrs.sim.history import HistoryRange, read_history
from xdrs.sim.output import moves_lines, table, write_metrics
from xdrs.sim.policies import PolicyError, parse_policy
from xdrs.sim.present import world_from_snapshot
from xdrs.sim.report import ReportError, check_plotting, write_report
from xdrs.sim.run import Result, simulate, simulate_world
from xdrs.sim.setup import Datacenter
from xdrs.sim.whatif import WhatIf, WhatIfError, apply_whatif, host_count
from xdrs.snapshot import read_snapshot

__all__ = ["simulate_command"]


def _order_dir(args: argparse.Namespace, root: Path) -> Path | None:
    if args.vm_order == "sorted":
        return None
    if args.vm_order:
        return Path(args.vm_order)
    ref = root.parent / "reference" / "cloudsim-vm-order"
    return ref if ref.is_dir() else None


def _specs(specs: list[str], root: Path) -> list[str]:
    out: list[str] = []
    for s in specs:
        if s == "planetlab:all":
            d = root / "planetlab"
            if not d.is_dir():
                raise TraceError(f"{d}: no PlanetLab trace folders")
            out += [f"planetlab:{p.name}" for p in sorted(d.iterdir()) if p.is_dir()]
        else:
            out.append(s)
    return out


class _Progress:
    """A progress bar on a terminal; one line per finished run otherwise."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet, self.label, self.tty = quiet, label, sys.stderr.isatty()

    def __call__(self, k: int, n: int) -> None:
        if self.quiet or not (k == n or (self.tty and k % 8 == 0)):
            return
        filled = int(30 * k / max(n, 1))
        bar = "#" * filled + "." * (30 - filled)
        end = "\n" if k == n else ""
        print(f"\r{self.label} [{bar}] {k}/{n}", end=end, file=sys.stderr, flush=True)


def simulate_command(args: argparse.Namespace) -> int:
    """Run ``xdrs simulate`` with parsed options (declared in :mod:`xdrs.cli.simulate`)."""
    try:
        if args.snapshot is not None:
            return _run_snapshot(args)
        if not args.trace:
            raise WhatIfError("expected --trace (or --snapshot)")
        return _run(args)
    except (TraceError, PolicyError, WhatIfError, ReportError, DatacenterError) as e:
        raise UsageError(str(e)) from None


def _run_snapshot(args: argparse.Namespace) -> int:
    if len(args.trace) > 1:
        raise WhatIfError("--snapshot takes at most one --trace (the VMs' CPU history)")
    if args.remove_hosts or args.add_hosts or args.datacenter or args.hosts:
        raise WhatIfError(
            "--hosts/--datacenter/--remove-hosts/--add-hosts: --snapshot gives the hosts "
            "(use --maintenance)"
        )
    for name in args.policy:
        parse_policy(name)
    if args.report is not None:
        check_plotting()
    state = read_snapshot(args.snapshot)
    whatif = WhatIf.from_args(args, state.host_ids)
    reports: dict[str, object] = {}
    root = traces_root(args.traces_dir)
    trace = _load(args, reports, args.trace[0], root) if args.trace else None
    if trace is not None and whatif.scale != 1.0:
        _, trace = apply_whatif(WhatIf(scale=whatif.scale), Datacenter(n_hosts=1), trace)
    world, placement = world_from_snapshot(state, trace, args.hours or 24.0)
    if whatif.maintenance and max(whatif.maintenance) >= world.n_hosts:
        raise WhatIfError(f"--maintenance: host {max(whatif.maintenance)} does not exist")
    if trace is None and whatif.scale != 1.0:
        world = replace(world, samples=np.minimum(world.samples * whatif.scale, 1.0))
    results = []
    for name in args.policy:
        progress = _Progress(args.quiet, f"{name} {args.snapshot.name}")
        results.append(simulate_world(world, placement, name, label=str(args.snapshot),
                                      seed=args.seed, progress=progress, whatif=whatif,
                                      log_moves=True))  # fmt: skip
    print(table(results))
    for r in results:
        print("\n".join(moves_lines(r)))
    _write(args, results, reports)
    return 0


def _datacenter(args: argparse.Namespace) -> Datacenter:
    if args.datacenter is None:
        return Datacenter(n_hosts=args.hosts or 800, memory_aware=args.memory_aware)
    if args.hosts is not None:
        raise WhatIfError("--hosts: --datacenter gives the host counts (use --add-hosts)")
    return read_datacenter(args.datacenter, core_mhz=args.core_mhz)


def _load(
    args: argparse.Namespace, reports: dict[str, object], spec: str, root: Path,
    order: Path | None = None,
) -> Trace:  # fmt: skip
    """The trace of ``spec``, resampled per ``--interval``/``--max-gap``; says what
    resampling did on stderr and records it in ``reports`` (for ``--out``)."""
    if spec.startswith("bus:"):
        trace = _history(args, spec)
    else:
        trace = load_trace(spec, root, order, interval=args.interval, max_gap=args.max_gap)
    if trace.resampling is not None:
        print(f"{spec}: {trace.resampling.summary()}", file=sys.stderr)
        reports[spec] = asdict(trace.resampling)
    if args.hours is not None and args.hours * 3600.0 < trace.n_steps * trace.step_s:
        cut = first_hours(trace, args.hours)
        print(f"{spec}: --hours {args.hours:g}: the first {cut.n_steps} of {trace.n_steps} "
              f"samples of {trace.step_s:g} s", file=sys.stderr)  # fmt: skip
        return cut
    return trace


def _history(args: argparse.Namespace, spec: str) -> Trace:
    """``--trace bus:``: the metric history on the metrics topic, within the range options."""
    if spec != "bus:":
        raise TraceError(f"trace {spec!r}: the metric history is 'bus:' (the topic comes from "
                         "--topic-prefix)")  # fmt: skip
    config = getattr(args, "bus", None)
    if config is None:
        raise UsageError("--trace bus: needs --bootstrap-servers (the broker holding the history)")
    lo = args.since if args.since is not None else -math.inf
    hi = args.until if args.until is not None else math.inf
    if lo > hi:
        raise WhatIfError(f"--since {lo:g} is after --until {hi:g}")
    rng = HistoryRange(lo, hi, args.cluster, int(args.history_max_mb * (1 << 20)))
    h = read_history(config, rng, interval=args.interval, max_gap=args.max_gap)
    print(f"{spec}: {h.summary()}", file=sys.stderr)
    return h.trace


def _write(args: argparse.Namespace, results: list[Result], reports: dict[str, object]) -> None:
    for r in results:
        if line := r.churn():
            print(line, file=sys.stderr)
    if args.out is not None:
        write_metrics(args.out, results, reports)
    if args.report is not None:
        for f in write_report(args.report, results):
            print(f"wrote {f}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    for name in args.policy:
        parse_policy(name)  # fail before any work
    whatif = WhatIf.from_args(args)
    if args.report is not None:
        check_plotting()  # fail before hours of simulation
    root = traces_root(args.traces_dir)
    order = _order_dir(args, root)
    specs = _specs(args.trace, root)
    dc = _datacenter(args)
    host_count(whatif, dc.n_hosts)  # before reading traces
    results: list[Result] = []
    reports: dict[str, object] = {}
    total, i = len(specs) * len(args.policy), 0
    for spec in specs:
        trace = _load(args, reports, spec, root, order)
        for name in args.policy:
            i += 1
            progress = _Progress(args.quiet, f"[{i}/{total}] {name} {spec}")
            world_dc, edited = apply_whatif(whatif, dc, trace)
            results.append(simulate(edited, name, world_dc, label=spec, seed=args.seed,
                                    progress=progress, whatif=whatif))  # fmt: skip
    print(table(results))
    _write(args, results, reports)
    return 0
