"""``xdrs plan``: plan migrations for one cluster snapshot.

It reads a ``drs-peer-cluster/1`` snapshot (or generates one), runs a strategy, orders the
plan into waves, prints a before/after report and optionally writes the action list and the
input snapshot. Every input problem ends in one ``xdrs: error: ...`` line and exit status
2, before any file is written; the two output files are written both or neither.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson

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
from xdrs._io import write_all
from xdrs.actions import action_list
from xdrs.cli.options import add_link_gbps, add_seed, add_threshold, checked, integer
from xdrs.errors import UsageError
from xdrs.report import explain_lines, summary_lines, unresolved_lines
from xdrs.snapshot import read_snapshot, snapshot_doc
from xdrs.synth import synth_cluster

__all__ = ["register"]

MAX_GENERATE = (100_000, 1_000_000)  # hosts, VMs of a synthetic cluster
NAMES = {
    "max_moves": "--max-moves",
    "threshold": "--threshold",
    "per_host": "--per-host",
    "per_cluster": "--per-cluster",
    "link_gbps": "--link-gbps",
}


def _generate_spec(text: str) -> tuple[int, int]:
    hosts, sep, vms = text.partition("/")
    if not (sep and hosts.isdigit() and vms.isdigit() and int(hosts) > 0):
        raise argparse.ArgumentTypeError(f"expected HOSTS/VMS such as 200/2000, got {text!r}")
    if int(hosts) > MAX_GENERATE[0] or int(vms) > MAX_GENERATE[1]:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_GENERATE[0]} hosts and {MAX_GENERATE[1]} VMs, got {text!r}"
        )
    return int(hosts), int(vms)


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="plan migrations for one cluster snapshot")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--in", dest="input", type=Path, metavar="SNAPSHOT.json")
    src.add_argument(
        "--generate",
        type=_generate_spec,
        metavar="HOSTS/VMS",
        help="synthetic cluster instead of --in",
    )
    p.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
    add_threshold(p, default=None)
    p.add_argument("--max-moves", type=integer(0), metavar="N", help="cap on optional moves")
    p.add_argument("--out", type=Path, metavar="ACTIONS.json", help="write the action list")
    p.add_argument("--save-snapshot", type=Path, metavar="PATH", help="write the input snapshot")
    p.add_argument("--explain", action="extend", nargs="+", default=[], metavar="VM_UUID")
    p.add_argument(
        "--per-host",
        type=integer(1),
        default=OrderArgs.per_host,
        metavar="N",
        help="concurrent migrations per host",
    )
    p.add_argument(
        "--per-cluster",
        type=integer(1),
        default=OrderArgs.per_cluster,
        metavar="N",
        help="concurrent migrations per migration domain",
    )
    add_link_gbps(p, "of every host, for the plan's duration estimate")
    add_seed(p)
    p.set_defaults(func=_plan, check=_check)


def _check(args: argparse.Namespace) -> None:
    """The strategy's and the ordering's argument dataclasses, validated."""
    name = args.strategy
    if args.threshold is not None and name != "balance":
        raise UsageError("--threshold: only applies to --strategy balance")
    if name == "evacuate" and args.max_moves is not None:
        raise UsageError(f"--max-moves: does not apply to --strategy {name}")
    if name == "balance":
        threshold = 3 if args.threshold is None else args.threshold
        args.strategy_args = checked(
            BalanceArgs, NAMES, threshold=threshold, max_moves=args.max_moves
        )
    elif name == "consolidate":
        args.strategy_args = checked(ConsolidateArgs, NAMES, max_moves=args.max_moves)
    else:
        args.strategy_args = checked(EvacuateArgs, NAMES)
    args.order_args = checked(
        OrderArgs,
        NAMES,
        per_host=args.per_host,
        per_cluster=args.per_cluster,
        link_gbps=args.link_gbps,
    )


def _load(args: argparse.Namespace) -> ClusterState:
    if args.input is not None:
        return read_snapshot(args.input)
    n_hosts, n_vms = args.generate
    try:
        return synth_cluster(n_hosts, n_vms, seed=args.seed)
    except ValueError as e:
        raise UsageError(f"--generate: {e}") from None


def _explain_targets(state: ClusterState, uuids: list[str]) -> list[int]:
    index = {u: i for i, u in enumerate(state.vm_ids)}
    for u in uuids:
        if u not in index:
            raise UsageError(f"--explain: unknown VM uuid {u!r}")
    return [index[u] for u in uuids]


def _plan(args: argparse.Namespace) -> int:
    state = _load(args)
    targets = _explain_targets(state, args.explain)
    t0 = time.perf_counter()
    plan = run(args.strategy, state, args.strategy_args, seed=args.seed)
    plan_ms = (time.perf_counter() - t0) * 1000
    after = plan.final_placement(state.placement)
    waves = order_plan(plan, state, args.order_args)
    outputs: dict[Path, bytes] = {}
    if args.save_snapshot is not None:
        outputs[args.save_snapshot] = _json(snapshot_doc(state))
    if args.out is not None:
        outputs[args.out] = _json(action_list(plan, state, waves))
    write_all(outputs)
    capacity = getattr(args.strategy_args, "capacity", None)
    lines = [f"xdrs plan: {args.strategy} on {state.n_hosts} hosts, {state.n_vms} VMs"]
    lines += summary_lines(state, plan, after, waves, plan_ms)
    lines += unresolved_lines(state, plan, after, capacity)
    for v in targets:
        lines += explain_lines(state, plan, after, v, capacity)
    print("\n".join(lines))
    return 0


def _json(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
