"""The planning copy: its fast LR path agrees with the general detector kernel, and its
in-place updates agree with recomputing a host from scratch."""

from __future__ import annotations

import numpy as np

from collectors.replay.traces import Trace
from placement.overload import overloaded, trimmed_length
from xdrs.sim.engine import Context, Engine, Moves
from xdrs.sim.planning import Planning
from xdrs.sim.policies import optimize, parse_policy
from xdrs.sim.setup import Datacenter, build_world


def _world() -> tuple[Trace, Datacenter]:
    rng = np.random.default_rng(5)
    util = np.clip(rng.gamma(1.5, 0.12, (150, 40)), 0, 0.99).round(2)
    trace = Trace("synthetic", tuple(f"v{i}" for i in range(150)), util * 100, 300.0, paper=True)
    return trace, Datacenter(n_hosts=100)


def test_fast_lr_matches_kernel_and_updates_match_refresh() -> None:
    trace, dc = _world()
    world = build_world(dc, trace)
    pol = parse_policy("lr-mmt-1.2")
    rng = np.random.default_rng(0)
    checked = {"with": 0, "hosts": 0}

    def decide(ctx: Context) -> Moves:
        p = Planning(ctx, ("lr", 1.2))
        hosts = np.arange(world.n_hosts)
        util = p.reqsum / world.host_mips
        ahead = p.steps_ahead(hosts, p.max_ram)
        want = overloaded("lr", 1.2, p.hist, trimmed_length(p.hist), util, steps_ahead=ahead)
        assert np.array_equal(p.overloaded(hosts), want)
        checked["hosts"] += int(want.sum())
        for v in rng.choice(np.flatnonzero(ctx.alive), 5, replace=False):
            h2 = p.hist + p.terms[v] / world.host_mips[:, None]
            u2 = (p.reqsum + p.req[v]) / world.host_mips
            a2 = p.steps_ahead(hosts, np.maximum(p.max_ram, world.vm_ram[v]))
            want2 = overloaded("lr", 1.2, h2, trimmed_length(h2), u2, steps_ahead=a2)
            assert np.array_equal(p.overloaded_with(int(v), hosts), want2)
            checked["with"] += int(want2.sum())
        # create in place == recompute from the list
        h = int(np.argmax(p.alloc))
        v = int(np.flatnonzero(ctx.alive & (ctx.host != h))[0])
        p.create(h, v)
        fast = (p.alloc[h], p.avail[h], p.reqsum[h], p.hist[h].copy(), p.lr_a[h], p.len10[h])
        p.refresh(h)
        slow = (p.alloc[h], p.avail[h], p.reqsum[h], p.hist[h], p.lr_a[h], p.len10[h])
        for a, b in zip(fast, slow, strict=True):
            assert np.array_equal(a, b)
        return optimize(ctx, pol, rng)

    Engine(world, pol.initial(world), decide).run()
    assert checked["hosts"] > 0 and checked["with"] > 0  # both outcomes were exercised
