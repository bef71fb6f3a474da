"""VM selection rules: hand-computed cases, and maximum correlation's R^2 (a fixed-order
Gram-Schmidt without BLAS) against numpy's least squares, the simple reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from placement.selection import mc, mmt, mu, r_squared, rs


def lstsq_r_squared(history: np.ndarray, rcond: float | None = None) -> np.ndarray:
    """R^2 of each row regressed on [1, the other rows] by numpy.linalg.lstsq (LAPACK,
    minimum-norm solution; singular values below ``rcond`` times the largest dropped);
    NaN for a constant row."""
    out = []
    for i, y in enumerate(history):
        design = np.column_stack([np.ones(len(y)), np.delete(history, i, axis=0).T])
        resid = y - design @ np.linalg.lstsq(design, y, rcond=rcond)[0]
        sst = ((y - y.mean()) ** 2).sum()
        out.append(np.nan if (y == y[0]).all() else 1 - resid @ resid / sst)
    return np.array(out)


def _history(seed: int, n: int, m: int, near_collinear: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.random((n, m)).round(2)  # PlanetLab's resolution: whole percents
    if near_collinear and n >= 3:
        h[-1] = 0.3 * h[0] + 0.6 * h[1] + 1e-6 * rng.standard_normal(m)
    return h


def test_mmt_takes_first_smallest_memory() -> None:
    assert mmt(np.array([1740.0, 613.0, 870.0, 613.0])) == 1
    assert mmt(np.array([])) == -1


def test_mu_takes_first_lowest_utilisation() -> None:
    assert mu(np.array([0.5, 0.2, 0.2, 0.9])) == 1
    assert mu(np.array([])) == -1


def test_rs_is_seeded_and_in_range() -> None:
    a = [rs(5, np.random.default_rng(3)) for _ in range(3)]
    b = [rs(5, np.random.default_rng(3)) for _ in range(3)]
    assert a == b
    draws = {rs(5, np.random.default_rng(s)) for s in range(50)}
    assert draws == set(range(5))
    assert rs(0, np.random.default_rng(0)) == -1


def test_mc_picks_the_vm_explained_by_the_others() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, 20), rng.uniform(0, 1, 20)
    noise, small = rng.uniform(0, 1, 20), rng.uniform(0, 0.05, 20)
    hist = np.vstack([noise, a, b, 0.3 * a + 0.6 * b + small])
    assert mc(hist, np.ones(4)) == int(np.argmax(lstsq_r_squared(hist))) == 3


@pytest.mark.parametrize(("n", "m"), [(1, 10), (3, 3), (4, 2)], ids=["one-vm", "m=n", "m<n"])
def test_mc_falls_back_to_mmt(n: int, m: int) -> None:
    ram = np.array([1740.0, 613.0, 870.0, 500.0])[:n]
    assert mc(np.ones((n, m)), ram) == mmt(ram)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 20),
    extra=st.integers(1, 12),
    near_collinear=st.booleans(),
)
def test_r_squared_is_least_squares(seed: int, n: int, extra: int, near_collinear: bool) -> None:
    h = _history(seed, n, min(n + extra, 30), near_collinear)
    np.testing.assert_allclose(r_squared(h), lstsq_r_squared(h), rtol=1e-9, atol=1e-12)


def test_mc_picks_as_least_squares_away_from_ties() -> None:
    compared = 0
    for seed in range(300):
        n = 2 + seed % 12
        h = _history(seed, n, 30, near_collinear=seed % 3 == 0)
        ref = lstsq_r_squared(h)
        top = np.sort(ref)[::-1]
        if top[0] - top[1] > 1e-6:  # a clear winner (with n = 2 the two R^2 are equal)
            assert mc(h, np.ones(n)) == int(np.argmax(ref)), seed
            compared += 1
    assert compared >= 150  # of 300: n = 2 and the near-collinear triples are ties


def test_rank_deficient_histories_give_the_minimum_norm_residual() -> None:
    rng = np.random.default_rng(5)
    h = rng.random((7, 30)).round(2)
    h[2] = h[0]  # a twin: each explains the other fully
    h[4] = 0.25 * h[1] + 0.75 * h[3]  # an exact combination of two others
    h[5] = 0.37  # constant: R^2 undefined (its mean rounds: sst == 0 gave R^2 0.87 here)
    got = r_squared(h)
    # lstsq dropping the same null directions (far below this cut-off: ~1e-16)
    np.testing.assert_allclose(got, lstsq_r_squared(h, rcond=1e-9), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got[[0, 1, 2, 3, 4]], 1.0, rtol=1e-12)
    assert np.isnan(got[5]) and 0 < got[6] < 1
    assert mc(h, np.ones(7)) in (0, 1, 2, 3, 4)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(2, 30)),
        elements=st.sampled_from([0.0, 0.01, 0.5, 0.51, 1.0]),  # many ties and collinear rows
    )
)
def test_r_squared_is_a_share_or_nan_for_any_history(h: np.ndarray) -> None:
    got = r_squared(h)
    constant = (h == h[:, :1]).all(axis=1)
    assert got.shape == (h.shape[0],)
    np.testing.assert_array_equal(np.isnan(got), constant)
    assert ((got[~constant] > -1e-9) & (got[~constant] < 1 + 1e-9)).all(), got
    ram = np.arange(h.shape[0], 0, -1.0)
    assert 0 <= mc(h, ram) < h.shape[0]
