"""VMs that arrive and leave during a run on an operator's trace (never in paper mode)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay.traces import Trace, read_csv
from xdrs.cli import main
from xdrs.sim.arrivals import ArrivalPlacer, first_placement, threshold
from xdrs.sim.engine import Engine
from xdrs.sim.policies import parse_policy
from xdrs.sim.run import simulate
from xdrs.sim.setup import PAPER_HOSTS, Datacenter, VmType, build_world

DC = Datacenter(n_hosts=4, host_types=(PAPER_HOSTS[1],), vm_types=(VmType("v", 1000.0, 512.0),))


def csv_trace(tmp_path: Path, rows: list[str], max_gap: float = 900) -> Trace:
    p = tmp_path / "t.csv"
    p.write_text("\n".join(rows) + "\n")
    return read_csv(p, max_gap=max_gap)


def watched(trace: Trace, policy: str, dc: Datacenter = DC) -> tuple[Engine, list[np.ndarray]]:
    """The run, and which VMs ran after each decision."""
    world = build_world(dc, trace)
    pol = parse_policy(policy)
    seen: list[np.ndarray] = []
    eng = Engine(world, first_placement(pol, world), pol.decider(0),
                 place=ArrivalPlacer(threshold(pol)),
                 progress=lambda k, n: seen.append(eng.alive.copy()))  # fmt: skip
    return eng.run(), seen


@pytest.mark.parametrize("policy", ["npa", "thr-mmt-0.8", "lr-mmt-1.2", "xdrs-consolidate"])
def test_a_vm_arrives_at_its_first_sample(tmp_path: Path, policy: str) -> None:
    rows = [f"{t},early,30" for t in range(0, 7200, 300)]
    rows += [f"{t},late,40" for t in range(3000, 7200, 300)]
    eng, seen = watched(csv_trace(tmp_path, rows), policy)
    # decision k is at 300 k + 0.1 s; "late" has its first sample in slot 10 (3,000 s)
    assert [bool(a[1]) for a in seen] == [k >= 10 for k in range(1, len(seen) + 1)]
    assert eng.arrivals == 1 and eng.departures == 0 and not eng.waiting.any()
    assert 0 <= eng.host[1] < DC.n_hosts
    assert eng.series.active[0] == 1  # one host on before the arrival


def test_arrivals_avoid_hosts_in_maintenance(tmp_path: Path) -> None:
    rows = [f"{t},a,10" for t in range(0, 3600, 300)] + ["1500,b,10", "1800,b,10"]
    tr = csv_trace(tmp_path, rows)
    world = build_world(DC, tr)
    placer = ArrivalPlacer(None)  # first fit would take host 0
    free = np.zeros(DC.n_hosts, dtype=bool)
    host = np.array([0, -1])
    alive = np.array([True, False])
    assert placer(world, np.array([1]), host, alive, free).tolist() == [0]
    free[:2] = True
    assert placer(world, np.array([1]), host, alive, free).tolist() == [2]


def test_an_arrival_no_host_can_take_waits_and_is_counted(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("timestamp,vm_id,cpu_pct,mem_mb\n"
                 + "".join(f"{t},small,20,1024\n" for t in range(0, 3600, 300))
                 + "1200,huge,20,65536\n1500,huge,20,65536\n")  # fmt: skip
    r = simulate(read_csv(p), "lr-mmt-1.2", Datacenter(n_hosts=2, memory_aware=True), label="t")
    assert (r.arrivals, r.departures, r.waiting) == (0, 0, 1)
    assert "0 VMs arrived during the run, 0 left, 1 found no host" in r.churn()


def test_paper_mode_has_no_arrivals() -> None:
    cpu = np.array([[0.0, 0.0, 30.0, 30.0], [40.0] * 4])
    tr = Trace("p", ("a", "b"), cpu, paper=True)
    assert build_world(DC, tr).arrival is None
    r = simulate(tr, "lr-mmt-1.2", DC, label="p")
    assert (r.arrivals, r.departures, r.waiting) == (0, 0, 0) and r.churn() == ""


def test_cli_reports_arrivals_and_departures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "t.csv"
    rows = [f"{t},stays,20" for t in range(0, 7200, 300)]
    rows += ["0,leaves,20", "300,leaves,20"] + [f"{t},late{i},10" for i in range(3)
                                                 for t in range(1800, 7200, 300)]  # fmt: skip
    p.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.json"
    code = main(["simulate", "--quiet", "--trace", str(p), "--policy", "thr-mmt-0.8",
                 "--hosts", "4", "--max-gap", "600", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"thr-mmt-0.8 {p}: 3 VMs arrived during the run, 1 left, 0 found no host" in err
    run = json.loads(out.read_text())["runs"][0]
    assert (run["arrivals"], run["departures"], run["waiting"]) == (3, 1, 0)


@settings(max_examples=40, deadline=None)
@given(
    first=st.lists(st.integers(0, 20), min_size=1, max_size=8),
    length=st.lists(st.integers(1, 24), min_size=8, max_size=8),
    policy=st.sampled_from(["npa", "thr-mmt-0.8", "lr-mmt-1.2"]),
)
def test_every_vm_runs_exactly_while_it_has_samples(
    first: list[int], length: list[int], policy: str
) -> None:
    # VM i has samples in slots first[i] .. first[i] + length[i] - 1 (at most 24 slots)
    n, t = len(first), 24
    cpu = np.zeros((n, t))
    present = np.zeros((n, t), dtype=bool)
    for i, (f, m) in enumerate(zip(first, length, strict=False)):
        present[i, f : min(f + m, t)] = True
    cpu[present] = 25.0
    present[:, 0] |= ~present.any(axis=1)  # every VM has at least one sample
    cpu[present] = 25.0
    tr = Trace("fuzz", tuple(f"v{i}" for i in range(n)), cpu, present=present)
    eng, seen = watched(tr, policy, Datacenter(n_hosts=8, host_types=(PAPER_HOSTS[1],),
                                               vm_types=(VmType("v", 500.0, 256.0),)))  # fmt: skip
    start = present.argmax(axis=1)
    stop = t - 1 - present[:, ::-1].argmax(axis=1)  # last slot with a sample
    for k, alive in enumerate(seen, 1):
        expected = (start <= k) & (k <= stop)
        assert alive.tolist() == expected.tolist(), (k, start, stop)
    assert eng.arrivals == int((start > 0).sum())
    assert eng.departures == int((stop < t - 1).sum())
