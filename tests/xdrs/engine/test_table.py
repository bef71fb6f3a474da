"""The engine's optional window-quantile demand, against a loop over each VM's samples."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.events import HostEvent, MetricBatch, VmEvent
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.engine.table import ClusterTable

from .test_engine import hosts, vms


def _ref(samples: list[float], window: int, q: float) -> float:
    """The ceil(q n)-th smallest of the last ``window`` samples (0 with none)."""
    s = sorted(samples[-window:])
    return s[max(math.ceil(q * len(s)), 1) - 1] if s else 0.0


# a step: ("sample", vm, cpu %) or ("delete", vm) or ("add", vm)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("sample"), st.integers(0, 5), st.floats(0.0, 100.0)),
        st.tuples(st.sampled_from(["delete", "add"]), st.integers(0, 5)),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 9), st.floats(0.05, 1.0))
def test_window_quantile_demand_follows_each_vms_last_samples(ops, window, q):
    t = ClusterTable("c", window=window, q=q)
    t.put_host(HostEvent("c", "h0", 16, 65536, 1000))
    seen: dict[str, list[float]] = {}
    for j in range(3):
        t.put_vm(VmEvent("c", f"v{j}", "h0", 2, 4096))
        seen[f"v{j}"] = []
    ts = 0.0
    for op in ops:
        vm = f"v{op[1]}"
        if op[0] == "add" and vm not in seen:
            t.put_vm(VmEvent("c", vm, "h0", 2, 4096))
            seen[vm] = []
        elif op[0] == "delete" and vm in seen:
            t.delete_vm(vm)
            del seen[vm]
        elif op[0] == "sample" and vm in seen:
            ts += 1.0
            t.absorb(MetricBatch("c", "h0", ts, 0, [vm], [op[2]], [100.0]))
            seen[vm].append(op[2] / 100.0 * 2)  # cores of a 2-vCPU VM
        got = dict(zip(t.vm_ids, t.cpu_demand().tolist(), strict=True))
        assert got.keys() == seen.keys()
        for v, samples in seen.items():
            assert got[v] == _ref(samples, window, q), (v, samples)


def test_without_a_window_the_demand_is_the_ewma():
    t = ClusterTable("c", alpha=0.5)
    t.put_host(HostEvent("c", "h0", 16, 65536, 1000))
    t.put_vm(VmEvent("c", "v", "h0", 2, 4096))
    for ts, pct in enumerate([100.0, 0.0], 1):
        t.absorb(MetricBatch("c", "h0", float(ts), 0, ["v"], [pct], [1.0]))
    assert t.cpu_demand().tolist() == [1.0]  # 2 cores, then half way to 0


def test_a_spiky_vm_counts_at_its_peaks_with_a_window():
    """Spikes every third sample: the EWMA sees about a third of them, the 0.95 quantile
    of the window the spike itself, so only the windowed engine calls the host overloaded."""

    def engine(window: int) -> Engine:
        e = Engine(EngineArgs(cooldown_s=0.0, alpha=0.3, demand_window=window))
        for ev in hosts(2) + vms(8, on=lambda j: "h0"):
            e.apply(ev)
        for k in range(12):
            cpu = [100.0 if k % 3 == 2 else 5.0] * 8
            e.apply(MetricBatch("c", "h0", float(k + 1), 0, [f"v{j}" for j in range(8)],
                                cpu, [100.0] * 8))  # fmt: skip
            e.apply(MetricBatch("c", "h1", float(k + 1), 0, [], [], []))
        return e

    ewma, windowed = engine(0), engine(12)
    cpu_ewma, _ = ewma.tables["c"].loads()
    cpu_win, _ = windowed.tables["c"].loads()
    assert cpu_win[0] == 1.0 and cpu_ewma[0] < 0.6  # 8 VMs x 2 cores on a 16-core host
    assert np.isclose(cpu_win[1], 0.0)
    assert windowed.due(100.0) == [("c", "overload")]
    assert ewma.due(100.0) != [("c", "overload")]
