"""PABFD kernels and the CloudSim power interpolation against loop references."""

from __future__ import annotations

import numpy as np
import pytest

from placement.pabfd import choose, first_fit, power_increase, sort_decreasing, suitable
from placement.power import spec_power

G4 = [86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117]
G5 = [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135]


def ref_power(u: float, t: list[float]) -> float:
    i = int(u * 10)
    if i == u * 10:
        return t[i]
    lo = t[int(np.floor(u * 10))]
    hi = t[int(np.ceil(u * 10))]
    return lo + (hi - lo) * (u - np.floor(u * 10) / 10) * 10


def test_spec_power_points_and_interpolation() -> None:
    table = np.array([G4, G5, G4, G5, G4])
    u = np.array([0.0, 1.0, 0.5, 0.25, 0.999])
    got = spec_power(u, table)
    assert got[:3].tolist() == [86, 135, 102]
    assert got[3] == pytest.approx(101 + 4 * 0.5)
    assert got[4] == pytest.approx(114 + 3 * 0.99)
    rng = np.random.default_rng(0)
    uu = rng.uniform(0, 1, 200)
    tt = np.array([G4 if i % 2 else G5 for i in range(200)])
    want = [ref_power(a, list(b)) for a, b in zip(uu, tt, strict=True)]
    assert np.allclose(spec_power(uu, tt), want, rtol=0, atol=1e-9)


def test_spec_power_all_table_points() -> None:
    u = np.array([i / 10 for i in range(11)])
    assert spec_power(u, np.array([G5] * 11)).tolist() == G5


def test_sort_decreasing_is_stable() -> None:
    assert sort_decreasing(np.array([1.0, 3.0, 1.0, 3.0, 2.0])).tolist() == [1, 3, 4, 0, 2]


def test_suitable_checks_every_resource() -> None:
    pe = np.array([1860.0, 2660, 2660, 2660, 2660])
    avail = np.array([3000.0, 3000, 100, 3000, 3000])
    ram = np.array([4096.0, 4096, 4096, 500, 4096])
    bw = np.array([1e6, 1e6, 1e6, 1e6, 0])
    got = suitable(2000.0, 870.0, 1e5, pe, avail, ram, bw)
    assert got.tolist() == [False, True, False, False, False]


def test_choose_least_increase_first_on_ties() -> None:
    rng = np.random.default_rng(5)
    alloc = rng.choice([0.0, 500, 1000, 2000], 40)
    total = np.where(np.arange(40) % 2, 5320.0, 3720.0)
    table = np.array([G5 if i % 2 else G4 for i in range(40)])
    now = alloc / total
    ok = rng.uniform(size=40) < 0.7
    inc = power_increase(800.0, alloc, total, now, table)
    best, best_inc = -1, np.inf
    for h in range(40):
        row = list(table[h])
        p = ref_power((alloc[h] + 800) / total[h], row) - ref_power(now[h], row)
        if ok[h] and p < best_inc - 1e-12:
            best, best_inc = h, p
    assert choose(inc, ok) == best
    assert choose(inc, np.zeros(40, bool)) == -1


def test_first_fit() -> None:
    assert first_fit(np.array([False, True, True])) == 1
    assert first_fit(np.array([False, False])) == -1
