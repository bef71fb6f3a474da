"""xdrs-demand: names, determinism, capacity of its plans, migration budget, overload answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.replay.traces import Trace
from placement import make_state
from placement.plan import Plan, Reason
from placement.state import ClusterState
from xdrs.cli import main
from xdrs.sim.demand import DemandArgs, DemandError, DemandPolicy, parse_demand
from xdrs.sim.engine import Context, Engine, Moves
from xdrs.sim.policies import PolicyError, parse_policy
from xdrs.sim.run import simulate_world
from xdrs.sim.setup import Datacenter, World, build_world
from xdrs.sim.whatif import WhatIf

EPS = 1e-6


def world(seed: int, n_vms: int = 60, n_hosts: int = 60, steps: int = 40) -> World:
    """Bursty synthetic utilisation: a slow wave per VM plus rare spikes."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(2, 30, (n_vms, 1))
    wave = 1 + 0.5 * np.sin(np.arange(steps) / rng.uniform(2, 8, (n_vms, 1)))
    spikes = (rng.random((n_vms, steps)) < 0.05) * rng.uniform(30, 70, (n_vms, steps))
    util = np.clip(base * wave + spikes, 0.5, 100.0)
    trace = Trace("synthetic", tuple(f"v{i}" for i in range(n_vms)), util, 300.0)
    return build_world(Datacenter(n_hosts=n_hosts), trace)


class Recorder:
    """Runs a DemandPolicy and keeps each decision's state, plan and kind."""

    def __init__(self, args: DemandArgs) -> None:
        self.policy = DemandPolicy(args, seed=3)
        self.seen: list[tuple[int, ClusterState, Plan]] = []

    def __call__(self, ctx: Context) -> Moves:
        moves = self.policy(ctx)
        assert self.policy.last_state is not None and self.policy.last_plan is not None
        self.seen.append((ctx.step, self.policy.last_state, self.policy.last_plan))
        return moves


def run(w: World, args: DemandArgs) -> Recorder:
    rec = Recorder(args)
    Engine(w, parse_policy("xdrs-demand").initial(w), rec).run()
    return rec


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("xdrs-demand", DemandArgs()),
        ("xdrs-demand:period=6,budget=10", DemandArgs(period=6, budget=10)),
        ("xdrs-demand:q=0.9,target=0.8,window=12", DemandArgs(q=0.9, target=0.8, window=12)),
        ("xdrs-demand:first=0,react=0.9", DemandArgs(first=0, react=0.9)),
    ],
)
def test_names(name: str, want: DemandArgs) -> None:
    assert parse_demand(name) == want
    assert parse_policy(name.upper()).strategy == name


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("xdrs-demand:periode=3", r"key=value with key in \['budget'"),
        ("xdrs-demand:period", "key=value"),
        ("xdrs-demand:period=1.5", "period='1.5' is not a number"),
        ("xdrs-demand:period=0", r"period must be an integer in 1\.\.10000, got 0"),
        ("xdrs-demand:budget=-1", "budget must be an integer"),
        ("xdrs-demand:q=nan", r"q must be a number in \(0, 1\], got nan"),
        ("xdrs-demand:target=1.5", r"target must be a number in \(0, 1\]"),
        ("xdrs-demand:react=inf", "react must be a number"),
        ("xdrs-demand:window=0", "window must be an integer"),
    ],
)
def test_bad_names_say_which_setting(name: str, match: str) -> None:
    with pytest.raises(DemandError, match=match):
        parse_demand(name)
    with pytest.raises(PolicyError, match=match):
        parse_policy(name)


def test_same_seed_same_run() -> None:
    w = world(1)
    pol = "xdrs-demand:period=4,budget=6"
    a, b = (
        simulate_world(w, parse_policy(pol).initial(w), pol, label="s", seed=5, log_moves=True)
        for _ in range(2)
    )
    assert a.moves == b.moves and a.moves
    assert (a.energy_kwh, a.migrations, a.slav) == (b.energy_kwh, b.migrations, b.slav)


def check_plan(state: ClusterState, plan: Plan, react: float) -> None:
    """Every move, applied in order, lands where the forecast fits under the planned
    capacity; a move between re-plans also lands where the measured demand fits."""
    place = state.placement.copy()
    for v, d in zip(plan.vm.tolist(), plan.dst.tolist(), strict=True):
        place[v] = d
        on = place == d
        assert state.alloc[on, 0].sum() <= state.alloc_cap[d, 0] + EPS
        if plan.strategy == "react":
            assert state.demand[on, 0].sum() <= react * state.phys[d, 0] + EPS
    # a consolidation move empties its host (a budget cut drops the moves that would not)
    packing = plan.src[plan.reason == int(Reason.CONSOLIDATION)]
    assert not np.isin(place, packing).any()


