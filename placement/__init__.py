"""xdrs placement core: pure array code, no I/O.

Cluster state as structure-of-arrays, constraints as masks, objectives as scores, and
strategies with one signature ``plan(state, args, *, rng) -> Plan``.
"""

from placement.constraints import Capacity, reasons
from placement.objectives import Metrics, host_loads, imbalance, metrics
from placement.order import OrderArgs, Wave, order_plan
from placement.plan import Plan, Reason
from placement.rules import Rules
from placement.state import ClusterState, StateError, make_state
from placement.strategies import (
    STRATEGIES,
    BalanceArgs,
    ConsolidateArgs,
    EvacuateArgs,
    run,
)

__all__ = [
    "STRATEGIES",
    "BalanceArgs",
    "Capacity",
    "ClusterState",
    "ConsolidateArgs",
    "EvacuateArgs",
    "Metrics",
    "OrderArgs",
    "Plan",
    "Reason",
    "Rules",
    "StateError",
    "Wave",
    "host_loads",
    "imbalance",
    "make_state",
    "metrics",
    "order_plan",
    "reasons",
    "run",
]
