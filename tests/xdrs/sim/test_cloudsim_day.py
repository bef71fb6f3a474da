"""The paper's setup on a real PlanetLab day against CloudSim 3.0.3's published outputs.

The reference values come from running CloudSim 3.0.3 here (issue 6), not from xdrs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from collectors.replay.traces import Trace, load_trace, traces_root
from xdrs.sim.engine import Context, Engine, Moves
from xdrs.sim.hosts import evaluate
from xdrs.sim.policies import optimize, parse_policy
from xdrs.sim.run import simulate
from xdrs.sim.setup import Datacenter, build_world

DAY = "20110303"
ROOT = traces_root()
ORDER = ROOT.parent / "reference" / "cloudsim-vm-order"

# The day itself is always there (the package ships it when ROOT lacks it). CloudSim numbers
# its VMs in the order its file system listed the trace files; that order is reference data
# of this workplace (shared/reference/cloudsim-vm-order), not shipped with the package, and
# the policies that depend on it can only be compared with CloudSim where it is present.
needs_cloudsim_order = pytest.mark.skipif(
    not (ORDER / f"{DAY}.txt").is_file(),
    reason=f"CloudSim's VM order for {DAY} not present under {ORDER} (reference data)",
)


@pytest.fixture(scope="module")
def day() -> Trace:
    return load_trace(f"planetlab:{DAY}", ROOT, ORDER if ORDER.is_dir() else None)


def test_npa_energy_is_cloudsims(day: Trace) -> None:
    assert round(simulate(day, "npa").energy_kwh, 2) == 2410.80


def test_npa_energy_is_workload_independent(day: Trace) -> None:
    shuffled = replace(day, cpu_pct=day.cpu_pct[::-1] * 0.5)
    assert round(simulate(shuffled, "npa").energy_kwh, 2) == 2410.80


@needs_cloudsim_order
def test_dvfs_energy_is_cloudsims(day: Trace) -> None:
    r = simulate(day, "dvfs")
    assert round(r.energy_kwh, 2) == 764.96
    assert r.migrations == 0 and r.slatah == 0.0


# energy kWh, migrations, SLATAH %, PDM %, SLAV as bench/RESULTS-sim.md prints them:
# CloudSim 3.0.3's outputs (issue 6) except IQR, which has no CloudSim reference and is
# pinned at xdrs's own committed numbers (a regression pin for the speed-ups)
PRINTED = {
    "thr-mmt-0.8": ("198.08", "27,728", "5.00", "0.071", "3.57e-05"),
    "iqr-mmt-1.5": ("193.63", "27,592", "5.02", "0.068", "3.42e-05"),
    "mad-mmt-2.5": ("189.79", "27,781", "5.09", "0.070", "3.57e-05"),
    "lr-mmt-1.2": ("167.83", "27,649", "5.72", "0.075", "4.32e-05"),
    "lrr-mmt-1.2": ("167.83", "27,649", "5.72", "0.075", "4.32e-05"),
}


@needs_cloudsim_order
@pytest.mark.parametrize("policy", sorted(PRINTED))
def test_migrating_policy_day_is_as_printed(day: Trace, policy: str) -> None:
    r = simulate(day, policy)
    got = (f"{r.energy_kwh:,.2f}", f"{r.migrations:,}", f"{r.slatah * 100:.2f}",
           f"{r.pdm * 100:.3f}", f"{r.slav:.2e}")  # fmt: skip
    assert got == PRINTED[policy]


def test_conservation_on_a_morning(day: Trace) -> None:
    """Every running VM on exactly one host at each decision; targets never over capacity."""
    morning = replace(day, cpu_pct=day.cpu_pct[:, :40])
    world = build_world(Datacenter(), morning)
    pol = parse_policy("lr-mmt-1.2")
    rng = np.random.default_rng(0)
    seen = {"moves": 0}

    def checked(ctx: Context) -> Moves:
        assert ctx.entries.incoming.sum() == 0  # all migrations done by the next decision
        vms = ctx.entries.vm
        assert np.array_equal(np.sort(vms), np.flatnonzero(ctx.alive))
        moves = optimize(ctx, pol, rng)
        host = ctx.host.copy()
        for v, d in moves:
            host[v] = d
        e = ctx.entries
        after = type(e)(vm=e.vm, host=host[e.vm], seq=e.seq, incoming=e.incoming)
        st = evaluate(after, ctx.req, np.zeros_like(ctx.alive), world.host_mips, world.host_pe)
        targets = np.unique([d for _, d in moves]).astype(np.int64)
        assert (st.alloc_mips[targets] <= world.host_mips[targets] + 1e-6).all()
        seen["moves"] += len(moves)
        return moves

    eng = Engine(world, pol.initial(world), checked).run()
    assert seen["moves"] == eng.migrations > 0
    assert not eng.f_vm and (eng.host >= 0).all() and (eng.host < world.n_hosts).all()
