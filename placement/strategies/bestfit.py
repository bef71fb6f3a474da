"""Best-fit bin packing over target hosts, with tentative placements that can be rolled back.

Targets are kept sorted by free room in the key resource, so the best fit (least room that
still holds the VM) starts at a bisection; windows of the next hosts are then checked
against every resource at once. Placing and rolling back reposition one host each. This is
the per-move loop of consolidation: a few small array operations per VM instead of a pass
over all hosts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.workspace import Workspace

__all__ = ["BestFit"]

WINDOW = 256  # hosts checked per step of the scan

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]


class BestFit:
    """Free room of target hosts: allocation (CPU, memory, disk), then demand (CPU, memory).

    ``room`` is indexed by host; ``hosts``/``keys``/``sorted_room`` hold the targets in
    order of key room, the last as a (resources, targets) array so a window is a slice.
    """

    def __init__(self, ws: Workspace, targets: IntA, key: int) -> None:
        self.key = key
        self.room: FloatA = np.c_[ws.cap - ws.used, ws.dcap - ws.dem]
        self.need: FloatA = np.c_[ws.state.alloc, ws.state.demand[:, :2]]
        order = np.argsort(self.room[targets, key], kind="stable")
        self.hosts: IntA = targets[order]
        self.sorted_room: FloatA = np.ascontiguousarray(self.room[self.hosts].T)

    @property
    def keys(self) -> FloatA:
        """Key room of the targets, ascending."""
        keys: FloatA = self.sorted_room[self.key]
        return keys

    def add(self, h: int) -> None:
        """Make ``h`` a target."""
        j = int(np.searchsorted(self.keys, self.room[h, self.key]))
        self.hosts = np.insert(self.hosts, j, h)
        self.sorted_room = np.insert(self.sorted_room, j, self.room[h], axis=1)

    def place(self, v: int) -> int:
        """Host with the least key room that fits VM ``v`` (room taken), or -1."""
        need = self.need[v]
        rs = self.sorted_room
        n = rs.shape[1]
        i = int(np.searchsorted(rs[self.key], need[self.key] - 1e-9))
        col = need[:, None]
        width = WINDOW
        while i < n:
            ok = (rs[:, i : i + width] >= col).all(axis=0)
            if ok.any():
                j = i + int(ok.argmax())
                h = int(self.hosts[j])
                self.room[h] -= need
                rs[:, j] -= need
                self._reposition(j)
                return h
            i += width
            width = 4 * WINDOW
        return -1

    def give_back(self, h: int, v: int) -> None:
        """Undo :meth:`place` of VM ``v`` on ``h``."""
        j = int(np.flatnonzero(self.hosts == h)[0])
        self.room[h] += self.need[v]
        self.sorted_room[:, j] += self.need[v]
        self._reposition(j)

    def _reposition(self, j: int) -> None:
        """Move entry ``j`` to where its new key belongs, shifting the ones in between."""
        rs, hosts = self.sorted_room, self.hosts
        keys = rs[self.key]
        k = keys[j]
        if j > 0 and k < keys[j - 1]:
            t = int(np.searchsorted(keys[:j], k, side="right"))
            col, h = rs[:, j].copy(), hosts[j]
            rs[:, t + 1 : j + 1] = rs[:, t:j].copy()
            hosts[t + 1 : j + 1] = hosts[t:j].copy()
        elif j + 1 < len(keys) and k > keys[j + 1]:
            t = j + int(np.searchsorted(keys[j + 1 :], k))
            col, h = rs[:, j].copy(), hosts[j]
            rs[:, j:t] = rs[:, j + 1 : t + 1].copy()
            hosts[j:t] = hosts[j + 1 : t + 1].copy()
        else:
            return
        rs[:, t], hosts[t] = col, h
