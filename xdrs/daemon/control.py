"""The operator's side of a running daemon, as plain JSON-ready values (the HTTP API's runtime).

:class:`Control` reads the :class:`~xdrs.daemon.core.Rebalancer` under its lock: the pending
recommendations with their moves, reasons, expected benefit and cost; one recommendation;
the reasons moves are held back; the automation policy. It takes decisions (approve or
reject one recommendation's moves, or several recommendations at once) and replaces the
policy. Every refusal is an :class:`ApiError` with an HTTP status and the reason, raised
before anything changed: an unknown recommendation (404), one with no move waiting for
approval, e.g. a replayed approval (409), a move key that is not its own or not held (409);
an approval whose placement changed is refused by the core (409), which drops those moves
with the reason, as the bus path does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from collectors.events import ActionResult, Approval, Recommendation
from xdrs.daemon.access import ApiError
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.policy import PolicyError, parse_policy, policy_object

__all__ = ["ApiError", "Control"]  # ApiError re-exported: it is the API's refusal

Decision = Literal["approve", "reject"]


class Control:
    """Views and decisions over ``core()`` (``None`` until the daemon has rebuilt its state).

    publish : called with every decision taken, under the core's lock (the daemon puts it on
        the recommendations topic, the record of who decided).
    """

    def __init__(self, core: Callable[[], Rebalancer | None],
                 publish: Callable[[Approval], None] | None = None,
                 wall: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._core, self.publish, self.wall = core, publish, wall

    def core(self) -> Rebalancer:
        c = self._core()
        if c is None:
            raise ApiError(503, "the daemon is still rebuilding its state from the topics")
        return c

    # ---- views ------------------------------------------------------------------------------

    def recommendations(self, everything: bool = False) -> list[dict[str, Any]]:
        """The recommendations with moves waiting for approval (``everything``: recent ones)."""
        core = self.core()
        with core.lock:
            recs = list(core.recent.values()) if everything else [r for r, _ in core.held.values()]
            return [self._summary(core, r) for r in sorted(recs, key=lambda r: r.ts)]

    def recommendation(self, rec_id: str) -> dict[str, Any]:
        core = self.core()
        with core.lock:
            rec = self._find(core, rec_id)
            out = self._summary(core, rec)
            out["moves"] = [self._move(core, rec, i) for i in range(len(rec.moves))]
            return out

    def held_back(self) -> dict[str, Any]:
        """Why moves are not running: awaiting approval, waiting behind a limit, skipped."""
        core = self.core()
        with core.lock:
            awaiting = [_line(core.last[m.key]) for r, keys in core.held.values()
                        for m in r.moves if m.key in keys and m.key in core.last]  # fmt: skip
            waiting = [{"key": k, "why": why} for k, why in sorted(core.executor.waiting.items())]
            skipped = [_line(r) | {"ts": r.ts} for r in reversed(core.skips)]
            return {"awaiting_approval": awaiting, "waiting": waiting, "skipped": skipped,
                    "policy_error": core.policy.error}  # fmt: skip

    def automation(self) -> dict[str, Any]:
        core = self.core()
        with core.lock:
            pf = core.policy
            path = None if pf.path is None else str(pf.path)
            return {"policy": policy_object(pf.current()), "file": path, "file_error": pf.error}

    # ---- changes ----------------------------------------------------------------------------

    def set_automation(self, obj: Any) -> dict[str, Any]:
        """Replace the automation policy with ``obj`` (the file's format), checked first."""
        try:
            policy = parse_policy(obj, "body")
        except PolicyError as e:
            raise ApiError(422, str(e)) from None
        core = self.core()
        with core.lock:
            core.policy.set(policy)
        return self.automation()

    def decide(self, rec_id: str, decision: Decision, keys: list[str], by: str) -> dict[str, Any]:
        """One recommendation's held moves (``keys``: all when empty) approved or rejected."""
        core = self.core()
        with core.lock:
            self._check(core, rec_id, keys)
            why = self._take(core, rec_id, decision, keys, by)
            if why:
                raise ApiError(409, why)
            return self._taken(core, rec_id, decision, keys)

    def decide_many(self, rec_ids: list[str] | None, decision: Decision,
                    by: str) -> dict[str, Any]:  # fmt: skip
        """Several recommendations (``None``: every pending one), each with all its held
        moves. Unknown or not pending ids refuse the whole request before anything changes;
        a refused approval (placement changed) does not stop the others."""
        core = self.core()
        with core.lock:
            ids = sorted(core.held) if rec_ids is None else list(dict.fromkeys(rec_ids))
            for rec_id in ids:
                self._check(core, rec_id, [])
            results = []
            for rec_id in ids:
                keys = sorted(core.held[rec_id][1])
                why = self._take(core, rec_id, decision, [], by)
                results.append({"id": rec_id, "moves": keys, "refused": why})
        refused = [r for r in results if r["refused"]]
        if refused:
            raise ApiError(409, f"{len(refused)} of {len(results)} refused; first: "
                                f"{refused[0]['id']}: {refused[0]['refused']}")  # fmt: skip
        return {"decision": decision, "results": results}

    # ---- helpers ----------------------------------------------------------------------------

    def _check(self, core: Rebalancer, rec_id: str, keys: list[str]) -> None:
        rec = self._find(core, rec_id)
        entry = core.held.get(rec_id)
        if entry is None:
            raise ApiError(409, f"recommendation {rec_id!r}: no move is waiting for approval "
                                f"(already decided, superseded or run)")  # fmt: skip
        own = {m.key for m in rec.moves}
        for k in keys:
            if k not in own:
                raise ApiError(409, f"move {k[:200]!r}: not a move of {rec_id!r}")
            if k not in entry[1]:
                raise ApiError(409, f"move {k!r}: not waiting for approval")

    def _take(self, core: Rebalancer, rec_id: str, decision: Decision, keys: list[str],
              by: str) -> str:  # fmt: skip
        rec = core.held[rec_id][0]
        a = Approval(rec_id, rec.cluster, decision, list(keys), by=by, ts=self.wall())
        why = core.decide(a)
        if not why and self.publish is not None:
            self.publish(a)
        return why

    def _taken(self, core: Rebalancer, rec_id: str, decision: Decision,
               keys: list[str]) -> dict[str, Any]:  # fmt: skip
        rec = core.recent[rec_id]
        chosen = set(keys) or {m.key for m in rec.moves}
        return {"id": rec_id, "decision": decision,
                "moves": [self._move(core, rec, i) for i, m in enumerate(rec.moves)
                          if m.key in chosen]}  # fmt: skip

    @staticmethod
    def _find(core: Rebalancer, rec_id: str) -> Recommendation:
        rec = core.recent.get(rec_id)
        if rec is None:
            raise ApiError(404, f"recommendation {rec_id[:200]!r}: not known to this daemon")
        return rec

    def _summary(self, core: Rebalancer, r: Recommendation) -> dict[str, Any]:
        held = sorted(core.held.get(r.id, (r, set()))[1])
        why = core.last[held[0]].error if held and held[0] in core.last else ""
        return {"id": r.id, "cluster": r.cluster, "trigger": r.trigger, "strategy": r.strategy,
                "ts": r.ts, "age_s": max(0.0, self.wall() - r.ts),
                "objective_before": r.objective_before, "objective_after": r.objective_after,
                "benefit": r.objective_before - r.objective_after,
                "cost_mib": sum(m.cost_mib for m in r.moves), "n_moves": len(r.moves),
                "held": held, "why": why}  # fmt: skip

    @staticmethod
    def _move(core: Rebalancer, r: Recommendation, i: int) -> dict[str, Any]:
        m = r.moves[i]
        last = core.last.get(m.key)
        waiting = core.executor.waiting.get(m.key, "")
        status = last.status if last is not None else "queued" if waiting else "none"
        return {"key": m.key, "vm": m.vm, "src": m.src, "dst": m.dst, "reason": m.reason,
                "gain": m.gain, "cost_mib": m.cost_mib, "wave": m.wave, "status": status,
                "why": last.error if last is not None and last.error else waiting}  # fmt: skip


def _line(r: ActionResult) -> dict[str, Any]:
    return {"recommendation": r.recommendation, "key": r.key, "vm": r.vm, "src": r.src,
            "dst": r.dst, "why": r.error}  # fmt: skip
