"""The resampler: real timestamps onto the decision interval, gaps carried forward, then absent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay.resample import ResampleError, Samples, resample


def samples(rows: list[tuple[float, int, float]], n_vms: int = 1) -> Samples:
    ts, vm, cpu = zip(*rows, strict=True)
    return Samples(
        tuple(f"vm{i}" for i in range(n_vms)),
        np.array(ts, dtype=np.float64),
        np.array(vm, dtype=np.int64),
        np.array(cpu, dtype=np.float64),
    )


def test_uneven_rows_are_real_time() -> None:
    # 0, 300 and 86,400 s: a day, not three steps of 300 s
    r = resample(samples([(0, 0, 10), (300, 0, 20), (86_400, 0, 70)]), 300, 3600)
    assert r.cpu_pct.shape == (1, 289)
    assert r.cpu_pct[0, :2].tolist() == [10.0, 20.0]
    # carried forward 12 slots (3,600 s), then absent until the last sample
    assert (r.cpu_pct[0, 2:14] == 20.0).all() and r.present[0, :14].all()
    assert not r.present[0, 14:288].any() and (r.cpu_pct[0, 14:288] == 0).all()
    assert r.present[0, 288] and r.cpu_pct[0, 288] == 70.0
    rep = r.report
    assert (rep.vms, rep.samples, rep.slots, rep.merged) == (1, 3, 289, 0)
    assert (rep.filled, rep.absent, rep.clipped) == (12, 274, 0)
    assert "3 samples onto 289 slots of 300 s" in rep.summary()


def test_a_timestamp_near_zero_does_not_squeeze_the_day() -> None:
    r = resample(samples([(0, 0, 10), (1e-6, 0, 30), (86_400, 0, 50)]), 300, 3600)
    assert r.cpu_pct.shape == (1, 289)
    assert r.cpu_pct[0, 0] == 20.0  # mean within the slot
    assert r.report.merged == 1


def test_gap_limit_zero_and_late_vm() -> None:
    r = resample(samples([(0, 0, 5), (900, 0, 6), (600, 1, 40)], 2), 300, 0)
    assert r.cpu_pct.tolist() == [[5.0, 0.0, 0.0, 6.0], [0.0, 0.0, 40.0, 0.0]]
    assert r.present.tolist() == [[True, False, False, True], [False, False, True, False]]
    assert r.report.filled == 0 and r.report.absent == 5


def test_interval_is_configurable() -> None:
    r = resample(samples([(0, 0, 10), (60, 0, 30), (120, 0, 50)]), 60, 3600)
    assert r.cpu_pct.tolist() == [[10.0, 30.0, 50.0]]
    r = resample(samples([(0, 0, 10), (60, 0, 30), (120, 0, 50)]), 3600, 3600)
    assert r.cpu_pct.tolist() == [[30.0]] and r.report.merged == 2


@pytest.mark.parametrize(
    ("interval", "gap"), [(0.0, 1.0), (float("nan"), 1.0), (300.0, -1.0), (300.0, np.inf)]
)
def test_bad_interval_or_gap(interval: float, gap: float) -> None:
    with pytest.raises(ResampleError, match="expected > 0 and >= 0"):
        resample(samples([(0, 0, 1)]), interval, gap)


def test_too_many_cells_before_allocating() -> None:
    with pytest.raises(ResampleError, match=r"33,334 slots of 300 s .* the limit is 1,000"):
        resample(samples([(0, 0, 1), (1e7, 0, 1)]), 300, 3600, max_cells=1000)


def test_a_stray_timestamp_is_named() -> None:
    # epoch seconds and one sample at 0: 54 years, not a run of 5.7 million steps
    s = samples([(1.7e9, 0, 5), (1.7e9 + 300, 0, 6), (0, 1, 7)], 2)
    with pytest.raises(
        ResampleError, match=r"span 19,675.9 days; at most 366 days .* VM 'vm1' has the first"
    ):
        resample(s)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.integers(0, 3),
            st.floats(0, 100, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    ),
    interval=st.sampled_from([1.0, 60.0, 300.0, 7200.0]),
    gap=st.sampled_from([0.0, 300.0, 3600.0]),
)
def test_resampling_invariants(
    rows: list[tuple[float, int, float]], interval: float, gap: float
) -> None:
    try:
        r = resample(samples(rows, 4), interval, gap, max_cells=200_000)
    except ResampleError as e:
        assert "the limit is 200,000" in str(e)
        return
    v, t = r.cpu_pct.shape
    assert v == 4 and t == r.report.slots
    assert ((r.cpu_pct >= 0) & (r.cpu_pct <= 100)).all()
    assert not r.cpu_pct[~r.present].any()
    rep = r.report
    with_sample = rep.samples - rep.merged
    assert with_sample + rep.filled + rep.absent == v * t
    # every VM's last slot with a sample holds the mean of that slot's samples
    t0 = min(x[0] for x in rows)
    for vm in {x[1] for x in rows}:
        slot = [int((ts - t0) // interval) for ts, vv, _ in rows if vv == vm]
        k = max(slot)
        vals = [c for (ts, vv, c), s in zip(rows, [int((x[0] - t0) // interval) for x in rows],
                                            strict=True) if vv == vm and s == k]  # fmt: skip
        assert r.present[vm, k]
        assert r.cpu_pct[vm, k] == pytest.approx(sum(vals) / len(vals), abs=1e-9)
