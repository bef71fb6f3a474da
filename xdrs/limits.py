"""Sizes the simulator accepts, declared once: the CLI checks them at parse time and the
simulator again at its door (a leaf module, so declaring ``xdrs simulate``'s options loads
nothing of the simulator).

Every array of a run is ``(H,)``, ``(H, 11)`` or ``(V, T)``; these bounds keep one run in a
few hundred MB. The trace's ``V x T`` bound is :data:`collectors.replay.resample.MAX_CELLS`.
"""

from __future__ import annotations

__all__ = ["MAX_HOSTS"]

MAX_HOSTS = 1_000_000  # hosts after --hosts/--add-hosts: (H, 11) power curves are 88 MB
