"""The ``xdrs`` command."""

from xdrs.cli.plan import UsageError, build_parser, main

__all__ = ["UsageError", "build_parser", "main"]