def check_run(rec: Recorder, args: DemandArgs) -> None:
    replans = 0
    for step, state, plan in rec.seen:
        check_plan(state, plan, args.react)
        if (step - 1) % args.period == 0:
            assert plan.strategy == "consolidate"
            limit = args.first if replans == 0 and args.first >= 0 else args.budget
            assert plan.n_moves <= (state.n_vms if replans == 0 and args.first < 0 else limit)
            replans += 1
        else:
            assert plan.strategy == "react"
    assert replans == -(-len(rec.seen) // args.period)


def test_plans_fit_and_keep_the_budget() -> None:
    args = DemandArgs(period=3, budget=2, first=5, target=0.8)
    rec = run(world(2), args)
    check_run(rec, args)
    moves = [p.n_moves for s, _, p in rec.seen if (s - 1) % 3 == 0]
    assert moves[0] == 5 and max(moves[1:]) <= 2  # the first re-plan used its budget


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 10**6),
    st.integers(1, 5),
    st.integers(0, 6),
    st.integers(-1, 30),
    st.sampled_from([0.5, 0.9, 1.0]),
    st.sampled_from([0.6, 0.8, 1.0]),
    st.sampled_from([0.8, 1.0]),
)
def test_property_plans_fit_and_keep_the_budget(
    seed: int, period: int, budget: int, first: int, q: float, target: float, react: float
) -> None:
    args = DemandArgs(period=period, budget=budget, first=first, q=q, window=6,
                      target=target, react=react)  # fmt: skip
    check_run(run(world(seed, n_vms=25, n_hosts=25, steps=14), args), args)


def test_an_overloaded_host_sheds_the_fewest_vms() -> None:
    # host 0 has 110 of 100 in measured demand: moving the 60 alone ends the overload
    one = np.ones(4)
    demand = np.array([60.0, 30.0, 20.0, 10.0])
    state = make_state(
        ["h0", "h1"], [f"v{i}" for i in range(4)],
        np.array([[100.0, 100.0, 1e12]] * 2),
        np.column_stack([demand, demand, one]),
        np.column_stack([demand, demand, one]),
        [0, 0, 0, 1],
        alloc_cap=np.array([[1000.0, 1000.0, 1e12]] * 2),
    )  # fmt: skip
    plan = DemandPolicy(DemandArgs()).react(state)
    assert plan.vm.tolist() == [0] and plan.dst.tolist() == [1]


def test_maintenance_empties_the_host_before_the_next_replan() -> None:
    w = world(4)
    pol = "xdrs-demand:period=100,budget=0"
    whatif = WhatIf(maintenance=(0, 1, 2), maintenance_at=1000.0)
    place = parse_policy(pol).initial(w)
    r = simulate_world(w, place, pol, label="m", whatif=whatif, log_moves=True)
    assert r.moves is not None
    # the only re-plan is at 300 s; the hosts go into maintenance at 1000 s: at the next
    # decision (1200 s) every VM leaves them, and nothing goes there afterwards
    place = place.copy()
    for t, vm, src, dst in r.moves:
        assert int(src) == place[int(vm[1:])]
        if t > 1000:
            assert dst not in {"0", "1", "2"}
        place[int(vm[1:])] = int(dst)
        if t > 1300:
            break
    assert (place[: w.n_vms] > 2).all()
    assert np.isin(parse_policy(pol).initial(w), [0, 1, 2]).any()  # there was something to do


def test_cli_runs_it_and_names_a_bad_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = tmp_path / "planetlab" / "d1"
    day.mkdir(parents=True)
    for i in range(6):
        (day / f"vm{i}").write_text("\n".join(str(5 + 7 * i + (t % 3)) for t in range(12)) + "\n")
    base = ["simulate", "--quiet", "--traces-dir", str(tmp_path), "--trace", "planetlab:d1",
            "--hosts", "6"]  # fmt: skip
    assert main([*base, "--policy", "xdrs-demand:period=2,budget=3"]) == 0
    out, _ = capsys.readouterr()
    assert "xdrs-demand:period=2,budget=3" in out
    assert main([*base, "--policy", "xdrs-demand:budget=lots"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("xdrs: error:") and "budget='lots' is not a number" in err
    assert "Traceback" not in err
