"""The ``xdrs`` command: one module per command group, platforms from one registry.

Imports point one way: ``xdrs.cli`` -> runtime (``xdrs.services``, ``xdrs.demo``,
``xdrs.sim``) -> bus and engine -> ``collectors`` -> ``placement``; nothing below imports
the CLI. A command module declares its options with light imports only and imports what
it runs when it runs (``xdrs plan`` loads neither Kafka nor Prometheus nor pyvmomi).
Options are checked when they are parsed (``check``, set per command): every mistake is
one ``xdrs: error: ...`` line printed here, and exit status 2, before anything runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from xdrs.cli.options import Parser, bus_config
from xdrs.errors import EXIT_FAILED, EXIT_USAGE, CommandError, SnapshotError, UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main", "parse"]

# Each top-level command -> the module that declares it (its ``register``). Only the module
# of the command being run is imported (all of them for ``xdrs --help`` or an unknown
# command), so ``xdrs plan`` does not load the daemon's, the bus's or the platforms'
# modules. tests/xdrs/test_imports.py counts these as import edges of this module.
COMMANDS = {
    "plan": "xdrs.cli.plan",
    "demo": "xdrs.cli.demo",
    "engine": "xdrs.cli.services",
    "replay": "xdrs.cli.services",
    "vsphere": "xdrs.cli.vsphere",
    "openstack": "xdrs.cli.platforms.openstack",
    "simulate": "xdrs.cli.simulate",
    "collect": "xdrs.cli.platforms",
    "actuate": "xdrs.cli.platforms",
    "recommendations": "xdrs.cli.recommendations",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: with only its command's options when ``argv`` names a
    command, with every command's otherwise (``None``: every command's)."""
    parser = Parser(prog="xdrs", description="DRS-style VM placement engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    first = next(iter(argv or ()), None)
    wanted = [COMMANDS[first]] if first in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in wanted:
        importlib.import_module(name).register(sub)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check ``argv``; raises :class:`UsageError` naming the option."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    if hasattr(args, "kafka_option"):  # the bus options, before any broker starts
        bus_config(args, "xdrs", args.bootstrap_servers or "localhost:9092")
    check = getattr(args, "check", None)
    if check is not None:
        check(args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xdrs`` console script; returns the exit status."""
    try:
        args = parse(argv)
        status: int = args.func(args)
        return status
    except (UsageError, SnapshotError) as e:
        return _fail(str(e), EXIT_USAGE)
    except CommandError as e:
        return _fail(str(e), EXIT_FAILED)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        return _fail(f"{where}{e.strerror or e}", EXIT_USAGE)


def _fail(message: str, status: int) -> int:
    """The one error printer of the command line."""
    print(f"xdrs: error: {message}", file=sys.stderr)
    return status
