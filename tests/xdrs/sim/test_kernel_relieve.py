"""The compiled MMT overload phase (``kernel.relieve_mmt``) against the numpy path, with
hosts going into maintenance (emptied whatever their load) as well as overloaded ones."""

from __future__ import annotations

import numpy as np
import pytest

from collectors.replay.traces import Trace
from xdrs.sim.policies import parse_policy
from xdrs.sim.run import Result, simulate_world
from xdrs.sim.setup import Datacenter, build_world
from xdrs.sim.whatif import WhatIf


def _trace(seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    util = np.clip(rng.gamma(1.5, 0.15, (150, 48)), 0, 1).round(2)
    util[rng.random(util.shape) < 0.03] = 0.0
    return Trace("synthetic", tuple(f"v{i}" for i in range(150)), util * 100, 300.0, paper=True)


def _run(policy: str, mode: str, mp: pytest.MonkeyPatch, whatif: WhatIf) -> Result:
    mp.setenv("XDRS_SIM_KERNEL", mode)
    world = build_world(Datacenter(n_hosts=80), _trace(7))
    pol = parse_policy(policy)
    return simulate_world(
        world, pol.initial(world), policy, label="t", log_moves=True, whatif=whatif
    )


@pytest.mark.parametrize("policy", ["lr-mmt-1.2", "mad-mmt-2.5", "thr-mmt-0.8"])
def test_compiled_overload_phase_equals_numpy_with_maintenance(
    policy: str, compiled_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = WhatIf(maintenance=(0, 1, 2, 41, 42), maintenance_at=3000.0)
    a = _run(policy, compiled_mode, monkeypatch, w)
    b = _run(policy, "numpy", monkeypatch, w)
    assert a.moves == b.moves
    assert a.migrations == b.migrations > 0
    # the hosts in maintenance were emptied by the overload phase
    late = [m for m in a.moves if m[0] >= 3000.0]
    assert any(src in ("0", "1", "2", "41", "42") for _, _, src, _ in late)
    for k in ("energy_kwh", "slatah", "pdm", "overall_sla", "mean_load", "max_load"):
        assert getattr(a, k) == getattr(b, k), k
