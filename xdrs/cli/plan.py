"""The ``xdrs`` command.

``xdrs plan`` reads a ``drs-peer-cluster/1`` snapshot (or generates one), runs a strategy,
orders the plan into waves, prints a before/after report and optionally writes the action
list. Every input problem ends in one ``xdrs: error: ...`` line and exit status 2, before
any file is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from placement import (
    STRATEGIES,
    BalanceArgs,
    ClusterState,
    ConsolidateArgs,
    EvacuateArgs,
    OrderArgs,
    order_plan,
    run,
)
from xdrs import demo, services
from xdrs.actions import write_actions
from xdrs.cli import vsphere as vsphere_cli
from xdrs.cli.platforms import vsphere as vsphere_bus
from xdrs.errors import SnapshotError
from xdrs.report import explain_lines, summary_lines, unresolved_lines
from xdrs.sim.cli import register as register_simulate
from xdrs.snapshot import read_snapshot, write_snapshot

__all__ = ["UsageError", "build_parser", "main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line arguments."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive(kind: type[int] | type[float], allow_zero: bool = False) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    return parse


def _generate_spec(text: str) -> tuple[int, int]:
    hosts, sep, vms = text.partition("/")
    if not (sep and hosts.isdigit() and vms.isdigit() and int(hosts) > 0):
        raise argparse.ArgumentTypeError(f"expected HOSTS/VMS such as 200/2000, got {text!r}")
    return int(hosts), int(vms)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xdrs", description="DRS-style VM placement engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _register_plan(sub)
    demo.register(sub)
    services.register(sub)
    vsphere_cli.register(sub)
    register_simulate(sub)
    vsphere_bus.register(sub)
    return parser


def _register_plan(sub: Any) -> None:
    p = sub.add_parser("plan", help="plan migrations for one cluster snapshot")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--in", dest="input", type=Path, metavar="SNAPSHOT.json")
    src.add_argument("--generate", type=_generate_spec, metavar="HOSTS/VMS",
                     help="synthetic cluster instead of --in")  # fmt: skip
    p.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
    p.add_argument("--threshold", type=int, choices=range(1, 6), metavar="1..5",
                   help="balance migration threshold (default 3)")  # fmt: skip
    p.add_argument("--max-moves", type=_positive(int, allow_zero=True), metavar="N")
    p.add_argument("--out", type=Path, metavar="ACTIONS.json", help="write the action list")
    p.add_argument("--save-snapshot", type=Path, metavar="PATH", help="write the input snapshot")
    p.add_argument("--explain", action="extend", nargs="+", default=[], metavar="VM_UUID")
    p.add_argument("--per-host", type=_positive(int), default=OrderArgs.per_host, metavar="N",
                   help="concurrent migrations per host")  # fmt: skip
    p.add_argument("--per-cluster", type=_positive(int), default=OrderArgs.per_cluster,
                   metavar="N", help="concurrent migrations per migration domain")  # fmt: skip
    p.add_argument("--link-gbps", type=_positive(float), default=OrderArgs.link_gbps,
                   metavar="X", help="migration link bandwidth")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.set_defaults(func=_plan)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xdrs`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        status: int = args.func(args)
        return status
    except (UsageError, SnapshotError) as e:
        return _fail(str(e))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        return _fail(f"{where}{e.strerror or e}")


def _fail(message: str) -> int:
    print(f"xdrs: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _strategy_args(args: argparse.Namespace) -> Any:
    name = args.strategy
    if args.threshold is not None and name != "balance":
        raise UsageError("--threshold: only applies to --strategy balance")
    if name == "balance":
        threshold = 3 if args.threshold is None else args.threshold
        return BalanceArgs(threshold=threshold, max_moves=args.max_moves)
    if name == "consolidate":
        return ConsolidateArgs(max_moves=args.max_moves)
    if args.max_moves is not None:
        raise UsageError(f"--max-moves: does not apply to --strategy {name}")
    return EvacuateArgs()


def _load(args: argparse.Namespace) -> ClusterState:
    if args.input is not None:
        return read_snapshot(args.input)
    try:
        # lazy: only --generate needs the generator
        from xdrs.synth import synth_cluster  # noqa: PLC0415
    except ImportError as e:
        raise UsageError(f"--generate: synthetic clusters are not available ({e})") from None
    n_hosts, n_vms = args.generate
    try:
        state: ClusterState = synth_cluster(n_hosts, n_vms, seed=args.seed)
    except ValueError as e:
        raise UsageError(f"--generate: {e}") from None
    return state


def _explain_targets(state: ClusterState, uuids: list[str]) -> list[int]:
    index = {u: i for i, u in enumerate(state.vm_ids)}
    for u in uuids:
        if u not in index:
            raise UsageError(f"--explain: unknown VM uuid {u!r}")
    return [index[u] for u in uuids]


def _plan(args: argparse.Namespace) -> int:
    strategy_args = _strategy_args(args)
    order_args = OrderArgs(
        per_host=args.per_host, per_cluster=args.per_cluster, link_gbps=args.link_gbps
    )
    state = _load(args)
    targets = _explain_targets(state, args.explain)
    t0 = time.perf_counter()
    plan = run(args.strategy, state, strategy_args, seed=args.seed)
    plan_ms = (time.perf_counter() - t0) * 1000
    after = plan.final_placement(state.placement)
    waves = order_plan(plan, state, order_args)
    if args.save_snapshot is not None:
        write_snapshot(state, args.save_snapshot)
    if args.out is not None:
        write_actions(plan, state, args.out, waves=waves)
    capacity = getattr(strategy_args, "capacity", None)
    lines = [f"xdrs plan: {args.strategy} on {state.n_hosts} hosts, {state.n_vms} VMs"]
    lines += summary_lines(state, plan, after, waves, plan_ms)
    lines += unresolved_lines(state, plan, after, capacity)
    for v in targets:
        lines += explain_lines(state, plan, after, v, capacity)
    print("\n".join(lines))
    return 0
