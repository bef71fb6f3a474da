"""Forecasters against plain loop references on small arrays (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xdrs.sim.forecast import (
    FORECASTERS,
    ewma,
    exceed_rate,
    last_value,
    pinball,
    rolling_quantile,
    seasonal,
    step_quantile,
    window_quantile,
)

pct = st.floats(0.0, 100.0, allow_nan=False)
demand = st.tuples(st.integers(1, 4), st.integers(2, 20)).flatmap(
    lambda s: arrays(np.float64, s, elements=pct)
)
levels = st.floats(0.05, 1.0)


def ref_quantile(samples: list[float], q: float) -> float:
    """The ceil(q n)-th smallest sample (1-based), NaN for no sample."""
    s = sorted(x for x in samples if not math.isnan(x))
    if not s:
        return math.nan
    return s[max(math.ceil(q * len(s)), 1) - 1]


@given(arrays(np.float64, (3, 7), elements=st.one_of(pct, st.just(math.nan))), levels)
def test_window_quantile_is_an_order_statistic(win: np.ndarray, q: float) -> None:
    got = window_quantile(win, q)
    want = [ref_quantile(list(row), q) for row in win]
    np.testing.assert_array_equal(got, want)


@given(demand, levels, st.integers(1, 8))
def test_rolling_quantile(y: np.ndarray, q: float, w: int) -> None:
    got = rolling_quantile(y, 1, q, window=w)
    for v in range(y.shape[0]):
        for t in range(y.shape[1]):
            assert got[v, t] == ref_quantile(list(y[v, max(0, t - w + 1) : t + 1]), q)


@given(demand, st.floats(0.01, 1.0))
def test_ewma(y: np.ndarray, alpha: float) -> None:
    got = ewma(y, 1, alpha)
    for v in range(y.shape[0]):
        s = y[v, 0]
        for t in range(y.shape[1]):
            s = alpha * y[v, t] + (1 - alpha) * s
            assert got[v, t] == pytest.approx(s, abs=1e-9)


@given(demand, st.integers(1, 5), st.data())
def test_seasonal_uses_the_previous_day_where_known(
    y: np.ndarray, h: int, data: st.DataObject
) -> None:
    prev = data.draw(arrays(np.float64, y.shape, elements=st.one_of(pct, st.just(math.nan))))
    got = seasonal(y, h, prev)
    n = y.shape[1]
    for v in range(y.shape[0]):
        for t in range(n):
            target = prev[v, t + h] if t + h < n else math.nan
            assert got[v, t] == (y[v, t] if math.isnan(target) else target)


@given(demand, st.integers(1, 4), levels, st.integers(1, 6))
def test_step_quantile(y: np.ndarray, h: int, q: float, w: int) -> None:
    got = step_quantile(y, h, q, window=w)
    for v in range(y.shape[0]):
        for t in range(y.shape[1]):
            steps = [y[v, s] - y[v, s - h] for s in range(max(h, t - w + 1), t + 1)]
            up = ref_quantile(steps, q)
            assert got[v, t] == pytest.approx(y[v, t] + (0.0 if math.isnan(up) else up))


@given(demand, levels)
def test_pinball_and_exceed_rate(y: np.ndarray, q: float) -> None:
    f = np.roll(y, 1, axis=1)
    losses = [
        max(q * (a - b), (q - 1) * (a - b)) for a, b in zip(y.ravel(), f.ravel(), strict=True)
    ]
    assert pinball(y, f, q) == pytest.approx(sum(losses) / len(losses))
    assert (
        exceed_rate(y, f) == sum(a > b for a, b in zip(y.ravel(), f.ravel(), strict=True)) / y.size
    )
    assert pinball(y, y, q) == 0.0 and exceed_rate(y, y) == 0.0


@settings(max_examples=30)
@given(demand)
def test_the_window_maximum_is_never_exceeded_by_the_sample_it_contains(y: np.ndarray) -> None:
    # q = 1 over a window that ends at the sample: the forecast holds that sample
    assert exceed_rate(y, rolling_quantile(y, 1, 1.0, window=3)) == 0.0
    np.testing.assert_array_equal(last_value(y, 3), y)


def test_registry_names_every_forecaster_once() -> None:
    assert sorted(FORECASTERS) == ["ewma", "last", "rolling-quantile", "seasonal", "step-quantile"]
    y = np.array([[10.0, 20.0, 30.0, 40.0]])
    for name, (fn, wants_q, wants_prev) in FORECASTERS.items():
        args = (y, 1, np.full_like(y, np.nan)) if wants_prev else (y, 1)
        out = fn(*args, q=0.5) if wants_q else fn(*args)
        assert out.shape == y.shape, name
