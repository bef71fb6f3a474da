"""The error classes of every boundary (files, command line, platforms).

A leaf module with no imports: the CLI, the runtime, the engine and the collectors all
raise these, and ``xdrs.cli.main`` is the one place that prints them (one
``xdrs: error: ...`` line; exit status 2 for bad input, 1 for a command that ran and failed).
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "CommandError", "SnapshotError", "UsageError"]

EXIT_USAGE = 2
EXIT_FAILED = 1


class SnapshotError(ValueError):
    """A snapshot or action list is invalid; the message names the field and the object."""


class UsageError(Exception):
    """Bad command-line arguments or configuration; the message names the option."""


class CommandError(Exception):
    """The command ran and failed (a platform refused, a connection was lost): exit 1."""
