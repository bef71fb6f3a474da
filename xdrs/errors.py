"""The one error class of the file boundary."""

from __future__ import annotations

__all__ = ["SnapshotError"]


class SnapshotError(ValueError):
    """A snapshot or action list is invalid; the message names the field and the object."""
