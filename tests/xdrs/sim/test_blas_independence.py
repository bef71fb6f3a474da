"""The simulator's results do not depend on the machine's BLAS kernel or on FMA contraction.

OpenBLAS picks its kernel when numpy loads (``OPENBLAS_CORETYPE`` overrides the choice), so
each kernel gets its own Python process: the bit-for-bit tests of test_kernel.py run under
two kernels that sum differently (Haswell's ``ddot`` is a plain C loop, SkylakeX's fuses
multiply-adds). The compiled kernels are checked in freshly compiled machine code for
fused multiply-add instructions, which would round differently from the numpy path.
The policies with no compiled twin (MC selection, the xdrs-* strategies) and the placement
core's sums they rest on must give the same values to the bit under both kernels.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIT_FOR_BIT = "dot or seq_sum or lr"  # the LR terms, the shared sums and the LR-driven days
POLICIES = ["thr-mc-0.8", "lr-mc-1.2", "xdrs-demand", "xdrs-consolidate", "xdrs-balance"]

# prints OpenBLAS's kernel (numpy's bundled scipy-openblas, or a system OpenBLAS); the
# scripts run under a chosen kernel start with it
CORE_NAME = """
import ctypes
import numpy
libs = [l.split()[-1] for l in open("/proc/self/maps") if "openblas" in l.lower()]
name = b"?"
for path in dict.fromkeys(libs):
    lib = ctypes.CDLL(path)
    for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                "openblas_get_corename"):
        if hasattr(lib, sym):
            f = getattr(lib, sym)
            f.restype = ctypes.c_char_p
            name = f()
print("openblas core:", name.decode(), flush=True)
"""

# runs pytest with the remaining arguments in this same process
RUN_UNDER_KERNEL = """
import sys
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""

# SHA-1s of the values (not only the decisions, which flip rarely) that the placement
# core's sums give: MC's R^2 on random hosts, the balancing candidates' scores and gains,
# a balance plan; and whole simulations of the policies without a compiled twin. Each line:
# label, hash, and a count that shows the case did something.
FINGERPRINTS = """
import hashlib, sys
import numpy as np
import placement
from collectors.replay.traces import Trace
from placement import BalanceArgs, Capacity
from placement.selection import mc, r_squared
from placement.strategies import candidates as cand
from placement.workspace import Workspace
from xdrs.sim import policies
from xdrs.sim.run import simulate_world
from xdrs.sim.setup import Datacenter, build_world
from xdrs.synth import synth_cluster

def show(label, count, *values):
    h = hashlib.sha1()
    for v in values:
        is_array = isinstance(v, np.ndarray)
        h.update(np.ascontiguousarray(v).tobytes() if is_array else repr(v).encode())
    print(label, h.hexdigest(), count, flush=True)

rng = np.random.default_rng(0)
hists = [rng.random((int(rng.integers(2, 12)), 30)).round(2) for _ in range(200)]
r2 = np.concatenate([r_squared(h) for h in hists])
show("r_squared", int((r2 > 0).sum()), r2, [mc(h, np.ones(len(h))) for h in hists])

state = synth_cluster(300, 3000, seed=4, domain_size=100)
ws = Workspace(state, Capacity(0.9, 0.95))
w = (0.6, 0.4)
loads = ws.loads()
ps, pd = cand.pairs(ws, w, 8)
qs, qd = cand.pairs(ws, w, 8, aligned=False)
cp, vm = cand.cells(ws, qs)
g = cand.gains(ws, w, vm, qs[cp], qd[cp])
show("candidates", len(g), cand.weighted(loads, w), ps, pd, qs, qd, g)
plan = placement.run("balance", state, BalanceArgs(threshold=3))
show("balance_plan", len(plan.vm), plan.vm, plan.dst, plan.gain, plan.objective_after)

regressions = 0
def counted(history, ram):
    global regressions
    regressions += history.shape[1] > history.shape[0] > 1
    return mc(history, ram)
policies.mc = counted  # a spy: counts the calls that run a regression

util = np.clip(rng.gamma(0.5, 0.5, (300, 80)), 0, 1).round(2)  # bursty: every policy acts
trace = Trace("synthetic", tuple(f"v{i}" for i in range(300)), util * 100, 300.0, paper=True)
for policy in sys.argv[1:]:
    world = build_world(Datacenter(n_hosts=150, memory_aware=True), trace)
    r = simulate_world(world, policies.parse_policy(policy).initial(world), policy, label="t",
                       log_moves=True)
    metrics = (r.migrations, r.energy_kwh, r.slatah, r.pdm, r.mean_load, r.max_load)
    show(policy, r.migrations, r.moves, metrics)
print("mc_regressions", regressions)
"""

