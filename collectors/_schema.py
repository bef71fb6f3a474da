"""Field types and error wording shared by the typed declarations of :mod:`collectors`.

Each constrained type is checked by msgspec's decoder in C while it parses, so a value that
does not fit its field is refused before anything is built from it. Every bound is finite:
a number out of its range, ``1e999`` included, names its field instead of becoming an
``inf`` in an array later.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "MAX_NUMBER",
    "Amount",
    "Count",
    "Name",
    "Percent",
    "Signed",
    "Size",
    "Text",
    "explain",
    "show",
]

MAX_NUMBER = 1e15  # beyond any size, count or time an event carries; keeps inf and 1e308 out
MAX_REASON = 512  # characters of an error message kept (the value it quotes is cut first)

Name = Annotated[str, Meta(min_length=1, max_length=1024)]
Text = Annotated[str, Meta(max_length=4096)]
Size = Annotated[float, Meta(gt=0, le=MAX_NUMBER)]
Amount = Annotated[float, Meta(ge=0, le=MAX_NUMBER)]
Signed = Annotated[float, Meta(ge=-MAX_NUMBER, le=MAX_NUMBER)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Count = Annotated[int, Meta(ge=0, le=2**53)]
Version = Literal[1]
_OWN = re.compile(r"[a-z_]+: ")


def show(value: object, limit: int = 60) -> str:
    """A short rendering of an input value for an error message.

    Containers are described, never rendered (their repr could be unbounded or nested past
    the recursion limit); strings and bytes are cut before they are quoted.
    """
    if isinstance(value, str | bytes):
        cut = value[:limit]
        return repr(cut) + ("..." if len(value) > limit else "")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)[:limit]
    if isinstance(value, list | tuple | dict | set):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def explain(error: msgspec.ValidationError, where: str) -> str:
    """``where.path: what`` from msgspec's ``what - at `$.path``` message, cut to a bound."""
    text = str(error)
    what, sep, path = text.rpartition(" - at `$")  # the path ends the message
    if not sep:
        what, path = text, "`"
    path = path[:-1]
    field = where + path
    for prefix, verb in (("Object missing required field `", "missing"),
                         ("Object contains unknown field `", "unknown field")):  # fmt: skip
        if what.startswith(prefix):
            name = what[len(prefix) :].rstrip("`")
            if verb == "missing":
                return _cut(f"{field}.{name}: missing")
            return _cut(f"{field}: unknown field {name!r}")
    if _OWN.match(what):  # a check of ours (``__post_init__``) names its field first
        return _cut(f"{field}.{what}")
    return _cut(f"{field}: {what[:1].lower()}{what[1:]}")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
