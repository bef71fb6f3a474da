"""The simulator's results do not depend on the machine's BLAS kernel or on FMA contraction.

OpenBLAS picks its kernel when numpy loads (``OPENBLAS_CORETYPE`` overrides the choice), so
each kernel gets its own Python process: the bit-for-bit tests of test_kernel.py run under
two kernels that sum differently (Haswell's ``ddot`` is a plain C loop, SkylakeX's fuses
multiply-adds). The compiled kernels are checked in freshly compiled machine code for
fused multiply-add instructions, which would round differently from the numpy path.
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

# prints OpenBLAS's kernel (numpy's bundled scipy-openblas, or a system OpenBLAS), then
# runs pytest with the remaining arguments in this same process
RUN_UNDER_KERNEL = """
import ctypes, sys
import numpy, pytest
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
sys.exit(pytest.main(sys.argv[1:]))
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
    r = _run(RUN_UNDER_KERNEL, args, {"OPENBLAS_CORETYPE": core})
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
