"""Fuzzing the snapshot entrance: every input loads into a sound state or is refused.

Mutations of a valid snapshot (every xdrs extension used) replace, delete or duplicate any
value, anywhere, with hostile values (huge, non-finite, wrong type); byte-level mutations
exercise the JSON reader. The only allowed failure is :class:`SnapshotError` with a message;
a state that loads has finite loads and metrics, and a plan over it has finite objectives.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as hst

from placement import ClusterState, host_loads, metrics, run
from tests.xdrs.snapshots import rich_doc
from xdrs.snapshot import SnapshotError, parse_snapshot, read_snapshot

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Path_ = tuple[str | int, ...]

HOSTILE = hst.one_of(
    hst.integers(0, 100),  # plausible values, so that a fair share of mutants loads
    hst.floats(0, 2e5),
    hst.none(),
    hst.booleans(),
    hst.integers(-(2**70), 2**70),
    hst.sampled_from([0, 1, -1, 4096, 4097, 2**53 + 1, 10**400, -(10**400)]),
    hst.floats(allow_nan=True, allow_infinity=True),
    hst.sampled_from([1e308, 1.7976931348623157e308, 5e-324, -0.0, 0.5, 67108864.0]),
    hst.sampled_from(["", "v0", "v1", "h0", "h3", "default", "a", "must", "anti_affinity"]),
    hst.text(max_size=4),
    hst.lists(hst.sampled_from(["v0", "v1", "h1", 0, 1.5, None]), max_size=3),
    hst.builds(dict),  # a fresh object each time: a later mutation may write into it
)


def _paths(node: object, prefix: Path_ = ()) -> list[Path_]:
    """Every location in a JSON document (the root excluded)."""
    out: list[Path_] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _mutate(d: dict[str, Any], path: Path_, op: str, value: object) -> None:
    if op == "column" and len(path) >= 3 and path[0] in ("hosts", "vms"):
        for o in d[path[0]]:  # the same value in every host (or VM): sums, not one outlier
            if isinstance(o, dict):
                o[path[2]] = value
        return
    parent: Any = d
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(int(last), copy.deepcopy(parent[last]))
    else:
        parent[last] = value


@hst.composite
def mutated(draw: hst.DrawFn) -> dict[str, Any]:
    d = rich_doc()
    for _ in range(draw(hst.integers(1, 3))):
        paths = _paths(d)
        if not paths:
            break
        path = draw(hst.sampled_from(paths))
        op = draw(hst.sampled_from(["replace", "replace", "column", "delete", "duplicate"]))
        _mutate(d, path, op, draw(HOSTILE))
    return d


# an error names a field of the user's file, never an internal array such as alloc_cap[0, 1]
FIELD = re.compile(
    r"^(snapshot|format|hosts|vms|rules)\b(\[\d+\]( \((uuid|name) '[^']*'\))?)?[.: ]"
)


def assert_names_a_field(message: str) -> None:
    assert "\n" not in message
    assert FIELD.match(message), message


NUMERIC = {
    "hosts": ("vcpus", "memory_mb", "disk_gb", "vcpu_reserved", "memory_mb_reserved",
              "vcpu_ratio", "memory_ratio", "disk_ratio"),
    "vms": ("vcpus", "memory_mb", "disk_gb", "cpu_util_pct", "ram_usage_mb"),
}  # fmt: skip
# any magnitude from tiny to the float limit, ints too
MAGNITUDE = hst.one_of(
    hst.floats(0, 1.7976931348623157e308),
    hst.integers(0, 10**20),
    hst.integers(0, 30).map(lambda k: 2**k),
)


@hst.composite
def resized(draw: hst.DrawFn) -> dict[str, Any]:
    """rich_doc() with some numbers (or a whole column) set to any magnitude."""
    d = rich_doc()
    for _ in range(draw(hst.integers(1, 4))):
        kind = draw(hst.sampled_from(sorted(NUMERIC)))
        key = draw(hst.sampled_from(NUMERIC[kind]))
        value = draw(MAGNITUDE)
        every = draw(hst.booleans())
        rows = range(len(d[kind])) if every else [draw(hst.integers(0, len(d[kind]) - 1))]
        for i in rows:
            d[kind][i][key] = value
    return d


def assert_sound(state: ClusterState) -> None:
    """Loads, metrics and a plan's objectives over ``state`` are all finite."""
    assert np.isfinite(host_loads(state)).all()
    assert all(math.isfinite(x) for x in metrics(state).as_dict().values())
    plan = run("balance", state)
    assert math.isfinite(plan.objective_before) and math.isfinite(plan.objective_after)
    assert np.isfinite(host_loads(state, plan.final_placement(state.placement))).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy overflow: a size passed unbounded
@FUZZ
@given(d=resized())
def test_any_magnitude_loads_soundly_or_is_refused(d: dict[str, Any]) -> None:
    try:
        state = parse_snapshot(d)
    except SnapshotError as e:
        event("refused")
        assert_names_a_field(str(e))
        return
    event("loaded")
    assert_sound(state)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@FUZZ
@given(d=mutated())
def test_mutated_snapshot_loads_soundly_or_is_refused(d: dict[str, Any]) -> None:
    try:
        state = parse_snapshot(d)
    except SnapshotError as e:
        event("refused")
        assert_names_a_field(str(e))
        return
    event("loaded")
    assert_sound(state)


@settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=hst.data())  # tmp_path is shared by the examples: each one rewrites the file
def test_mutated_bytes_load_soundly_or_are_refused(tmp_path: Path, data: hst.DataObject) -> None:
    raw = bytearray(orjson.dumps(rich_doc()))
    for _ in range(data.draw(hst.integers(1, 4))):
        at = data.draw(hst.integers(0, len(raw) - 1))
        op = data.draw(hst.sampled_from(["set", "insert", "delete"]))
        byte = data.draw(hst.sampled_from(b'{}[]",:0-.e9 \x00\xff' + b"ntf"))
        if op == "set":
            raw[at] = byte
        elif op == "insert":
            raw.insert(at, byte)
        else:
            del raw[at]
    path = tmp_path / "fuzz.json"
    path.write_bytes(bytes(raw))
    try:
        state = read_snapshot(path)
    except SnapshotError as e:
        event("refused")
        assert str(e).startswith(f"{path}: ")
        if "invalid JSON" not in str(e) and "NUL byte" not in str(e):
            assert_names_a_field(str(e).removeprefix(f"{path}: "))
        return
    event("loaded")
    assert_sound(state)
