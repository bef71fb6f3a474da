"""What-if edits: maintenance empties hosts, demand scaling, host counts."""

from __future__ import annotations

import numpy as np
import pytest

from collectors.replay.traces import Trace
from xdrs.sim.run import simulate
from xdrs.sim.setup import PAPER_HOSTS, Datacenter, VmType
from xdrs.sim.whatif import WhatIf, WhatIfError, apply_whatif, parse_maintenance

G5 = PAPER_HOSTS[1]
DC = Datacenter(n_hosts=3, host_types=(G5,), vm_types=(VmType("v", 2000.0, 613.0),))


def test_parse_maintenance() -> None:
    assert parse_maintenance("0-2,5@1.5") == ((0, 1, 2, 5), 5400.0)
    for bad in ("0-2", "a@1", "1@-2", "@3"):
        with pytest.raises(WhatIfError):
            parse_maintenance(bad)


@pytest.mark.parametrize("policy", ["thr-mmt-0.8", "xdrs-consolidate"])
def test_maintenance_empties_the_hosts(policy: str) -> None:
    # three 2000-MIPS VMs at 60 %: 1200 MIPS each, one per host at first
    trace = Trace("t", ("a", "b", "c"), np.full((3, 8), 60.0))
    base = simulate(trace, policy, DC)
    w = WhatIf(maintenance=(0, 1), maintenance_at=900.0)
    r = simulate(trace, policy, DC, whatif=w)
    # from 900.1 on, hosts 0 and 1 carry nothing: one host holds all three VMs
    at = r.series.t.index(pytest.approx(1200.1))
    assert r.series.active[at:] == [1] * (len(r.series.t) - at)
    assert r.migrations >= 2 and r.max_load == pytest.approx(max(base.max_load, 3600 / 5320))


def test_scale_and_host_count() -> None:
    trace = Trace("t", ("a",), np.array([[50.0, 70.0]]))
    dc, t2 = apply_whatif(WhatIf(remove_hosts=1, add_hosts=3, scale=1.6), DC, trace)
    assert dc.n_hosts == 5
    assert t2.util.tolist() == [[0.8, 1.0]]  # capped at 100 %
    with pytest.raises(WhatIfError, match="leaves 0 hosts"):
        apply_whatif(WhatIf(remove_hosts=3), DC, trace)
