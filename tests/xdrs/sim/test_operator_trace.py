"""Operators' traces: idle is not gone, VMs leave when their samples stop, sizes from the trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collectors.replay.traces import Trace, read_csv
from xdrs.cli import main
from xdrs.sim.arrivals import ArrivalPlacer, first_placement, threshold
from xdrs.sim.engine import Engine
from xdrs.sim.policies import parse_policy
from xdrs.sim.run import simulate
from xdrs.sim.setup import PAPER_HOSTS, Datacenter, VmType, build_world

DC = Datacenter(n_hosts=4, host_types=(PAPER_HOSTS[1],), vm_types=(VmType("v", 1000.0, 512.0),))
CPU = np.array([[0.0, 0.0, 0.0, 30.0, 30.0], [40.0] * 5])


def run(trace: Trace, dc: Datacenter = DC) -> Engine:
    world = build_world(dc, trace)
    pol = parse_policy("lr-mmt-1.2")
    place = ArrivalPlacer(threshold(pol))
    return Engine(world, first_placement(pol, world), pol.decider(0), place=place).run()


def test_zero_demand_destroys_a_vm_only_in_paper_mode() -> None:
    paper = run(Trace("p", ("a", "b"), CPU, paper=True))
    assert paper.alive.tolist() == [False, True]  # CloudSim: gone at its first 0 %
    operator = run(Trace("o", ("a", "b"), CPU))
    assert operator.alive.tolist() == [True, True]  # idle, then busy again
    assert operator.energy_kwh > paper.energy_kwh


def test_vm_leaves_when_its_samples_stop(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    rows = [f"{t},stays,20" for t in range(0, 7200, 300)]
    rows += ["0,leaves,20", "300,leaves,20", f"{600 + 1800},late,10", "7200,late,10"]
    p.write_text("\n".join(rows) + "\n")
    tr = read_csv(p, max_gap=900)
    assert tr.vm_names == ("stays", "leaves", "late")
    world = build_world(DC, tr)
    assert world.present is not None and not world.drop_idle
    # "late" arrives at its first sample (slot 8); "leaves" is gone 900 s after its last
    assert world.arrival is not None and world.arrival.tolist() == [0, 0, 8]
    assert not world.present[1, 5:].any()
    eng = run(tr)
    assert eng.alive.tolist() == [True, False, False]  # "late" stopped again after 2,400 s
    assert eng.arrivals == 1 and eng.departures == 2


def test_vm_sizes_from_the_trace(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("timestamp,vm_id,cpu_pct,vcpus,vm_mhz,mem_mb\n0,big,50,4,10640,16384\n0,x,5,,,\n")
    tr = read_csv(p)
    dc = Datacenter(n_hosts=2, host_types=(PAPER_HOSTS[1],))
    with pytest.raises(ValueError, match="no host can take it"):
        simulate(tr, "lr-mmt-1.2", dc, label="t")  # 10,640 MHz on a 5,320 MHz paper host
    world = build_world(dc, tr)
    assert world.vm_mips.tolist() == [10640.0, 2000.0]  # "x": the paper's second VM type
    assert world.vm_ram.tolist() == [16384.0, 1740.0]
    assert np.array_equal(world.host_pe, world.host_mips)  # several vCPUs: no per-core cap


def test_cli_interval_sets_the_decision_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "t.csv"
    p.write_text("".join(f"{t},a,{10 + t % 7}\n" for t in range(0, 600, 20)))
    out = tmp_path / "m.json"
    code = main(["simulate", "--quiet", "--trace", str(p), "--policy", "lr-mmt-1.2",
                 "--hosts", "2", "--interval", "60", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    series = json.loads(out.read_text())["series"][0]
    assert np.diff(series["t"]).tolist() == pytest.approx([60.0] * 8)
    assert json.loads(out.read_text())["resampling"][str(p)]["merged"] == 20  # 3 per slot


def test_cli_hours_cuts_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "t.csv"
    p.write_text("".join(f"{t},a,{20 + t % 11}\n" for t in range(0, 3 * 3600, 300)))
    ends = []
    for extra in ([], ["--hours", "1"]):
        out = tmp_path / "m.json"
        code = main(["simulate", "--quiet", "--trace", str(p), "--policy", "npa",
                     "--hosts", "2", "--out", str(out), *extra])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        ends.append(max(json.loads(out.read_text())["series"][0]["t"]))
    assert ends == [pytest.approx(3 * 3600 - 299.9), pytest.approx(3600 - 299.9)]
