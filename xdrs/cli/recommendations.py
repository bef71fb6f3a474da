"""``xdrs recommendations list|show|approve|reject``: the operator's side of the daemon.

Everything goes through the bus (``--bootstrap-servers`` is required): ``list`` shows the
recommendations with moves waiting for approval (``--all``: every one), ``show ID`` each
move with its reason, expected gain, memory to copy and last record; ``approve ID`` and
``reject ID`` (``--move KEY`` to choose moves; all held moves otherwise) send the decision
and print what the daemon did with it. An approval whose placement changed is refused with
the reason (exit status 1). The runtime is :mod:`xdrs.daemon.approvals`.
"""

from __future__ import annotations

import argparse
import getpass
import time
from typing import Any

from xdrs.cli.options import add_bus_args, bus_config, number
from xdrs.errors import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    top = sub.add_parser("recommendations", help="list, show, approve or reject recommendations")
    group = top.add_subparsers(dest="recommendations_command", required=True,
                               parser_class=type(top))  # fmt: skip
    p = group.add_parser("list", help="recommendations waiting for approval")
    _common(p)
    p.add_argument("--all", action="store_true", help="every recommendation on the topic")
    p.set_defaults(func=_list)
    p = group.add_parser("show", help="one recommendation's moves and their records")
    _common(p)
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=_show)
    for name, verb in (("approve", "run"), ("reject", "drop")):
        p = group.add_parser(name, help=f"{verb} a recommendation's held moves")
        _common(p)
        p.add_argument("id", metavar="ID")
        p.add_argument("--move", action="append", default=[], metavar="KEY",
                       help="only this move (repeatable; default: every held move)")  # fmt: skip
        p.add_argument("--by", default=_user(), help="who decides (recorded)")
        p.add_argument("--wait", type=number(), default=30.0, metavar="SECONDS",
                       help="how long to wait for the daemon's records (default 30)")  # fmt: skip
        p.set_defaults(func=_decide, decision=name)


def _common(p: argparse.ArgumentParser) -> None:
    add_bus_args(p)
    p.set_defaults(check=_need_bus)


def _need_bus(args: argparse.Namespace) -> None:
    if not args.bootstrap_servers:
        raise UsageError("--bootstrap-servers: required (the daemon's bus)")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _list(args: argparse.Namespace) -> int:
    # lazy: the bus client (kafka-python) loads only for the commands that use it
    from xdrs.daemon.approvals import pending  # noqa: PLC0415

    rows = pending(bus_config(args, "xdrs-recommendations", args.bootstrap_servers), args.all)
    print(f"{'id':<32} {'cluster':<16} {'trigger':<12} {'moves':>5} {'held':>4} "
          f"{'objective':>15}  age   why")  # fmt: skip
    now = time.time()
    for p in sorted(rows, key=lambda p: p.rec.ts):
        r = p.rec
        why = next((p.last[k].error for k in p.held), "")
        print(f"{r.id:<32} {r.cluster:<16} {r.trigger:<12} {len(r.moves):>5} "
              f"{len(p.held):>4} {r.objective_before:7.3f}->{r.objective_after:<6.3f} "
              f"{_age(now - r.ts):>5}  {why}")  # fmt: skip
    return 0


def _show(args: argparse.Namespace) -> int:
    from xdrs.daemon.approvals import pending  # noqa: PLC0415 - lazy: as in _list

    rows = pending(bus_config(args, "xdrs-recommendations", args.bootstrap_servers), True)
    found = [p for p in rows if p.rec.id == args.id]
    if not found:
        raise UsageError(f"recommendation {args.id!r}: not on the recommendations topic")
    p = found[0]
    r = p.rec
    print(f"{r.id}: cluster {r.cluster}, trigger {r.trigger}, strategy {r.strategy}, "
          f"objective {r.objective_before:.4f} -> {r.objective_after:.4f}")  # fmt: skip
    for m in r.moves:
        last = p.last.get(m.key)
        status = "" if last is None else f"{last.status}{': ' + last.error if last.error else ''}"
        print(f"  {m.key:<36} {m.vm} {m.src} -> {m.dst}  {m.reason} gain {m.gain:g} "
              f"{m.cost_mib:g} MiB wave {m.wave}  {status}")  # fmt: skip
    return 0


def _decide(args: argparse.Namespace) -> int:
    from xdrs.daemon.approvals import decide  # noqa: PLC0415 - lazy: as in _list

    config = bus_config(args, "xdrs-recommendations", args.bootstrap_servers)
    done = decide(config, args.id, args.decision, args.move, args.by, args.wait)
    for r in done:
        print(f"{r.key}: {r.status}{': ' + r.error if r.error else ''}")
    print(f"xdrs recommendations {args.decision}: {args.id}: {len(done)} move(s) answered "
          f"by the daemon")  # fmt: skip
    return 0


def _age(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.0f}h"
