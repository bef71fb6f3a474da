"""Balancing candidates: the one-domain shortcut of ``pairs`` against the general path."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as hst

from placement import Capacity, ClusterState
from placement.strategies.candidates import pairs
from placement.workspace import Workspace
from tests.placement.clusters import clusters


@settings(max_examples=60, deadline=None)
@given(state=clusters(max_hosts=12), extremes=hst.integers(1, 6), limit=hst.integers(1, 8))
def test_one_domain_pairs_match_the_general_path(
    state: ClusterState, extremes: int, limit: int
) -> None:
    ws = Workspace(state, Capacity(0.9, 0.95))
    assume(ws.one_domain and len(ws.live_hosts) > 1)
    for lim in (None, limit):
        fast = pairs(ws, (0.5, 0.5), extremes, limit=lim)
        ws.one_domain = False
        general = pairs(ws, (0.5, 0.5), extremes, limit=lim)
        ws.one_domain = True
        np.testing.assert_array_equal(fast[0], general[0])
        np.testing.assert_array_equal(fast[1], general[1])
