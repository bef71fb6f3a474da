"""``xdrs recommendations list|show|approve|reject``: the operator's side of the daemon.

Through the bus (``--bootstrap-servers``) or, with ``--api URL`` (and ``--api-token-file``
or ``$XDRS_API_TOKEN``), through a running daemon's HTTP JSON API. ``list`` shows the
recommendations with moves waiting for approval (``--all``: every one) with their expected
benefit and cost (moves, GiB of memory to copy); ``show ID`` each move with its reason,
expected gain, memory to copy and last record; ``approve ID...`` and ``reject ID...``
decide one or several recommendations, or every pending one (``--all``); ``--move KEY``
chooses moves of a single one (all held moves otherwise). Through the API several
recommendations go in one ``POST /v1/decisions``; through the bus one decision each, and
the command prints what the daemon did with them. Unknown or not pending ids refuse the
whole command before anything is decided; an approval whose placement changed is refused
with the reason (exit status 1) without stopping the others. The bus runtime is
:mod:`xdrs.daemon.approvals`.
"""

from __future__ import annotations

import argparse
import getpass
import time
from pathlib import Path
from typing import Any

from xdrs.cli import recommendations_view as view
from xdrs.cli.api_client import DaemonApi, api_token, check_url
from xdrs.cli.options import add_bus_args, bus_config, number
from xdrs.errors import CommandError, UsageError

__all__ = ["register"]

DONE = {"approve": "approved", "reject": "rejected"}


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
        p = group.add_parser(name, help=f"{verb} the held moves of one or more recommendations")
        _common(p, check=_check_decide)
        p.add_argument("ids", nargs="*", metavar="ID")
        p.add_argument("--all", action="store_true", help="every pending recommendation")
        p.add_argument("--move", action="append", default=[], metavar="KEY",
                       help="only this move of a single ID (repeatable; default: every "
                       "held move)")  # fmt: skip
        p.add_argument("--by", default=_user(), help="who decides (recorded)")
        p.add_argument("--wait", type=number(), default=30.0, metavar="SECONDS",
                       help="through the bus: how long to wait for the daemon's records "
                       "(default 30)")  # fmt: skip
        p.set_defaults(func=_decide, decision=name)


def _common(p: argparse.ArgumentParser, check: Any = None) -> None:
    add_bus_args(p)
    p.add_argument("--api", metavar="URL",
                   help="a daemon's HTTP API (http://HOST:PORT) instead of the bus")  # fmt: skip
    p.add_argument("--api-token-file", type=Path, metavar="FILE",
                   help="the API's bearer token (first line; or $XDRS_API_TOKEN)")  # fmt: skip
    p.set_defaults(check=check or _need_bus_or_api)


def _need_bus_or_api(args: argparse.Namespace) -> None:
    args.client = None
    if args.api is None:
        if args.api_token_file is not None:
            raise UsageError("--api-token-file: needs --api")
        if not args.bootstrap_servers:
            raise UsageError("--bootstrap-servers: required (the daemon's bus), or --api URL")
        return
    try:
        url = check_url(args.api)
    except ValueError as e:
        raise UsageError(f"--api: {e}") from None
    args.client = DaemonApi(url, api_token(args.api_token_file))


def _check_decide(args: argparse.Namespace) -> None:
    _need_bus_or_api(args)
    if args.all == bool(args.ids):
        raise UsageError(f"{args.decision}: give recommendation ids or --all")
    if args.move and len(args.ids) != 1:
        raise UsageError("--move: needs exactly one recommendation id")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _list(args: argparse.Namespace) -> int:
    if args.client is not None:
        rows = [view.from_summary(s) for s in args.client.recommendations(args.all)]
    else:
        # lazy: the bus client (kafka-python) loads only for the commands that use it
        from xdrs.daemon.approvals import pending  # noqa: PLC0415

        config = bus_config(args, "xdrs-recommendations", args.bootstrap_servers)
        rows = [view.from_pending(p) for p in pending(config, args.all)]
    print(view.table(rows, time.time()))
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.client is not None:
        print(view.shown(args.client.recommendation(args.id)))
        return 0
    from xdrs.daemon.approvals import pending  # noqa: PLC0415 - lazy: as in _list

    rows = pending(bus_config(args, "xdrs-recommendations", args.bootstrap_servers), True)
    found = [p for p in rows if p.rec.id == args.id]
    if not found:
        raise UsageError(f"recommendation {args.id!r}: not on the recommendations topic")
    print(view.pending_shown(found[0]))
    return 0


def _decide(args: argparse.Namespace) -> int:
    if args.client is not None:
        return _decide_api(args, args.client)
    from xdrs.daemon.approvals import decide, pending  # noqa: PLC0415 - lazy: as in _list

    config = bus_config(args, "xdrs-recommendations", args.bootstrap_servers)
    found = pending(config, everything=True)
    waiting = {p.rec.id for p in found if p.held}
    ids = sorted(waiting) if args.all else list(dict.fromkeys(args.ids))
    _check_pending({p.rec.id for p in found}, ids, waiting)
    refused: list[str] = []
    for rec_id in ids:
        try:
            done = decide(config, rec_id, args.decision, args.move, args.by, args.wait)
        except CommandError as e:  # placement changed: the others go on
            refused.append(str(e))
            continue
        for r in done:
            print(f"{r.key}: {r.status}{': ' + r.error if r.error else ''}")
        print(f"xdrs recommendations {args.decision}: {rec_id}: {len(done)} move(s) answered "
              f"by the daemon")  # fmt: skip
    return _refusals(args.decision, refused, len(ids))


def _check_pending(known: set[str], ids: list[str], waiting: set[str]) -> None:
    """Every id known and pending, before anything is decided."""
    for rec_id in ids:
        if rec_id not in known:
            raise CommandError(f"recommendation {rec_id!r}: not on the recommendations topic")
        if rec_id not in waiting:
            raise CommandError(f"recommendation {rec_id!r}: no move is waiting for approval")


def _decide_api(args: argparse.Namespace, api: DaemonApi) -> int:
    if len(args.ids) == 1:  # with its --move keys, if any
        moves = api.decide_one(args.ids[0], args.decision, args.move, args.by)
        for m in moves:
            print(f"{m.key}: {m.status}{': ' + m.why if m.why else ''}")
        print(f"xdrs recommendations {args.decision}: {args.ids[0]}: {len(moves)} move(s)")
        return 0
    results = api.decide_many(None if args.all else args.ids, args.decision, args.by)
    for r in results:
        print(f"{r.id}: {len(r.moves)} move(s) {DONE[args.decision]}"
              f"{': refused: ' + r.refused if r.refused else ''}")  # fmt: skip
    print(f"xdrs recommendations {args.decision}: {len(results)} recommendation(s)")
    return 0


def _refusals(decision: str, refused: list[str], n: int) -> int:
    if refused and n == 1:
        raise CommandError(refused[0])
    if refused:
        raise CommandError(f"{decision}: {len(refused)} of {n} refused; first: {refused[0]}")
    if n == 0:
        print(f"xdrs recommendations {decision}: no recommendation is waiting for approval")
    return 0
