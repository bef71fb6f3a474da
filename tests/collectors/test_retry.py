"""collectors.retry.Patience: validated once, back-off doubling on the given sleep."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.retry import Patience


def test_back_off_doubles_from_backoff_s() -> None:
    waits: list[float] = []
    p = Patience(backoff_s=0.25, sleep=waits.append)
    for attempt in (1, 2, 3, 4):
        p.back_off(attempt)
    assert waits == [0.25, 0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("timeout_s", 0, r"Patience\.timeout_s: expected a finite number above 0, got 0"),
        ("timeout_s", math.inf, r"Patience\.timeout_s: .* got inf"),
        ("poll_s", -1.0, r"Patience\.poll_s: expected a finite number above 0"),
        ("attempts", 0, r"Patience\.attempts: expected an integer of at least 1, got 0"),
        ("attempts", 2.0, r"Patience\.attempts: .* got 2\.0"),
        ("attempts", True, r"Patience\.attempts: .* got True"),
        ("backoff_s", math.nan, r"Patience\.backoff_s: expected a finite number of at least 0"),
        ("backoff_s", "1", r"Patience\.backoff_s: .* got '1'"),
    ],
    ids=["zero-timeout", "inf-timeout", "negative-poll", "no-attempts", "float-attempts",
         "bool-attempts", "nan-backoff", "text-backoff"],
)  # fmt: skip
def test_bad_values_name_the_field(field: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Patience(**{field: value})


NUMBERS = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=3)


@given(timeout_s=NUMBERS, attempts=NUMBERS, backoff_s=NUMBERS, poll_s=NUMBERS)
def test_any_values_build_or_name_a_field(
    timeout_s: Any, attempts: Any, backoff_s: Any, poll_s: Any
) -> None:
    try:
        p = Patience(timeout_s=timeout_s, attempts=attempts, backoff_s=backoff_s, poll_s=poll_s)
    except ValueError as e:
        assert str(e).startswith("Patience.") and "expected" in str(e)
    else:
        assert p.attempts >= 1 and p.timeout_s > 0 and p.poll_s > 0 and p.backoff_s >= 0
        assert all(math.isfinite(v) for v in (p.timeout_s, p.backoff_s, p.poll_s))
