"""Strategies: ``plan(state, args, *, rng) -> Plan``, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placement.plan import Plan
from placement.state import ClusterState
from placement.strategies.balance import BalanceArgs, balance
from placement.strategies.consolidate import ConsolidateArgs, consolidate
from placement.strategies.evacuate import EvacuateArgs, evacuate

__all__ = ["STRATEGIES", "BalanceArgs", "ConsolidateArgs", "EvacuateArgs", "register", "run"]

Strategy = Callable[..., Plan]
STRATEGIES: dict[str, tuple[Strategy, type[Any]]] = {}


def register(name: str, fn: Strategy, args_type: type[Any]) -> None:
    if name in STRATEGIES:
        raise ValueError(f"strategy {name!r} is already registered")
    STRATEGIES[name] = (fn, args_type)


register("balance", balance, BalanceArgs)
register("consolidate", consolidate, ConsolidateArgs)
register("evacuate", evacuate, EvacuateArgs)


def run(name: str, state: ClusterState, args: Any = None, *, seed: int = 0) -> Plan:
    """Validate ``args`` (default: the strategy's defaults) and run the strategy."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {sorted(STRATEGIES)}, got {name!r}")
    fn, args_type = STRATEGIES[name]
    args = args_type() if args is None else args
    if not isinstance(args, args_type):
        raise TypeError(f"{name}: expected {args_type.__name__}, got {type(args).__name__}")
    args.validate()
    return fn(state, args, rng=np.random.default_rng(seed))
