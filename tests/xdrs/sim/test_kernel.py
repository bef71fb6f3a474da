"""The compiled kernels (xdrs.sim.kernel: numba's JIT and the ahead-of-time module of
xdrs.sim.aot) against the pure numpy reference path.

Both must give bit-identical results: the same moves at the same times and the same
metrics to the last bit, for every detector, on synthetic days and a real PlanetLab
morning.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import ModuleType

import numpy as np
import pytest

from collectors.replay.traces import Trace, load_trace, traces_root
from placement.overload import iqr_threshold, mad_threshold, trimmed_length
from placement.power import spec_power
from xdrs.sim import kernel, sums
from xdrs.sim.engine import Engine
from xdrs.sim.hosts import Entries, evaluate, evaluate_compiled, slots, utilisation
from xdrs.sim.policies import parse_policy
from xdrs.sim.run import Result, simulate_world
from xdrs.sim.setup import Datacenter, build_world

ROOT = traces_root()
POLICIES = ("thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2", "mad-rs-2.5", "lr-mu-1.2")


def _run(trace: Trace, dc: Datacenter, policy: str, mode: str, mp: pytest.MonkeyPatch) -> Result:
    mp.setenv("XDRS_SIM_KERNEL", mode)
    world = build_world(dc, trace)
    pol = parse_policy(policy)
    return simulate_world(world, pol.initial(world), policy, label="t", log_moves=True)


def _same(a: Result, b: Result) -> None:
    assert a.moves == b.moves
    assert a.migrations == b.migrations > 0
    for k in ("energy_kwh", "slatah", "pdm", "overall_sla", "mean_load", "max_load"):
        assert getattr(a, k) == getattr(b, k), k


def _synthetic(seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    util = np.clip(rng.gamma(1.5, 0.15, (200, 60)), 0, 1).round(2)
    util[rng.random(util.shape) < 0.03] = 0.0  # zero samples: dropped VMs, short histories
    return Trace("synthetic", tuple(f"v{i}" for i in range(200)), util * 100, 300.0, paper=True)


@pytest.mark.parametrize("policy", POLICIES)
def test_compiled_equals_numpy_on_synthetic_days(
    policy: str, compiled_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed, dc in ((1, Datacenter(n_hosts=200)), (2, Datacenter(n_hosts=200, memory_aware=True))):
        trace = _synthetic(seed)
        _same(
            _run(trace, dc, policy, compiled_mode, monkeypatch),
            _run(trace, dc, policy, "numpy", monkeypatch),
        )


@pytest.mark.parametrize("policy", ("iqr-mmt-1.5", "lr-mmt-1.2"))
def test_compiled_equals_numpy_on_a_planetlab_morning(
    policy: str, compiled_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = load_trace("planetlab:20110303", ROOT, ROOT.parent / "reference" / "cloudsim-vm-order")
    morning = replace(day, cpu_pct=day.cpu_pct[:, :50])
    dc = Datacenter()
    fast, ref = (
        _run(morning, dc, policy, compiled_mode, monkeypatch),
        _run(morning, dc, policy, "numpy", monkeypatch),
    )
    _same(fast, ref)


def test_robust_thresholds_match_the_numpy_detectors(compiled: ModuleType) -> None:
    rng = np.random.default_rng(3)
    hist = rng.random((400, 30)).round(3)
    cut = rng.integers(0, 31, 400)
    hist[np.arange(30)[None, :] >= cut[:, None]] = 0.0  # trailing zeros: lengths 0..30
    length = trimmed_length(hist)
    for code, ref in ((1, iqr_threshold), (2, mad_threshold)):
        want = ref(hist, length, 1.7)
        got = np.array([compiled.robust_threshold(row, code, 1.7) for row in hist])
        assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(want).any()
        ok = ~np.isnan(want)
        assert np.array_equal(got[ok], want[ok])


def _python_dot(x: list[float], c: list[float]) -> float:
    """The definition in plain Python floats (IEEE doubles, no FMA, no numpy, no BLAS)."""
    acc = 0.0
    for xi, ci in zip(x, c, strict=False):
        acc = acc + xi * ci
    return acc


def test_shared_dot_is_the_left_to_right_definition() -> None:
    rng = np.random.default_rng(4)
    hist = rng.random((300, 30)) * (rng.random((300, 30)) < 0.8)
    coef = rng.normal(size=10)
    want = [_python_dot(row.tolist(), coef.tolist()) for row in hist]
    assert np.array_equal(sums.dot(hist.T, coef), want)  # vectorised over hosts
    assert [sums.dot(row, coef) for row in hist] == want
    # the order shows at this size: the exactly rounded sum differs in some rows
    assert [math.fsum(row[:10] * coef) for row in hist] != want


def test_lr_terms_are_the_shared_dot_to_the_bit() -> None:
    rng = np.random.default_rng(4)
    hist = rng.random((2000, 30)) * (rng.random((2000, 30)) < 0.8)
    coef = rng.normal(size=(2, 10))
    f = np.zeros((12, 2000))
    for h in range(hist.shape[0]):
        kernel.lr_terms(f, hist, h, coef)
    assert np.array_equal(f[7], sums.dot(hist.T, coef[0]))
    assert np.array_equal(f[8], sums.dot(hist.T, coef[1]))


def test_compiled_seq_sum_is_the_left_to_right_definition() -> None:
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 7, 8, 9, 127, 128, 129, 1000):
        a = rng.random(n) * 1000.0
        want = 0.0
        for v in a.tolist():
            want = want + v
        assert kernel._seq_sum(a) == sums.seq_sum(a) == want, n
    rows = rng.random((50, 30))
    assert np.array_equal(sums.seq_sum(rows), np.cumsum(rows, axis=0)[-1])


def test_compiled_evaluate_matches_numpy_with_migrations_and_oversubscription(
    compiled: ModuleType,
) -> None:
    rng = np.random.default_rng(6)
    n_h, n_v = 40, 300
    mips = np.where(np.arange(n_h) % 2 == 0, 3720.0, 5320.0)
    pe = mips / 2
    host = rng.integers(0, n_h, n_v)
    in_mig = rng.random(n_v) < 0.1
    dest = rng.integers(0, n_h, n_v)
    flying = np.flatnonzero(in_mig)
    e = Entries(
        vm=np.concatenate([np.arange(n_v), flying]),
        host=np.concatenate([host, dest[flying]]),
        seq=rng.permutation(n_v + flying.size).astype(np.int64),
        incoming=np.concatenate([np.zeros(n_v, bool), np.ones(flying.size, bool)]),
    )
    req = rng.random(n_v) * 2500 * (rng.random(n_v) < 0.95)  # some over one core, some 0
    ref = evaluate(e, req, in_mig, mips, pe)
    got = evaluate_compiled(compiled, e, req, in_mig, mips, pe, slots(e.host, e.seq))
    assert (ref.avail[ref.rows] == 0).any() and ref.migrating_out.any()  # both cases exercised
    for name in ("util_mips", "req_mips", "alloc_mips", "avail", "alloc", "req", "migrating_out"):
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name


def test_compiled_power_is_utilisation_then_spec_power(compiled: ModuleType) -> None:
    rng = np.random.default_rng(8)
    n = 4000
    mips = np.where(np.arange(n) % 2 == 0, 3720.0, 5320.0)
    u = np.concatenate([rng.random(n - 1000) * 1.05, [0.0] * 200, [1.0] * 200,
                        1 + rng.random(600) * 0.02])  # fmt: skip
    used = u * mips
    table = np.sort(rng.random((n, 11)) * 100 + 80, axis=1)
    want_u = utilisation(used, mips)
    assert ((want_u == 1.0) & (used / mips != 1.0)).any()  # the (1, 1.01) rule is exercised
    got_u = np.empty(n)
    got = compiled.power_at(used, mips, table, got_u)
    assert np.array_equal(got_u, want_u)
    assert np.array_equal(got, spec_power(np.minimum(want_u, 1.0), table))


@pytest.mark.parametrize("history", [1, 3, 30])
def test_compiled_history_push_is_the_numpy_one(
    history: int, compiled_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = _synthetic(5)
    world = build_world(Datacenter(n_hosts=200), trace)
    engines = []
    for mode in (compiled_mode, "numpy"):
        monkeypatch.setenv("XDRS_SIM_KERNEL", mode)
        engines.append(Engine(world, parse_policy("lr-mmt-1.2").initial(world), None,
                              history=history))  # fmt: skip
    assert engines[0].kernel is not None and engines[1].kernel is None
    for k in range(trace.cpu_pct.shape[1]):  # ~3 % zero samples: those rows keep still
        req = engines[0].requests(300.0 * k + 0.1)
        for eng in engines:
            eng.push_history(req)
        assert np.array_equal(engines[0].vm_hist, engines[1].vm_hist), k
        assert np.array_equal(engines[0].vm_hist_len, engines[1].vm_hist_len), k
    assert (engines[1].vm_hist_len == history).any()  # full rows shifted too


def test_a_world_too_large_for_the_compiled_under_load_phase_gets_the_same_moves(
    compiled_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xdrs.sim import planning

    trace, dc = _synthetic(3), Datacenter(n_hosts=200)
    whole = _run(trace, dc, "lr-mmt-1.2", compiled_mode, monkeypatch)
    monkeypatch.setattr(planning, "UNDERLOAD_CELLS", 0)  # the Python loop around kernel.place
    _same(_run(trace, dc, "lr-mmt-1.2", compiled_mode, monkeypatch), whole)
    _same(_run(trace, dc, "lr-mmt-1.2", "numpy", monkeypatch), whole)
