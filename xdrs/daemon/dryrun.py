"""Dry run: what the daemon would do with a recommendation, as lines of text, doing nothing.

For each move, in plan order: its wave, VM and hosts, reason, gain and memory to copy; what
the automation policy says (``would run``, ``would wait for approval``, ``would skip:
never``); for a move that would run, whether the checks before a move pass now (``would
skip: stale: ...``, ``would wait: no metrics for host h yet``); and the limits that gate it
(per host on its source and destination, per cluster, in total, the start rate). The checks
run on a scratch copy of the picture in which every move that would run has run, so a move
that needs the room an earlier one makes is judged as it would be. Nothing is
recorded on the actions topic and the platform is never called, so a later real run sees
the recommendation as new.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from collectors.events import Move, Recommendation
from xdrs.daemon.limits import Gate
from xdrs.daemon.picture import Picture
from xdrs.daemon.policy import Policy, verdict

__all__ = ["describe"]


def describe(rec: Recommendation, policy: Policy, picture: Picture, gate: Gate,
             now: float, wall: Callable[[], float]) -> list[str]:  # fmt: skip
    """The dry run's lines for ``rec`` (a heading, then one line per move)."""
    lim = gate.limits
    lines = [f"dry-run {rec.id}: cluster {rec.cluster} ({policy.level(rec.cluster)}), "
             f"{len(rec.moves)} moves in {len({m.wave for m in rec.moves})} waves, objective "
             f"{rec.objective_before:.4f} -> {rec.objective_after:.4f}"]  # fmt: skip
    expired = wall() - rec.ts > lim.max_age_s
    scratch = Picture()
    scratch.seen_at = picture.seen_at
    if rec.cluster in picture.tables:
        scratch.tables[rec.cluster] = copy.deepcopy(picture.tables[rec.cluster])
    for m in rec.moves:
        what = _what(rec, m, policy, scratch, gate, now, expired)
        if what == "would run":
            scratch.tables[rec.cluster].move_vm(m.vm, m.src, m.dst)
        lines.append(f"  wave {m.wave} {m.key}: {m.vm} {m.src} -> {m.dst} ({m.reason}, gain "
                     f"{m.gain:.4g}, {m.cost_mib:.0f} MiB): {what}; limits: {_limits(gate, m)}, "
                     f"{lim.per_cluster} in {rec.cluster}, {lim.total} in all, rate "
                     f"{f'{lim.rate_per_s:g}/s' if lim.rate_per_s else 'none'}")  # fmt: skip
    return lines


def _what(rec: Recommendation, m: Move, policy: Policy, picture: Picture, gate: Gate,
          now: float, expired: bool) -> str:  # fmt: skip
    v = verdict(policy, rec, m)
    if v == "never":
        return "would skip: never: this VM is never moved"
    if v == "ask":
        return "would wait for approval"
    if expired:
        return f"would skip: expired: recommendation older than {gate.limits.max_age_s:g} s"
    why = gate.held(rec.id, m.vm, (m.src, m.dst), now) or picture.refuse(
        rec.cluster, m, [], now, gate.limits.metric_age_s
    )
    if why:
        return f"would skip: {why}"
    unseen = picture.unseen(rec.cluster, m)
    return f"would wait: {unseen}" if unseen else "would run"


def _limits(gate: Gate, m: Move) -> str:
    return f"{gate.limits.per_host} per host on {m.src} and {m.dst}"
