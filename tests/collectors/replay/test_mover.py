"""The replay platform's timed mover: pre-copy duration, seeded failures, idempotent keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.events import Move, Recommendation
from collectors.replay import ReplayCollector
from collectors.replay.mover import MIB_PER_GBIT, LinkModel, TimedMover, migration_seconds

from .test_collector import ListSink, scenario, small_trace


class StepClock:
    """Platform time that advances only when slept on (single-threaded tests)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_without_dirtying_a_migration_is_setup_plus_one_copy():
    bw = 10 * MIB_PER_GBIT
    t, rounds = migration_seconds(4096, LinkModel(link_gbps=10, setup_s=1.0))
    assert t == pytest.approx(1.0 + 4096 / bw) and rounds == 2  # one copy, an empty stop


@given(st.floats(64, 1 << 20), st.floats(0, 2000), st.floats(0.1, 100))
def test_dirtying_costs_time_and_rounds_are_bounded(mem, dirty, gbps):
    clean = migration_seconds(mem, LinkModel(link_gbps=gbps))
    dirty_t = migration_seconds(mem, LinkModel(link_gbps=gbps, dirty_mib_s=dirty))
    assert dirty_t[0] >= clean[0] - 1e-9
    assert 1 <= dirty_t[1] <= LinkModel().max_rounds + 1


def test_a_guest_dirtying_faster_than_the_link_forces_stop_and_copy():
    t, rounds = migration_seconds(4096, LinkModel(link_gbps=1, dirty_mib_s=1e4, max_rounds=5))
    assert rounds == 6 and t > 5 * 4096 / MIB_PER_GBIT


def _one_move(c: ReplayCollector, key: str = "r/0") -> tuple[Recommendation, Move]:
    """A move of the first VM of cluster ``a`` (two hosts) to its other host."""
    j = next(j for j in range(len(c.vm_ids)) if c.hosts[int(c.place[j])].cluster == "a")
    src = c.hosts[int(c.place[j])].uuid
    dst = next(h.uuid for h in c.hosts if h.cluster == "a" and h.uuid != src)
    m = Move(key, c.vm_ids[j], src, dst, "imbalance")
    return Recommendation("r", "a", "t", "s", 0.0, 0, 0, [m]), m


@pytest.mark.parametrize(("rate", "status"), [(0.0, "ok"), (1.0, "failed")], ids=["ok", "fail"])
def test_a_move_takes_its_time_then_lands_or_fails(rate, status):
    c = ReplayCollector(scenario(), small_trace(), ListSink(), speed=0)
    clock = StepClock()
    mover = TimedMover(c, LinkModel(fail_rate=rate), clock, seed=1)
    rec, m = _one_move(c)
    r = mover.move(rec, m)
    assert r.status == status and clock.slept
    j = c.vm_index[m.vm]
    full = migration_seconds(float(c.alloc[j, 1]), LinkModel())[0]
    here = c.hosts[int(c.place[j])].uuid
    if status == "ok":
        assert clock.t == pytest.approx(full) and here == m.dst
    else:
        assert clock.t < full and here == m.src and r.error.startswith("MigrationFailed")
    assert mover.move(rec, m) == r and len(clock.slept) == 1  # a key is never applied twice


def test_failures_follow_the_rate_and_the_seed():
    def outcomes(seed):
        c = ReplayCollector(scenario(), small_trace(), ListSink(), speed=0)
        mover = TimedMover(c, LinkModel(fail_rate=0.3), StepClock(), seed=seed)
        out = []
        for i in range(200):
            rec, m = _one_move(c, f"r/{i}")
            out.append(mover.move(rec, m).status)
        return out

    a = outcomes(7)
    assert a == outcomes(7)
    assert 30 <= a.count("failed") <= 90  # 200 draws at 0.3


def test_a_refused_move_returns_at_once():
    c = ReplayCollector(scenario(), small_trace(), ListSink(), speed=0)
    clock = StepClock()
    rec, m = _one_move(c)
    wrong = Move("r/1", m.vm, m.dst, m.src, "imbalance")  # the VM is not on m.dst
    r = TimedMover(c, LinkModel(), clock).move(rec, wrong)
    assert r.status == "failed" and "not on the source" in r.error and clock.slept == []


@pytest.mark.parametrize("field", ["link_gbps", "stop_mib", "max_rounds", "fail_rate"])
def test_a_bad_model_names_its_field(field):
    with pytest.raises(ValueError, match=field):
        LinkModel(**{field: -1}).validate()
