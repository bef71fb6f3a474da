"""One simulation run: trace + data centre + policy -> metrics."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from xdrs.sim.engine import Engine, Series
from xdrs.sim.policies import PolicyError, parse_policy
from xdrs.sim.setup import Datacenter, build_world
from xdrs.sim.traces import Trace
from xdrs.sim.whatif import WhatIf

__all__ = ["Result", "simulate"]


@dataclass
class Result:
    """Metrics of one run, as CloudSim's ``Helper`` defines them (ratios, not %)."""

    trace: str
    policy: str
    hosts: int
    vms: int
    energy_kwh: float
    migrations: int
    slatah: float
    pdm: float
    slav: float
    esv: float
    overall_sla: float
    mean_active_hosts: float
    mean_load: float
    max_load: float
    seconds: float
    series: Series = field(repr=False, default_factory=Series)

    def row(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "series"}
        return d


def simulate(
    trace: Trace,
    policy: str,
    dc: Datacenter | None = None,
    *,
    label: str = "",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    whatif: WhatIf | None = None,
) -> Result:
    """Run ``policy`` over ``trace`` on ``dc`` (default: the paper's 800 hosts)."""
    dc = dc or Datacenter()
    pol = parse_policy(policy)
    world = build_world(dc, trace)
    blocked = None
    if whatif is not None and whatif.maintenance:
        if pol.kind in ("npa", "dvfs"):
            raise PolicyError(f"--maintenance: policy {pol.name} never migrates")
        blocked = partial(whatif.blocked, world.n_hosts)
    t0 = time.perf_counter()
    eng = Engine(
        world,
        pol.initial(world),
        pol.decider(seed),
        power_aware=pol.kind != "npa",
        start=dc.start,
        history=dc.history,
        progress=progress,
        blocked=blocked,
    ).run()
    secs = time.perf_counter() - t0
    slatah, pdm = eng.hosts_rec.slatah, eng.vms_rec.pdm
    s = eng.series
    on = [m for m, a in zip(s.mean_load, s.active, strict=True) if a]
    return Result(
        trace=label or trace.source,
        policy=pol.name,
        hosts=world.n_hosts,
        vms=world.n_vms,
        energy_kwh=eng.energy_kwh,
        migrations=eng.migrations,
        slatah=slatah,
        pdm=pdm,
        slav=slatah * pdm,
        esv=eng.energy_kwh * slatah * pdm,
        overall_sla=eng.vms_rec.overall,
        mean_active_hosts=sum(s.active) / len(s.active) if s.active else 0.0,
        mean_load=sum(on) / len(on) if on else 0.0,
        max_load=max(s.max_load, default=0.0),
        seconds=secs,
        series=s,
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
