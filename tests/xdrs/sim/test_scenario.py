"""A two-host scenario whose migration, energy and SLA metrics are computed by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from collectors.replay.traces import Trace
from xdrs.sim.run import simulate
from xdrs.sim.setup import PAPER_HOSTS, Datacenter, VmType

G5 = PAPER_HOSTS[1]


def power(u: float) -> float:
    p = G5.power
    i = int(u * 10)
    return p[i] + (p[i + 1] - p[i]) * (u - i / 10) * 10


def test_one_consolidating_migration_by_hand() -> None:
    # two 1000-MIPS VMs at a constant 20 % and 30 %, each first on its own G5 host
    trace = Trace("t", ("x", "y"), np.array([[20.0] * 4, [30.0] * 4]), paper=True)
    dc = Datacenter(n_hosts=2, host_types=(G5,), vm_types=(VmType("v", 1000.0, 613.0),))
    r = simulate(trace, "thr-mmt-0.8", dc)
    # decisions at 300.1, 600.1, 900.1; at 300.1 host 0 (x, less loaded) is emptied
    assert r.migrations == 1
    d = 613 / (1_000_000 / 16_000)  # 9.808 s
    t = 5320.0
    energy = (
        power(200 / t) * d  # host 0 until x has left
        + power(320 / t) * d  # host 1 with y and 10 % of x while x migrates
        + power(500 / t) * (600.1 - (300.1 + d))
        + power(500 / t) * 300
    )  # the first interval counts 0: hosts start from 0 % in CloudSim
    assert r.energy_kwh == pytest.approx(energy / 3.6e6, rel=1e-12)
    # host 1 is short of x's 90 % while x migrates in; host 0 is active only until then
    assert r.slatah == pytest.approx(d / (600 + d), rel=1e-12)
    # x gets 90 % of 200 MIPS during the migration; requested totals over 600 s
    assert r.pdm == pytest.approx(20 * d / ((200 + 300) * 600), rel=1e-12)
    assert r.slav == pytest.approx(r.slatah * r.pdm)
    assert r.esv == pytest.approx(r.energy_kwh * r.slav)


def test_dvfs_energy_and_capped_host_by_hand() -> None:
    # a 2500-MIPS VM at 90 % cannot get 2250 MIPS from one 1860-MIPS core: SLA violation
    g4 = PAPER_HOSTS[0]
    trace = Trace("t", ("a",), np.array([[90.0] * 3]), paper=True)
    dc = Datacenter(n_hosts=1, host_types=(g4,), vm_types=(VmType("big", 1800.0, 870.0),))
    r = simulate(trace, "dvfs", dc)
    # decisions at 300.1 and 600.1: one counted interval at 1620 / 3720
    u = 1620 / 3720
    p = g4.power
    watts = p[4] + (p[5] - p[4]) * (u - 0.4) * 10
    assert r.energy_kwh == pytest.approx(watts * 300 / 3.6e6, rel=1e-12)
    assert r.migrations == 0 and r.slatah == 0.0


def test_vm_with_zero_demand_leaves_like_cloudsim() -> None:
    # CloudSim destroys a VM whose request is 0 at an update (it "completed"): b is gone at
    # 600.1 (samples 2 and 3 are 0) and its later 80 % never loads the host again
    b = [50.0, 50.0, 0.0, 0.0, 80.0, 80.0]
    trace = Trace("t", ("a", "b"), np.array([[50.0] * 6, b]), paper=True)
    dc = Datacenter(n_hosts=2, host_types=(G5,), vm_types=(VmType("v", 1000.0, 613.0),))
    r = simulate(trace, "dvfs", dc)
    assert r.series.t == pytest.approx([300.1, 600.1, 900.1, 1200.1, 1500.1])
    assert r.series.max_load[1:] == [500 / 5320] * 4
    assert r.series.max_load[0] > 999 / 5320
