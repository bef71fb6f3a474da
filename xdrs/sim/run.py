"""One simulation run: trace + data centre + policy -> metrics."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collectors.replay.traces import Trace
from xdrs.sim.arrivals import ArrivalPlacer, first_placement, threshold
from xdrs.sim.engine import Engine, Series
from xdrs.sim.policies import PolicyError, parse_policy
from xdrs.sim.setup import Datacenter, World, build_world
from xdrs.sim.whatif import WhatIf

__all__ = ["Result", "simulate", "simulate_world"]

IntA = NDArray[np.int64]


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
    seconds: float  # wall clock
    series: Series = field(repr=False, default_factory=Series)
    moves: list[tuple[float, str, str, str]] | None = field(repr=False, default=None)
    cpu_seconds: float = 0.0  # CPU time of this process (less sensitive to a busy machine)
    # operator traces: VMs placed after the start, VMs gone when their samples stopped,
    # VMs whose first sample came but that no host could take by the end
    arrivals: int = 0
    departures: int = 0
    waiting: int = 0

    def churn(self) -> str:
        """One line on arrivals and departures ("" when there were none)."""
        if not (self.arrivals or self.departures or self.waiting):
            return ""
        return (f"{self.policy} {self.trace}: {self.arrivals} VMs arrived during the run, "
                f"{self.departures} left, {self.waiting} found no host")  # fmt: skip

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("series", "moves")}


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
    return simulate_world(
        world, first_placement(pol, world), policy, label=label or trace.name, seed=seed,
        progress=progress, whatif=whatif, start=dc.start, history=dc.history,
    )  # fmt: skip


def simulate_world(
    world: World,
    placement: IntA,
    policy: str,
    *,
    label: str,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    whatif: WhatIf | None = None,
    start: float = 0.1,
    history: int = 30,
    log_moves: bool = False,
) -> Result:
    """Run ``policy`` on ``world`` from ``placement``."""
    pol = parse_policy(policy)
    blocked = None
    if whatif is not None and whatif.maintenance:
        if pol.kind in ("npa", "dvfs"):
            raise PolicyError(f"--maintenance: policy {pol.name} never migrates")
        blocked = partial(whatif.blocked, world.n_hosts)
    t0, c0 = time.perf_counter(), time.process_time()
    eng = Engine(
        world,
        placement,
        pol.decider(seed),
        power_aware=pol.kind != "npa",
        start=start,
        history=history,
        progress=progress,
        blocked=blocked,
        place=ArrivalPlacer(threshold(pol)),
    ).run()
    res = _result(eng, world, pol.name, label, time.perf_counter() - t0, log_moves)
    res.cpu_seconds = time.process_time() - c0
    res.arrivals, res.departures = eng.arrivals, eng.departures
    if world.arrival is not None:
        last = int(eng.limit // world.interval)
        res.waiting = int((eng.waiting & (world.arrival <= last)).sum())
    return res


def _result(eng: Engine, world: World, policy: str, label: str, secs: float, log: bool) -> Result:
    slatah, pdm = eng.hosts_rec.slatah, eng.vms_rec.pdm
    s = eng.series
    on = [m for m, a in zip(s.mean_load, s.active, strict=True) if a]
    hn = world.host_names or tuple(str(i) for i in range(world.n_hosts))
    vn = world.names or tuple(str(i) for i in range(world.n_vms))
    moves = [(t, vn[v], hn[a], hn[b]) for t, v, a, b in eng.log] if log else None
    return Result(
        trace=label,
        policy=policy,
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
        moves=moves,
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
