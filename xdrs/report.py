"""Text reports of the ``xdrs plan`` command: before/after table, reasons, explanations."""

from __future__ import annotations

from collections import Counter

import numpy as np
from numpy.typing import NDArray

from placement import Capacity, ClusterState, Metrics, Plan, Reason, Wave, metrics, reasons
from placement.constraints import (
    AFFINITY,
    ANTI_AFFINITY,
    HOST_RULE,
    MAINTENANCE,
    PINNED,
    REASON_BITS,
    SAME_HOST,
    describe,
)

__all__ = ["explain_lines", "summary_lines", "unresolved_lines"]

IntA = NDArray[np.int64]
TABLE = ("cpu_load_sd", "cpu_load_max", "ram_load_sd", "hosts_empty", "capacity_violations")
MAX_UNRESOLVED = 20
# why an unresolved VM cannot stay where it is (read on its own host), and why it cannot leave
_CAUSES = {
    MAINTENANCE: "its host is in maintenance",
    HOST_RULE: "breaks a VM-host must rule",
    ANTI_AFFINITY: "breaks an anti-affinity rule",
    AFFINITY: "breaks an affinity rule",
    PINNED: "pinned",
}


def _cell(value: float | int) -> str:
    return f"{value:>10d}" if isinstance(value, int) else f"{value:>10.4f}"


def summary_lines(
    state: ClusterState, plan: Plan, after: IntA, waves: list[Wave], plan_ms: float
) -> list[str]:
    """The before/after metrics table, the plan's size and cost, and moves by reason."""
    m0, m1 = metrics(state), metrics(state, after)
    lines = [f"{'metric':<22}{'before':>10}{'after':>10}"]
    lines += [f"{k:<22}{_cell(getattr(m0, k))}{_cell(getattr(m1, k))}" for k in TABLE]
    lines += _plan_lines(plan, waves, plan_ms, m0)
    by_reason = Counter(Reason(r).name.lower() for r in plan.reason.tolist())
    counts = ", ".join(f"{name} {n}" for name, n in sorted(by_reason.items())) or "none"
    lines.append(f"moves by reason: {counts}")
    lines += [f"note: {n}" for n in plan.notes]
    return lines


def _plan_lines(plan: Plan, waves: list[Wave], plan_ms: float, m0: Metrics) -> list[str]:
    duration = sum(w.duration_s for w in waves)
    return [
        f"{'moves':<22}{plan.n_moves:>20d}",
        f"{'moved GiB':<22}{plan.cost_mib.sum() / 1024:>20.1f}",
        f"{'waves':<22}{len(waves):>20d}",
        f"{'estimated duration s':<22}{duration:>20.1f}",
        f"{'planning time ms':<22}{plan_ms:>20.1f}",
        f"{'lower bound hosts':<22}{m0.lower_bound_hosts:>20d}",
    ]


def refusal_counts(bits: NDArray[np.uint32]) -> list[tuple[str, int]]:
    """(constraint name, number of hosts it refuses) for one VM's ``reasons`` row."""
    out = []
    for bit, name in REASON_BITS.items():
        n = int(np.count_nonzero(bits & bit))
        if n:
            out.append((name, n))
    return out


def unresolved_lines(
    state: ClusterState, plan: Plan, after: IntA, capacity: Capacity | None
) -> list[str]:
    """Each unresolved VM: why it must move, and how many hosts each constraint refuses.

    ``  v1 on h1 (its host is in maintenance; pinned): hosts refused by ...``
    """
    if not plan.unresolved.size:
        return ["unresolved VMs: none"]
    shown = plan.unresolved[:MAX_UNRESOLVED]
    bits = reasons(state, shown, after, capacity)
    lines = [f"unresolved VMs: {plan.unresolved.size}"]
    for v, row in zip(shown.tolist(), bits, strict=True):
        host = int(after[v])
        causes = "; ".join(text for bit, text in _CAUSES.items() if row[host] & bit)
        refused = ", ".join(f"{name} {n}" for name, n in refusal_counts(row))
        lines.append(
            f"  {state.vm_ids[v]} on {state.host_ids[host]}"
            f"{f' ({causes})' if causes else ''}: hosts refused by {refused}"
        )
    if plan.unresolved.size > MAX_UNRESOLVED:
        lines.append(f"  ... and {plan.unresolved.size - MAX_UNRESOLVED} more")
    return lines


def explain_lines(
    state: ClusterState, plan: Plan, after: IntA, vm: int, capacity: Capacity | None
) -> list[str]:
    """For one VM, every host of its domain and the constraints that refuse it after the plan."""
    host = int(after[vm])
    moves = [
        f"{state.host_ids[s]} -> {state.host_ids[d]} ({Reason(r).name.lower()})"
        for s, d, r in zip(
            plan.src[plan.vm == vm].tolist(),
            plan.dst[plan.vm == vm].tolist(),
            plan.reason[plan.vm == vm].tolist(),
            strict=True,
        )
    ]
    lines = [f"explain {state.vm_ids[vm]}: on {state.host_ids[host]} after the plan; "
             f"moves: {'; '.join(moves) or 'none'}"]  # fmt: skip
    bits = reasons(state, np.array([vm]), after, capacity)[0]
    for h in np.flatnonzero(state.domain == state.domain[host]).tolist():
        # on its own host the VM is already counted in the totals, so only say so
        why = ["current host"] if h == host else describe(int(bits[h]) & ~SAME_HOST) or ["ok"]
        lines.append(f"  {state.host_ids[h]:<24} {', '.join(why)}")
    return lines
