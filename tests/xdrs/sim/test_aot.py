"""The ahead-of-time kernels (xdrs.sim.aot): used only when built from the current source,
loaded without numba, the same machine code rules as the JIT kernels (no FMA)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xdrs.sim import aot
from xdrs.sim.fast import KernelError, kernel_module

REPO = Path(__file__).resolve().parents[3]
SIM = Path(aot.__file__).parent

# a whole (short) simulation on the default implementation; prints what ran and whether
# numba was imported
RUN_WITHOUT_NUMBA = """
import sys
from collectors.replay.traces import Trace
from xdrs.sim.fast import kernel_module
from xdrs.sim.run import simulate
import numpy as np
rng = np.random.default_rng(1)
util = np.clip(rng.gamma(1.5, 0.15, (60, 24)), 0, 1).round(2) * 100
r = simulate(Trace("t", tuple(f"v{i}" for i in range(60)), util, 300.0, paper=True), "lr-mmt-1.2")
print(kernel_module().IMPL, "|", r.migrations, "|", "numba" in sys.modules)
"""


def test_the_module_name_follows_the_kernels_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("kernel.py", "sums.py"):
        shutil.copy(SIM / name, tmp_path / name)
    assert aot.module_name(tmp_path) == aot.module_name()
    for name in ("kernel.py", "sums.py"):
        (tmp_path / name).write_bytes((SIM / name).read_bytes() + b"\n# edited\n")
        assert aot.module_name(tmp_path) != aot.module_name(), name
        shutil.copy(SIM / name, tmp_path / name)
    before = aot.module_name(tmp_path)
    sigs = aot.SIGNATURES | {"create": aot.SIGNATURES["create"].replace("i8,i8", "i4,i8")}
    monkeypatch.setattr(aot, "SIGNATURES", sigs)
    assert aot.module_name(tmp_path) != before  # a changed signature is other source too


def test_a_module_built_from_other_source_is_not_loaded(
    aot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fresh,) = aot_dir.glob(aot.module_name() + "*")
    stale = tmp_path / fresh.name.replace(aot.module_name(), "xdrs_sim_kernels_0123456789abcdef")
    shutil.copy(fresh, stale)  # a real module, but named for other source
    assert aot.load(tmp_path) is None
    monkeypatch.setenv("XDRS_SIM_AOT_DIR", str(tmp_path))
    monkeypatch.setenv("XDRS_SIM_KERNEL", "aot")
    with pytest.raises(KernelError, match=r"XDRS_SIM_KERNEL=aot: no ahead-of-time kernels"):
        kernel_module()
    monkeypatch.setenv("XDRS_SIM_KERNEL", "numba")  # the default falls back to the JIT
    k = kernel_module()
    assert k is not None and k.IMPL.startswith("JIT-compiled")
    monkeypatch.setenv("XDRS_SIM_KERNEL", "fortran")
    with pytest.raises(KernelError, match=r"expected one of numba, jit, aot, numpy"):
        kernel_module()


def test_a_fresh_process_runs_on_the_built_module_without_importing_numba(
    aot_dir: Path,
) -> None:
    env = os.environ | {"XDRS_SIM_AOT_DIR": str(aot_dir)}
    env.pop("XDRS_SIM_KERNEL", None)
    runs = {}
    for mode in ("", "jit"):
        env["XDRS_SIM_KERNEL"] = mode
        r = subprocess.run([sys.executable, "-c", RUN_WITHOUT_NUMBA], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        runs[mode] = [part.strip() for part in r.stdout.split("|")]
    assert runs[""][0].startswith("ahead-of-time") and runs[""][2] == "False", runs
    assert runs["jit"][0].startswith("JIT-compiled") and runs["jit"][2] == "True", runs
    assert runs[""][1] == runs["jit"][1] != "0"  # the same migrations


def test_the_built_module_has_no_fused_multiply_add(aot_dir: Path) -> None:
    (so,) = aot_dir.glob(aot.module_name() + "*")
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert len(asm) > 100_000  # the kernels' code is there
    assert re.findall(r"\bv?fn?m(?:add|sub)\w*", asm) == []


def test_the_build_command_reports_an_up_to_date_module(
    aot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aot.main(["build", "--dir", str(aot_dir)]) == 0
    out = capsys.readouterr().out
    assert aot.module_name() in out and "present" in out
