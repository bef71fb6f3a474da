"""Column-wise validation of a JSON array of objects, with messages that name the object.

A column is read in one pass; only when it holds a bad value is the first one located and
reported, as ``vms[12] (uuid 'abc').memory_mb: expected a number in 0..67108864 (64 TiB in
MiB), got -5``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from xdrs.errors import SnapshotError

__all__ = ["MISSING", "Table", "show"]

FloatA = NDArray[np.float64]
BoolA = NDArray[np.bool_]

MISSING: Any = object()


def show(value: object) -> str:
    """A JSON-like rendering of an input value for error messages."""
    if value is MISSING:
        return "nothing (key missing)"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _is_number(x: object, lo: float, hi: float) -> bool:
    # type() rather than isinstance(): a JSON true is not the number 1. The range check comes
    # first: math.isfinite() of an int beyond the float range raises OverflowError.
    if type(x) is int:
        return lo <= x <= hi
    return type(x) is float and math.isfinite(x) and lo <= x <= hi


class Table:
    """The objects of one top-level array (``hosts`` or ``vms``)."""

    def __init__(self, kind: str, objs: object) -> None:
        if not isinstance(objs, list):
            raise SnapshotError(f"{kind}: expected an array of objects, got {show(objs)}")
        for i, o in enumerate(objs):
            if not isinstance(o, dict):
                raise SnapshotError(f"{kind}[{i}]: expected an object, got {show(o)}")
        self.kind = kind
        self.objs: list[dict[str, Any]] = objs

    def __len__(self) -> int:
        return len(self.objs)

    def where(self, i: int) -> str:
        uuid = self.objs[i].get("uuid")
        return f"{self.kind}[{i}] (uuid {uuid!r})" if isinstance(uuid, str) else f"{self.kind}[{i}]"

    def fail(self, i: int, key: str, expected: str, got: object) -> SnapshotError:
        return SnapshotError(f"{self.where(i)}.{key}: expected {expected}, got {show(got)}")

    def column(self, key: str, default: object = MISSING) -> list[Any]:
        return [o.get(key, default) for o in self.objs]

    def numbers(self, key: str, hi: float, note: str = "", default: object = MISSING) -> FloatA:
        """(n,) float64 of a numeric key, each a finite number in ``0..hi``.

        ``note`` explains the bound in the error (``"64 TiB"``).
        """
        col = self.column(key, default)
        if not all(_is_number(x, 0, hi) for x in col):
            i = next(i for i, x in enumerate(col) if not _is_number(x, 0, hi))
            want = f"a number in 0..{hi:.15g}" + (f" ({note})" if note else "")
            raise self.fail(i, key, want, col[i])
        return np.array(col, dtype=np.float64).reshape(len(col))

    def at_most(self, key: str, values: FloatA, limit_key: str, limits: FloatA) -> None:
        """Raise unless ``values <= limits`` element-wise."""
        bad = np.flatnonzero(values > limits)
        if bad.size:
            i = int(bad[0])
            want = f"a number <= {limit_key} ({limits[i]:g})"
            raise self.fail(i, key, want, self.objs[i].get(key))

    def flags(self, key: str) -> BoolA:
        """(n,) bool of an optional boolean key (default false)."""
        col = self.column(key, False)
        for i, x in enumerate(col):
            if type(x) is not bool:
                raise self.fail(i, key, "true or false", x)
        return np.array(col, dtype=bool).reshape(len(col))

    def strings(self, key: str, default: object = MISSING) -> list[str]:
        col = self.column(key, default)
        for i, x in enumerate(col):
            if not isinstance(x, str) or not x:
                raise self.fail(i, key, "a non-empty string", x)
        return col

    def uuids(self) -> list[str]:
        """The ``uuid`` column, checked for presence and uniqueness."""
        ids = self.strings("uuid")
        if len(set(ids)) != len(ids):
            first: dict[str, int] = {}
            for i, u in enumerate(ids):
                if u in first:
                    j = first[u]
                    raise SnapshotError(f"{self.where(i)}.uuid: duplicate of {self.kind}[{j}]")
                first[u] = i
        return ids

    def indices(self, key: str, n: int, what: str) -> NDArray[np.int64]:
        """(n,) int64 of an index key, each in ``0..n-1``."""
        col = self.column(key)
        for i, x in enumerate(col):
            if type(x) is not int or not 0 <= x < n:
                raise self.fail(i, key, f"{what} index 0..{n - 1}", x)
        return np.array(col, dtype=np.int64).reshape(len(col))
