"""Evacuate: empty the hosts in maintenance with the fewest moves (each of their VMs once)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placement.constraints import Capacity
from placement.objectives import host_loads, imbalance
from placement.plan import Plan
from placement.state import ClusterState
from placement.strategies.remediate import remediate
from placement.workspace import Workspace

__all__ = ["EvacuateArgs", "evacuate"]


@dataclass(frozen=True)
class EvacuateArgs:
    """Arguments of :func:`evacuate`.

    capacity : demand headroom destinations should keep (relaxed to allocation capacity
        when no host has headroom, and noted in the plan).
    weights : CPU and memory weight of the imbalance objective.
    """

    capacity: Capacity = Capacity(0.9, 0.95)
    weights: tuple[float, float] = (0.5, 0.5)

    def validate(self) -> None:
        self.capacity.validate()


def evacuate(state: ClusterState, args: EvacuateArgs, *, rng: np.random.Generator) -> Plan:
    """Move every VM off the hosts in maintenance (and fix any other hard violation)."""
    del rng  # deterministic
    ws = Workspace(state, args.capacity)
    live = state.host_ok
    before = imbalance(host_loads(state), args.weights, live)
    unresolved, notes = remediate(ws)
    after = imbalance(ws.loads(), args.weights, live)
    release = [
        int(h)
        for h in np.flatnonzero(state.maintenance & ~np.isin(np.arange(state.n_hosts), ws.place))
    ]
    return ws.to_plan("evacuate", before, after, release, unresolved, tuple(notes))
