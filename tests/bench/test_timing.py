"""bench.timing: one time per call, the last call's result."""

from __future__ import annotations

import itertools

import pytest

from bench.timing import timed


def test_times_every_call_and_keeps_the_last_result() -> None:
    calls = itertools.count(1)
    times, out = timed(lambda: next(calls), 4)
    assert out == 4 and next(calls) == 5
    assert len(times) == 4 and all(t >= 0 for t in times)


def test_no_call_is_an_error() -> None:
    with pytest.raises(ValueError, match="repeat: expected at least 1, got 0"):
        timed(lambda: None, 0)
