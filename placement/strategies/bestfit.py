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
    """Free room of target hosts: allocation (CPU, memory, disk), then demand (CPU, memory)."""

    def __init__(self, ws: Workspace, targets: IntA, key: int) -> None:
        self.key = key
        self.room: FloatA = np.c_[ws.cap - ws.used, ws.dcap - ws.dem]
        self.need: FloatA = np.c_[ws.state.alloc, ws.state.demand[:, :2]]
        order = np.argsort(self.room[targets, key], kind="stable")
        self.hosts: IntA = targets[order]
        self.keys: FloatA = self.room[self.hosts, key]

    def add(self, h: int) -> None:
        """Make ``h`` a target."""
        self._insert(h)

    def place(self, v: int) -> int:
        """Host with the least key room that fits VM ``v`` (room taken), or -1."""
        need = self.need[v]
        i = int(np.searchsorted(self.keys, need[self.key] - 1e-9))
        while i < len(self.hosts):
            cand = self.hosts[i : i + WINDOW]
            ok = (self.room[cand] >= need).all(axis=1)
            if ok.any():
                j = i + int(ok.argmax())
                h = int(self.hosts[j])
                self.room[h] -= need
                self._reposition(j)
                return h
            i += WINDOW
        return -1

    def give_back(self, h: int, v: int) -> None:
        """Undo :meth:`place` of VM ``v`` on ``h``."""
        j = int(np.flatnonzero(self.hosts == h)[0])
        self.room[h] += self.need[v]
        self._reposition(j)

    def _reposition(self, j: int) -> None:
        """Move entry ``j`` to where its new key belongs, shifting the ones in between."""
        keys, hosts = self.keys, self.hosts
        h, k = hosts[j], self.room[hosts[j], self.key]
        if k <= keys[j]:
            t = int(np.searchsorted(keys[:j], k))
            keys[t + 1 : j + 1], hosts[t + 1 : j + 1] = keys[t:j].copy(), hosts[t:j].copy()
        else:
            t = j + int(np.searchsorted(keys[j + 1 :], k))
            keys[j:t], hosts[j:t] = keys[j + 1 : t + 1].copy(), hosts[j + 1 : t + 1].copy()
        keys[t], hosts[t] = k, h

    def _insert(self, h: int) -> None:
        k = self.room[h, self.key]
        j = int(np.searchsorted(self.keys, k))
        self.hosts = np.insert(self.hosts, j, h)
        self.keys = np.insert(self.keys, j, k)
