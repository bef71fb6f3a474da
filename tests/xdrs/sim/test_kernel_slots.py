"""The compiled list-slot layout (``kernel.slots``, JIT and ahead of time) against the numpy
reference ``slots``."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdrs.sim import aot, kernel
from xdrs.sim.hosts import slots, slots_compiled

_AOT: list[ModuleType] = []


@pytest.fixture(autouse=True)
def _aot_module(aot_dir: Path) -> None:
    """The ahead-of-time module for the hypothesis test (which takes no fixtures per case)."""
    if not _AOT:
        mod = aot.load(aot_dir)
        assert mod is not None
        _AOT.append(mod)


def _modules() -> list[ModuleType]:
    return [kernel, *_AOT]


@st.composite
def _entries(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 60))
    host = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    unique = draw(st.booleans())  # the engine's seq numbers are unique; ties must be stable
    if unique:
        seq = draw(st.permutations(range(n)))
    else:
        seq = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    return np.array(host, dtype=np.int64), np.array(seq, dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(_entries())
def test_compiled_slots_are_the_reference_layout(e: tuple[np.ndarray, np.ndarray]) -> None:
    host, seq = e
    rows, grid = slots(host, seq)
    for k in _modules():
        c_rows, c_grid = slots_compiled(k, host, seq)
        assert c_rows.dtype == rows.dtype == np.int64
        assert c_grid.dtype == grid.dtype == np.int64
        np.testing.assert_array_equal(c_rows, rows)
        np.testing.assert_array_equal(c_grid, grid)


def test_a_host_list_follows_seq_order(compiled: ModuleType) -> None:
    host = np.array([3, 1, 3, 3, 1], dtype=np.int64)
    seq = np.array([9, 4, 2, 7, 1], dtype=np.int64)
    rows, grid = slots_compiled(compiled, host, seq)
    assert rows.tolist() == [1, 3]
    assert grid.tolist() == [[4, 1, -1], [2, 3, 0]]
