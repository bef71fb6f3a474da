"""When an engine given no partition rejoins its group: after a wait that doubles, never
in the middle of a rebalance."""

from __future__ import annotations

from xdrs.engine.rejoin import Rejoin


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _given_none(r: Rejoin, clock: Clock, until: float) -> list[float]:
    """Each rejoin's time, the group giving nothing again at once each time."""
    out = []
    r.assigned(0)
    while clock.t < until:
        if r.due():
            out.append(clock.t)
            r.revoked()
            r.assigned(0)
        clock.t += 1.0
    return out


def test_an_engine_given_nothing_rejoins_after_waits_that_double_up_to_the_cap() -> None:
    clock = Clock()
    r = Rejoin(first_s=20.0, max_s=60.0, clock=clock)
    assert _given_none(r, clock, 300.0) == [20.0, 60.0, 120.0, 180.0, 240.0]
    assert r.count == 5


def test_partitions_or_a_rebalance_in_progress_mean_no_rejoin() -> None:
    clock = Clock()
    r = Rejoin(first_s=20.0, max_s=600.0, clock=clock)
    r.assigned(3)
    clock.t = 1000.0
    assert not r.due()
    r.revoked()  # a rebalance begun: nothing assigned, but not "given none"
    clock.t = 2000.0
    assert not r.due()
    assert _given_none(r, clock, 2100.0) == [2020.0, 2060.0]
    r.assigned(1)  # given partitions: the next emptiness starts from 20 s again
    clock.t = 3000.0
    assert _given_none(r, clock, 3030.0) == [3020.0]
