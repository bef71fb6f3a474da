"""The sorted best-fit index against the obvious O(H) scan it replaces."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from placement import Capacity, ClusterState
from placement.strategies.bestfit import BALANCE, BestFit
from placement.workspace import Workspace
from tests.placement.clusters import clusters

KEY, SECOND = 1, 3  # memory allocation, kept in step with CPU demand


def reference_score(room: np.ndarray, need: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The choice rule written out: scaled key room left plus BALANCE times the difference
    between the scaled key and second room left (constant terms dropped)."""
    a = room[:, KEY] * scale[KEY]
    b = room[:, SECOND] * scale[SECOND]
    d = need[KEY] * scale[KEY] - need[SECOND] * scale[SECOND]
    return a + np.abs(BALANCE * (a - b) - BALANCE * d)


def reference_best(room: np.ndarray, need: np.ndarray, targets: np.ndarray, scale: np.ndarray):
    """Lowest score among targets that fit ``need`` in every resource (inf if none); the
    test clusters have fewer hosts than a window, so every fitting target is a candidate."""
    ok = (room[targets] >= need).all(axis=1)
    if not ok.any():
        return np.inf
    return float(reference_score(room[targets[ok]], need, scale).min())


@settings(max_examples=80, deadline=None)
@given(state=clusters(max_hosts=12, max_vms=40))
def test_place_and_give_back_match_the_reference(state: ClusterState) -> None:
    ws = Workspace(state, Capacity(0.9, 0.95))
    targets = np.flatnonzero(np.arange(state.n_hosts) % 2 == 0)
    fit = BestFit(ws, targets, key=KEY, second=SECOND)
    room = fit.room.copy()
    placed: list[tuple[int, int]] = []
    for v in range(state.n_vms):
        need = fit.need[v, :5]
        expect = reference_best(room, need, targets, fit.scale)
        h = fit.place(v)
        if h < 0:
            assert expect == np.inf
            continue
        assert h in targets and (room[h] >= need).all()
        got = float(reference_score(room[h][None, :], need, fit.scale)[0])
        assert np.isclose(got, expect, rtol=1e-9, atol=1e-9)
        room[h] -= need
        placed.append((h, v))
        np.testing.assert_array_equal(fit.room, room)
        assert (np.diff(fit.keys) >= 0).all()
    for h, v in reversed(placed):
        fit.give_back(h, v)
    # rolled back: the room is what a fresh index sees on the untouched workspace
    np.testing.assert_allclose(
        fit.room, BestFit(ws, targets, key=KEY, second=SECOND).room, atol=1e-6
    )
