"""Plans: ordered moves with their reasons, benefit and cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

__all__ = ["Plan", "Reason"]

IntA = NDArray[np.int64]
FloatA = NDArray[np.float64]


class Reason(IntEnum):
    """Why a move is in the plan; mandatory reasons sort before optional ones."""

    RULE = 0
    MAINTENANCE = 1
    CAPACITY = 2
    OVERLOAD = 3
    IMBALANCE = 4
    CONSOLIDATION = 5
    MAKE_ROOM = 6


@dataclass(frozen=True, eq=False)
class Plan:
    """An ordered list of moves; replaying them in order keeps every step feasible.

    Attributes
    ----------
    strategy : str
    vm, src, dst : (M,) int64
        VM index, source and destination host index of each move, in execution order.
    reason : (M,) int64
        :class:`Reason` of each move.
    gain : (M,) float64
        Objective reduction credited to the move (imbalance units for balancing, hosts
        released for consolidation, 0 for mandatory moves).
    cost_mib : (M,) float64
        Memory to copy, MiB.
    objective_before, objective_after : float
        The strategy's objective on the input and after the whole plan.
    release_hosts : (K,) int64
        Hosts the plan empties and that may be powered off, in the order they become empty.
    unresolved : (U,) int64
        VMs that had to move (maintenance, rule, capacity) but found no feasible host.
    notes : tuple of str
        Human-readable remarks (why the strategy stopped, relaxed limits, ...).
    """

    strategy: str
    vm: IntA
    src: IntA
    dst: IntA
    reason: IntA
    gain: FloatA
    cost_mib: FloatA
    objective_before: float
    objective_after: float
    release_hosts: IntA = field(default_factory=lambda: np.zeros(0, np.int64))
    unresolved: IntA = field(default_factory=lambda: np.zeros(0, np.int64))
    notes: tuple[str, ...] = ()

    @property
    def n_moves(self) -> int:
        return len(self.vm)

    def final_placement(self, placement: IntA) -> IntA:
        """Placement after replaying every move on ``placement``."""
        out = placement.copy()
        # numpy does not promise which write wins for repeated indices: take each VM's last
        vm, idx = np.unique(self.vm[::-1], return_index=True)
        out[vm] = self.dst[::-1][idx]
        return out