# compiles the kernels from scratch (a fresh cache: numba cannot show cached code) by
# running two tiny simulations, then lists the FMA instructions in every compiled function
SCAN_FOR_FMA = """
import re
import numpy as np
from numba import njit
from numba.core.registry import CPUDispatcher
from xdrs.sim import kernel
from xdrs.sim.policies import parse_policy
from xdrs.sim.run import simulate_world
from xdrs.sim.setup import Datacenter, build_world
from xdrs.sim.sums import dot
from collectors.replay.traces import Trace

def show(name, d):
    for sig in d.signatures:
        asm = d.inspect_asm(sig)
        fused = sorted(set(re.findall(r"\\bv?fn?m(?:add|sub)\\w*", asm)))
        print(name, len(asm), ",".join(fused) or "-")

rng = np.random.default_rng(1)
util = np.clip(rng.gamma(1.5, 0.15, (60, 30)), 0, 1).round(2)
trace = Trace("synthetic", tuple(f"v{i}" for i in range(60)), util * 100, 300.0, paper=True)
for policy in ("lr-mmt-1.2", "iqr-mmt-1.5"):
    world = build_world(Datacenter(n_hosts=60, memory_aware=True), trace)
    simulate_world(world, parse_policy(policy).initial(world), policy, label="t")
for name, d in sorted(vars(kernel).items()):
    if isinstance(d, CPUDispatcher):
        show(name, d)
control = njit(fastmath=True)(dot)  # contraction allowed: the scan must see it (last line)
control(np.ones(10), np.ones(10))
show("control", control)
"""


def _run(code: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO, env=os.environ | env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("core", ["Haswell", "Sandybridge"])
def test_bit_for_bit_tests_pass_under_openblas_kernel(core: str) -> None:
    kernel_tests = str(Path(__file__).with_name("test_kernel.py"))
    args = ["-q", "-p", "no:cacheprovider", kernel_tests, "-k", BIT_FOR_BIT]
    r = _run(CORE_NAME + RUN_UNDER_KERNEL, args, {"OPENBLAS_CORETYPE": core})
    out = r.stdout + r.stderr
    assert f"openblas core: {core}" in out, out[-3000:]
    assert r.returncode == 0, out[-3000:]
    passed = re.search(r"(\d+) passed", out)
    assert passed is not None and int(passed.group(1)) >= 6, out[-3000:]
    assert " failed" not in out and "skipped" not in out, out[-3000:]


def test_compiled_kernels_have_no_fused_multiply_add(tmp_path: Path) -> None:
    r = _run(SCAN_FOR_FMA, [], {"NUMBA_CACHE_DIR": str(tmp_path), "XDRS_SIM_KERNEL": "jit"})
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split() for line in r.stdout.splitlines()]
    control = rows.pop()
    cpu_fma = " fma " in Path("/proc/cpuinfo").read_text()
    assert control[0] == "control" and (control[2] != "-" or not cpu_fma), control
    names = {name for name, _, _ in rows}
    assert {"lr_terms", "_dot", "_seq_sum", "refresh", "create", "find_host"} <= names, rows
    assert all(int(size) > 1000 for _, size, _ in rows), rows  # real code, not the cache stub
    assert [(name, fused) for name, _, fused in rows if fused != "-"] == []


def test_placement_values_and_policies_are_the_same_under_two_openblas_kernels() -> None:
    lines = {}
    for core in ("Haswell", "Sandybridge"):
        r = _run(CORE_NAME + FINGERPRINTS, POLICIES, {"OPENBLAS_CORETYPE": core})
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        assert f"openblas core: {core}" in out, out[-3000:]
        lines[core] = [line.split() for line in r.stdout.splitlines()[1:]]
    haswell, sandybridge = lines["Haswell"], lines["Sandybridge"]
    labels = [row[0] for row in haswell]
    assert labels == ["r_squared", "candidates", "balance_plan", *POLICIES, "mc_regressions"]
    assert all(int(row[-1]) > 0 for row in haswell), haswell  # every case did something
    assert haswell == sandybridge
