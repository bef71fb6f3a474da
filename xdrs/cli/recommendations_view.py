"""What ``xdrs recommendations`` prints, from the bus's records or the daemon's API alike.

:class:`Row` is one line of ``list``: the recommendation, its moves and held moves, the
objective before and after (the expected benefit), the memory its moves copy (the expected
cost, GiB), its age and why its moves wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.events import Recommendation
from xdrs.cli.api_client import Shown, Summary

if TYPE_CHECKING:
    from xdrs.daemon.approvals import Pending

__all__ = ["Row", "from_pending", "from_summary", "pending_shown", "shown", "table"]

HEADER = (f"{'id':<32} {'cluster':<16} {'trigger':<12} {'moves':>5} {'held':>4} "
          f"{'objective':>15} {'copy GiB':>8}  age   why")  # fmt: skip


@dataclass(frozen=True)
class Row:
    id: str
    cluster: str
    trigger: str
    moves: int
    held: int
    before: float
    after: float
    cost_mib: float
    ts: float
    why: str


def from_pending(p: Pending) -> Row:
    r = p.rec
    why = next((p.last[k].error for k in p.held), "")
    return Row(r.id, r.cluster, r.trigger, len(r.moves), len(p.held), r.objective_before,
               r.objective_after, sum(m.cost_mib for m in r.moves), r.ts, why)  # fmt: skip


def from_summary(s: Summary) -> Row:
    return Row(s.id, s.cluster, s.trigger, s.n_moves, len(s.held), s.objective_before,
               s.objective_after, s.cost_mib, s.ts, s.why)  # fmt: skip


def table(rows: list[Row], now: float) -> str:
    lines = [HEADER]
    for r in sorted(rows, key=lambda r: r.ts):
        lines.append(f"{r.id:<32} {r.cluster:<16} {r.trigger:<12} {r.moves:>5} {r.held:>4} "
                     f"{r.before:7.3f}->{r.after:<6.3f} {r.cost_mib / 1024:>8.1f} "
                     f"{_age(now - r.ts):>5}  {r.why}")  # fmt: skip
    if rows:
        lines.append(f"{len(rows)} recommendation(s), {sum(r.moves for r in rows)} move(s), "
                     f"{sum(r.held for r in rows)} held, "
                     f"{sum(r.cost_mib for r in rows) / 1024:.1f} GiB to copy")  # fmt: skip
    return "\n".join(lines)


def _head(r: Recommendation | Shown, cost_mib: float) -> str:
    return (f"{r.id}: cluster {r.cluster}, trigger {r.trigger}, strategy {r.strategy}, "
            f"objective {r.objective_before:.4f} -> {r.objective_after:.4f}, "
            f"{len(r.moves)} move(s), {cost_mib / 1024:.1f} GiB to copy")  # fmt: skip


def pending_shown(p: Pending) -> str:
    r = p.rec
    lines = [_head(r, sum(m.cost_mib for m in r.moves))]
    for m in r.moves:
        last = p.last.get(m.key)
        status = "" if last is None else f"{last.status}{': ' + last.error if last.error else ''}"
        lines.append(f"  {m.key:<36} {m.vm} {m.src} -> {m.dst}  {m.reason} gain {m.gain:g} "
                     f"{m.cost_mib:g} MiB wave {m.wave}  {status}")  # fmt: skip
    return "\n".join(lines)


def shown(s: Shown) -> str:
    lines = [_head(s, s.cost_mib)]
    for m in s.moves:
        status = f"{m.status}{': ' + m.why if m.why else ''}"
        lines.append(f"  {m.key:<36} {m.vm} {m.src} -> {m.dst}  {m.reason} gain {m.gain:g} "
                     f"{m.cost_mib:g} MiB wave {m.wave}  {status}")  # fmt: skip
    return "\n".join(lines)


def _age(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.0f}h"
