"""Action lists (the output of ``drs-peer-cluster/1``): writing a plan, replaying a list.

Each migrate element carries the format's keys plus the xdrs extras ``reason``, ``gain``,
``cost_mib`` and, when waves are given, ``wave``; ``disable_host`` elements for the hosts
the plan releases follow the migrations.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from placement import ClusterState, Plan, Reason, Wave
from placement.constraints import EPS, host_totals
from xdrs._fields import show
from xdrs._io import atomic_write
from xdrs.errors import SnapshotError

__all__ = ["action_list", "replay_actions", "write_actions"]

IntA = NDArray[np.int64]
HOST_ACTIONS = ("disable_host", "enable_host")


def action_list(plan: Plan, state: ClusterState, waves: list[Wave] | None = None) -> list[Any]:
    """The plan as a JSON-ready action list, in execution order."""
    hid, vid = state.host_ids, state.vm_ids
    wave = np.full(plan.n_moves, -1, np.int64)
    for k, w in enumerate(waves or []):
        wave[w.start : w.stop] = k
    out: list[dict[str, Any]] = []
    rows = zip(plan.vm.tolist(), plan.src.tolist(), plan.dst.tolist(), plan.reason.tolist(),
               plan.gain.tolist(), plan.cost_mib.tolist(), wave.tolist(), strict=True)  # fmt: skip
    for v, s, d, why, gain, cost, w in rows:
        act = {"action": "migrate", "vm": vid[v], "source": hid[s], "destination": hid[d]}
        act |= {"reason": Reason(why).name.lower(), "gain": gain, "cost_mib": cost}
        if waves is not None:
            act["wave"] = w
        out.append(act)
    out.extend({"action": "disable_host", "host": hid[h]} for h in plan.release_hosts.tolist())
    return out


def write_actions(
    plan: Plan,
    state: ClusterState,
    path: str | os.PathLike[str],
    waves: list[Wave] | None = None,
) -> None:
    """Write the action list atomically (a temporary file renamed over ``path``)."""
    atomic_write(path, orjson.dumps(action_list(plan, state, waves), option=orjson.OPT_INDENT_2))


def replay_actions(state: ClusterState, actions: object, *, check_capacity: bool = False) -> IntA:
    """Replay an action list on ``state``; return the final placement.

    Each migration's ``source`` must be the VM's current host; a ``disable_host`` must name
    an empty host. With ``check_capacity``, no destination may exceed its allocation
    capacity after any step.

    Raises
    ------
    SnapshotError
        Naming the action and the field that is wrong.
    """
    if not isinstance(actions, list):
        raise SnapshotError(f"actions: expected an array, got {show(actions)[:40]}")
    r = _Replay(state, check_capacity)
    for i, act in enumerate(actions):
        if not isinstance(act, dict):
            raise SnapshotError(f"actions[{i}]: expected an object, got {show(act)}")
        kind = act.get("action")
        if kind == "migrate":
            r.migrate(i, act)
        elif kind in HOST_ACTIONS:
            r.host_action(i, act, kind)
        else:
            want = ", ".join(("migrate", *HOST_ACTIONS))
            raise SnapshotError(f"actions[{i}].action: expected one of {want}, got {show(kind)}")
    return r.place


class _Replay:
    def __init__(self, state: ClusterState, check_capacity: bool) -> None:
        self.state = state
        self.hosts = {u: i for i, u in enumerate(state.host_ids)}
        self.vms = {u: i for i, u in enumerate(state.vm_ids)}
        self.place = state.placement.copy()
        self.check = check_capacity
        self.used = host_totals(state.alloc, self.place, state.n_hosts)

    def _lookup(self, i: int, act: dict[str, Any], key: str, index: dict[str, int]) -> int:
        u = act.get(key)
        if not isinstance(u, str) or u not in index:
            what = "VM" if index is self.vms else "host"
            raise SnapshotError(f"actions[{i}].{key}: expected a known {what} uuid, got {show(u)}")
        return index[u]

    def migrate(self, i: int, act: dict[str, Any]) -> None:
        v = self._lookup(i, act, "vm", self.vms)
        s = self._lookup(i, act, "source", self.hosts)
        d = self._lookup(i, act, "destination", self.hosts)
        cur = int(self.place[v])
        if s != cur:
            now = self.state.host_ids[cur]
            raise SnapshotError(
                f"actions[{i}] (vm {act['vm']!r}).source: expected {now!r} (the VM's current "
                f"host), got {act['source']!r}"
            )
        alloc = self.state.alloc[v]
        self.used[s] -= alloc
        self.used[d] += alloc
        self.place[v] = d
        if self.check and (self.used[d] > self.state.alloc_cap[d] + EPS).any():
            raise SnapshotError(
                f"actions[{i}] (vm {act['vm']!r}).destination: host {act['destination']!r} "
                "exceeds its allocation capacity after this move"
            )

    def host_action(self, i: int, act: dict[str, Any], kind: str) -> None:
        h = self._lookup(i, act, "host", self.hosts)
        n = int((self.place == h).sum())
        if kind == "disable_host" and n:
            raise SnapshotError(
                f"actions[{i}].host: disable_host of {act['host']!r}, which still runs {n} VMs"
            )
