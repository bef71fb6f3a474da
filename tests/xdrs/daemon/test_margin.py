"""A plan must beat the current state by a margin (``Limits.min_benefit``) before anything
moves; mandatory moves always pass (replay platform, ``sim.Bench``)."""

from __future__ import annotations

import time

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from collectors.events import Move, Recommendation
from xdrs.daemon.control import Control
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.exporter import DaemonMetrics
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy, PolicyFile

from .sim import Bench, spread_moves

FREE = Limits(vm_cooldown_s=0, host_hold_s=0, metric_age_s=1e9)  # the margin's default, 5 %


def _rec(moves: list[Move], before: float, after: float, rid: str = "r1") -> Recommendation:
    return Recommendation(rid, "c0", "imbalance", "balance", time.time(), before, after, moves)


def _moves(b: Bench, n: int = 2, reason: str = "imbalance") -> list[Move]:
    return [msgspec.structs.replace(m, reason=reason)
            for m in spread_moves(b.collector, "c0", n, "r1")]  # fmt: skip


def test_below_the_margin_every_move_is_skipped_with_the_reason_everywhere_it_shows():
    b = Bench(limits=FREE)
    registry = CollectorRegistry()
    DaemonMetrics(registry, lambda: b.daemon)
    assert 'xdrs_daemon_skipped_total{why="below_margin"} 0.0' in generate_latest(registry).decode()
    b.daemon.receive(_rec(_moves(b), 0.100, 0.096))  # 4 % better: under 5 %
    b.run_until_idle()
    assert b.mover.calls == []
    assert b.statuses() == {"r1/0": "skipped", "r1/1": "skipped"}
    why = b.journal[0].error
    assert why == "below-margin: benefit 0.004 is under 0.05 of the objective 0.1 (min_benefit)"
    assert b.daemon.counts.skipped_by == {"below_margin": 2}
    held = Control(lambda: b.daemon).held_back()["skipped"]  # the API's and the CLI's view
    assert sorted(h["key"] for h in held) == ["r1/0", "r1/1"] and held[0]["why"] == why
    text = generate_latest(registry).decode()
    assert 'xdrs_daemon_skipped_total{why="below_margin"} 2.0' in text


@pytest.mark.parametrize(("before", "after", "runs"), [
    (0.100, 0.094, True),  # 6 %
    (0.100, 0.095, True),  # exactly the margin
    (0.100, 0.0951, False),
    (0.100, 0.100, False),  # no benefit
    (0.100, 0.120, False),  # worse
    (0.0, 0.0, False),  # nothing to improve
    (12.0, 11.0, True),  # another objective's units (hosts): relative, 8 %
], ids=["above", "at", "just-below", "none", "worse", "zero", "hosts"])  # fmt: skip
def test_the_margin_is_relative_to_the_current_objective(before, after, runs):
    b = Bench(limits=FREE)
    b.daemon.receive(_rec(_moves(b, 1), before, after))
    b.run_until_idle()
    assert b.statuses()["r1/0"] == ("ok" if runs else "skipped")
    assert b.mover.calls == (["r1/0"] if runs else [])


@pytest.mark.parametrize("reason", ["maintenance", "rule", "capacity", "overload"])
def test_a_recommendation_with_a_mandatory_move_passes_below_the_margin(reason):
    """Its optional moves too: the plan is one sequence (``make_room`` beside a mandatory
    move is itself mandatory)."""
    b = Bench(limits=FREE)
    m0, m1 = _moves(b, 2)
    rec = _rec([msgspec.structs.replace(m0, reason=reason), m1], 0.100, 0.120)  # worse
    b.daemon.receive(rec)
    b.run_until_idle()
    assert b.statuses() == {"r1/0": "ok", "r1/1": "ok"}


def test_a_zero_margin_lets_every_plan_through():
    b = Bench(limits=Limits(vm_cooldown_s=0, host_hold_s=0, metric_age_s=1e9, min_benefit=0))
    b.daemon.receive(_rec(_moves(b, 1), 0.100, 0.100))
    b.run_until_idle()
    assert b.statuses() == {"r1/0": "ok"}


def test_below_the_margin_nothing_waits_for_approval_and_older_held_moves_are_superseded():
    b = Bench(limits=FREE, policy=Policy(default="manual"))
    moves = _moves(b, 2)
    b.daemon.receive(_rec(moves[:1], 0.2, 0.1, rid="r1"))
    assert b.statuses() == {"r1/0": "held"}
    later = [msgspec.structs.replace(moves[1], key="r2/0")]
    b.daemon.receive(_rec(later, 0.100, 0.099, rid="r2"))
    assert b.statuses() == {"r1/0": "skipped", "r2/0": "skipped"}
    assert b.daemon.held == {}
    assert b.daemon.counts.skipped_by == {"superseded": 1, "below_margin": 1}


def test_a_dry_run_says_the_recommendation_would_be_skipped_and_records_nothing():
    b = Bench(limits=FREE)
    lines: list[str] = []
    core = Rebalancer(b.mover, PolicyFile(), b.limits, b.picture, b.clock.monotonic, b.record,
                      dry_run=lines.append)  # fmt: skip
    core.receive(_rec(_moves(b, 2), 0.100, 0.099))
    assert lines == ["dry-run r1: cluster c0: would skip its 2 moves: below-margin: benefit "
                     "0.001 is under 0.05 of the objective 0.1 (min_benefit)"]  # fmt: skip
    assert b.journal == [] and b.mover.calls == []


def test_a_recommendation_delivered_again_after_a_restart_is_not_judged_twice():
    b = Bench(limits=FREE)
    rec = _rec(_moves(b, 2), 0.100, 0.099)
    b.daemon.receive(rec)
    history = list(b.journal)
    b.daemon = Rebalancer(b.mover, PolicyFile(), b.limits, b.picture, b.clock.monotonic,
                          b.record)  # fmt: skip
    b.daemon.restore(history, [rec])
    b.daemon.receive(rec)
    assert b.journal == history  # every key has its result: nothing recorded again


@given(st.one_of(st.floats(allow_nan=True), st.integers(-5, 5)))
def test_an_invalid_margin_is_refused_naming_it(value):
    ok = isinstance(value, int | float) and 0 <= value < 1
    try:
        Limits(min_benefit=value).validate()
    except ValueError as e:
        assert not ok and str(e).startswith("min_benefit: expected a number 0..1, got "), e
    else:
        assert ok
