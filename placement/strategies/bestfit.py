"""Best-fit bin packing over target hosts, with tentative placements that can be rolled back.

Targets are kept sorted by free room in the key resource, so the candidates (hosts whose
key room still holds the VM, tightest first) start at a bisection; a window of the next
hosts is checked against every resource at once. Among the hosts of the first window that
fit, the choice keeps the key resource and the second scarcest one in step: the host whose
room left in the two (each scaled by the targets' mean room at the start) differs least,
then the least key room. Pure best fit on one resource fills some hosts to the brim in
the other (CPU demand under a memory key) and strands their memory; keeping the two in step
lets consolidation come close to the lower bound. Placing and rolling back reposition one
host each. This is the per-move loop of consolidation: a few small array operations per VM
instead of a pass over all hosts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.workspace import Workspace

__all__ = ["BALANCE", "BestFit"]

WINDOW = 256  # hosts checked per step of the scan
BALANCE = 30.0  # weight of the two resources' difference of scaled room against key room
N_RES = 5  # allocation CPU, memory, disk; demand CPU, memory

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]


class BestFit:
    """Free room of target hosts: allocation (CPU, memory, disk), then demand (CPU, memory).

    ``room`` is indexed by host. ``hosts`` and ``sorted_room`` hold the targets in order of
    key room; ``sorted_room`` is (7, targets), so a window is a slice: the five resources,
    then the scaled key room and BALANCE times the scaled key room minus the scaled second.
    """

    def __init__(self, ws: Workspace, targets: IntA, key: int, second: int) -> None:
        self.key, self.second = key, second
        # room of every host when the index was built: what a host added later still has
        self._start: FloatA = np.c_[ws.cap - ws.used, ws.dcap - ws.dem]
        mean = self._start[targets].mean(axis=0) if len(targets) else np.ones(N_RES)
        self.scale: FloatA = 1.0 / np.maximum(mean, 1e-9)
        self.need: FloatA = self._extend(np.c_[ws.state.alloc, ws.state.demand[:, :2]])
        order = np.argsort(self._start[targets, key], kind="stable")
        self.hosts: IntA = targets[order]
        self.sorted_room: FloatA = np.ascontiguousarray(self._extend(self._start[self.hosts]).T)

    @property
    def room(self) -> FloatA:
        """(H, 5) room of every host: the targets' as placed so far, the others' at start."""
        room = self._start.copy()
        room[self.hosts] = self.sorted_room[:N_RES].T
        return room

    def _extend(self, rows: FloatA) -> FloatA:
        a = rows[:, self.key] * self.scale[self.key]
        b = rows[:, self.second] * self.scale[self.second]
        out: FloatA = np.c_[rows, a, BALANCE * (a - b)]
        return out

    @property
    def keys(self) -> FloatA:
        """Key room of the targets, ascending."""
        keys: FloatA = self.sorted_room[self.key]
        return keys

    def add(self, h: int) -> None:
        """Make ``h`` a target."""
        j = int(np.searchsorted(self.keys, self._start[h, self.key]))
        self.hosts = np.insert(self.hosts, j, h)
        col = self._extend(self._start[h][None, :])[0]
        self.sorted_room = np.insert(self.sorted_room, j, col, axis=1)

    def place(self, v: int) -> int:
        """A target that fits VM ``v`` (room taken; see the module docstring), or -1."""
        need = self.need[v]
        rs = self.sorted_room
        n = rs.shape[1]
        col = need[:N_RES, None]
        i = int(rs[self.key].searchsorted(need[self.key] - 1e-9))
        width = WINDOW
        while i < n:
            block = rs[:, i : i + width]
            ok = np.logical_and.reduce(block[:N_RES] >= col, axis=0)
            score = np.where(ok, block[N_RES] + np.abs(block[N_RES + 1] - need[N_RES + 1]), np.inf)
            j = int(score.argmin())
            if ok[j]:
                j += i
                h = int(self.hosts[j])
                rs[:, j] -= need
                self._reposition(j)
                return h
            i += width
            width = 4 * WINDOW
        return -1

    def give_back(self, h: int, v: int) -> None:
        """Undo :meth:`place` of VM ``v`` on ``h``."""
        j = int(np.flatnonzero(self.hosts == h)[0])
        self.sorted_room[:, j] += self.need[v]
        self._reposition(j)

    def _reposition(self, j: int) -> None:
        """Move entry ``j`` to where its new key belongs, shifting the ones in between."""
        rs, hosts = self.sorted_room, self.hosts
        keys = rs[self.key]
        k = keys[j]
        if j > 0 and k < keys[j - 1]:
            t = int(keys[:j].searchsorted(k, side="right"))
            col, h = rs[:, j].copy(), hosts[j]
            rs[:, t + 1 : j + 1] = rs[:, t:j].copy()
            hosts[t + 1 : j + 1] = hosts[t:j].copy()
        elif j + 1 < len(keys) and k > keys[j + 1]:
            t = j + int(keys[j + 1 :].searchsorted(k))
            col, h = rs[:, j].copy(), hosts[j]
            rs[:, j:t] = rs[:, j + 1 : t + 1].copy()
            hosts[j:t] = hosts[j + 1 : t + 1].copy()
        else:
            return
        rs[:, t], hosts[t] = col, h
