"""VM selection rules: hand-computed cases and a reference for maximum correlation."""

from __future__ import annotations

import numpy as np
import pytest

from placement.selection import mc, mmt, mu, rs


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
    noise = rng.uniform(0, 1, 20)
    hist = np.vstack([noise, a, b, 0.3 * a + 0.6 * b])  # rows 1..3 are collinear
    r2 = []
    for i in range(4):
        y, x = hist[i], np.delete(hist, i, axis=0).T
        d = np.column_stack([np.ones(20), x])
        res = y - d @ np.linalg.lstsq(d, y, rcond=None)[0]
        r2.append(1 - res @ res / ((y - y.mean()) ** 2).sum())
    assert mc(hist, np.ones(4)) == int(np.argmax(r2))
    assert mc(hist, np.ones(4)) != 0


@pytest.mark.parametrize(("n", "m"), [(1, 10), (3, 3), (4, 2)], ids=["one-vm", "m=n", "m<n"])
def test_mc_falls_back_to_mmt(n: int, m: int) -> None:
    ram = np.array([1740.0, 613.0, 870.0, 500.0])[:n]
    assert mc(np.ones((n, m)), ram) == mmt(ram)
