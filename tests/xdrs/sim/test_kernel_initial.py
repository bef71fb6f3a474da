"""The compiled initial placement (``kernel.initial``, JIT and ahead of time) against the
numpy reference ``policies.initial_numpy``: the same host for every VM, the same error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay.traces import Trace
from xdrs.sim.policies import PolicyError, initial_numpy, initial_placement
from xdrs.sim.setup import Datacenter, World, build_world


def _world(n_vms: int, n_hosts: int, seed: int) -> World:
    rng = np.random.default_rng(seed)
    util = rng.random((n_vms, 3)).round(2) * 100
    trace = Trace("t", tuple(f"v{i}" for i in range(n_vms)), util, 300.0, paper=True)
    return build_world(Datacenter(n_hosts=n_hosts), trace)


@pytest.mark.parametrize("mode", ["jit", "aot"])
@pytest.mark.parametrize("threshold", [None, 0.7, 0.8, 1.0])
def test_compiled_initial_placement_is_the_reference(
    mode: str, threshold: float | None, monkeypatch: pytest.MonkeyPatch, aot_dir: Path
) -> None:
    monkeypatch.setenv("XDRS_SIM_AOT_DIR", str(aot_dir))
    monkeypatch.setenv("XDRS_SIM_KERNEL", mode)
    for seed, (n_vms, n_hosts) in enumerate(((1052, 800), (300, 400), (40, 400))):
        w = _world(n_vms, n_hosts, seed)
        want = initial_numpy(w, threshold)
        got = initial_placement(w, threshold)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        assert np.unique(want).size > 1


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(1, 60), st.integers(0, 2**32 - 1),
       st.sampled_from([None, 0.5, 0.9]))  # fmt: skip
def test_the_same_vm_finds_no_host_in_both_paths(
    n_vms: int, n_hosts: int, seed: int, threshold: float | None
) -> None:
    w = _world(n_vms, n_hosts, seed)  # the default XDRS_SIM_KERNEL: a compiled path
    try:
        want: object = initial_numpy(w, threshold).tolist()
    except PolicyError as e:
        want = str(e)
    try:
        got: object = initial_placement(w, threshold).tolist()
    except PolicyError as e:
        got = str(e)
    assert got == want
