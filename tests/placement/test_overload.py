"""Overload detectors against plain one-host-at-a-time reference implementations."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from placement.overload import (
    iqr_threshold,
    lr_prediction,
    mad_threshold,
    overloaded,
    trimmed_length,
)


def ref_trim(row: list[float]) -> list[float]:
    while row and row[-1] == 0:
        row = row[:-1]
    return row


def ref_mad(row: list[float]) -> float:
    med = statistics.median(row)
    return statistics.median([abs(v - med) for v in row])


def ref_iqr(row: list[float]) -> float:
    s = sorted(row)
    n = len(s)
    return s[math.floor(0.75 * (n + 1) + 0.5) - 1] - s[math.floor(0.25 * (n + 1) + 0.5) - 1]


def ref_lr(row: list[float], steps: int = 1) -> float:
    y = list(reversed(row[:10]))  # oldest first
    x = list(range(1, 11))
    mx, my = sum(x) / 10, sum(y) / 10
    b = sum((a - mx) * (c - my) for a, c in zip(x, y, strict=True)) / sum((a - mx) ** 2 for a in x)
    return my - b * mx + b * (10 + steps)


def ref_overloaded(kind: str, p: float, row: list[float], util: float) -> bool:
    row = ref_trim(row)
    if kind == "thr":
        return util > p
    if kind in ("lr", "lrr"):
        return util > 0.7 if len(row) < 10 else p * ref_lr(row) >= 1
    if len(row) < 12:
        return util > 0.7
    spread = ref_mad(row) if kind == "mad" else ref_iqr(row)
    return util > 1 - p * spread


@pytest.fixture
def histories() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    hist = rng.uniform(0, 1, (60, 30)).round(2)
    lengths = rng.integers(0, 31, 60)
    for i, n in enumerate(lengths):
        hist[i, n:] = 0
    hist[3, 5] = 0  # a zero inside the history stays
    util = rng.uniform(0.3, 1.0, 60)
    return hist, util


def test_trimmed_length(histories: tuple[np.ndarray, np.ndarray]) -> None:
    hist, _ = histories
    got = trimmed_length(hist)
    assert got.tolist() == [len(ref_trim(list(r))) for r in hist]


@pytest.mark.parametrize(
    ("kind", "param"),
    [("thr", 0.8), ("iqr", 1.5), ("mad", 2.5), ("lr", 1.2), ("lrr", 1.2)],
    ids=["thr", "iqr", "mad", "lr", "lrr"],
)
def test_detectors_match_reference(
    kind: str, param: float, histories: tuple[np.ndarray, np.ndarray]
) -> None:
    hist, util = histories
    got = overloaded(kind, param, hist, trimmed_length(hist), util)
    want = [ref_overloaded(kind, param, list(r), u) for r, u in zip(hist, util, strict=True)]
    assert got.tolist() == want
    assert 0 < sum(want) < len(want)  # the data exercise both outcomes


def test_spreads_and_prediction_values(histories: tuple[np.ndarray, np.ndarray]) -> None:
    hist, _ = histories
    n = trimmed_length(hist)
    mad = mad_threshold(hist, n, 2.0)
    iqr = iqr_threshold(hist, n, 1.0)
    lr = lr_prediction(hist, n, 1.0)
    for i, row in enumerate(hist):
        r = ref_trim(list(row))
        if len(r) >= 12:
            assert mad[i] == pytest.approx(1 - 2 * ref_mad(r), abs=1e-12)
            assert iqr[i] == pytest.approx(1 - ref_iqr(r), abs=1e-12)
        else:
            assert np.isnan(mad[i]) and np.isnan(iqr[i])
        if len(r) >= 10:
            assert lr[i] == pytest.approx(ref_lr(r), abs=1e-12)
        else:
            assert np.isnan(lr[i])


def test_hand_computed_cases() -> None:
    # rising line 0.1..1.0 (oldest..newest): the next value is 1.1, times 1.2 = 1.32
    hist = np.zeros((1, 30))
    hist[0, :10] = np.linspace(1.0, 0.1, 10)
    assert lr_prediction(hist, np.array([10]), 1.2)[0] == pytest.approx(1.32)
    # 12 samples: six 0.5 and six 0.7 -> median 0.6, MAD 0.1
    hist2 = np.zeros((1, 30))
    hist2[0, :12] = [0.5, 0.7] * 6
    assert mad_threshold(hist2, np.array([12]), 2.5)[0] == pytest.approx(0.75)
    # IQR of 1..12 / 100: elements round(3.25)-1=2 and round(9.75)-1=9 -> 0.10 - 0.03
    hist3 = np.zeros((1, 30))
    hist3[0, :12] = np.arange(1, 13) / 100
    assert iqr_threshold(hist3, np.array([12]), 1.5)[0] == pytest.approx(1 - 1.5 * 0.07)


def test_unknown_detector() -> None:
    with pytest.raises(ValueError, match="unknown overload detector"):
        overloaded("xyz", 1.0, np.zeros((1, 3)), np.zeros(1, np.int64), np.zeros(1))
