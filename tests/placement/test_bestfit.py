"""The sorted best-fit index against the obvious O(H) scan it replaces."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from placement import Capacity, ClusterState
from placement.strategies.bestfit import BestFit
from placement.workspace import Workspace
from tests.placement.clusters import clusters


def reference_best_fit(room: np.ndarray, need: np.ndarray, targets: np.ndarray, key: int) -> float:
    """Least key room among targets that fit ``need`` in every resource (inf if none)."""
    ok = (room[targets] >= need).all(axis=1)
    return float(room[targets[ok], key].min()) if ok.any() else np.inf


@settings(max_examples=80, deadline=None)
@given(state=clusters(max_hosts=12, max_vms=40))
def test_place_and_give_back_match_the_reference(state: ClusterState) -> None:
    ws = Workspace(state, Capacity(0.9, 0.95))
    targets = np.flatnonzero(np.arange(state.n_hosts) % 2 == 0)
    fit = BestFit(ws, targets, key=1)
    room = fit.room.copy()
    placed: list[tuple[int, int]] = []
    for v in range(state.n_vms):
        expect = reference_best_fit(room, fit.need[v], targets, 1)
        h = fit.place(v)
        if h < 0:
            assert expect == np.inf
            continue
        assert room[h, 1] == expect
        room[h] -= fit.need[v]
        placed.append((h, v))
        np.testing.assert_array_equal(fit.room, room)
        assert (np.diff(fit.keys) >= 0).all()
    for h, v in reversed(placed):
        fit.give_back(h, v)
    # rolled back: the room is what a fresh index sees on the untouched workspace
    np.testing.assert_allclose(fit.room, BestFit(ws, targets, key=1).room, atol=1e-6)
