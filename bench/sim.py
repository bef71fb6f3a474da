"""Simulator benchmark: xdrs's numbers beside CloudSim 3.0.3's, seconds per day, peak RSS.

``python -m bench.sim`` (from the repository root) writes ``bench/RESULTS-sim.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.sim_demand import keep_section
from collectors.replay.traces import Trace, load_trace, traces_root
from xdrs._io import atomic_write
from xdrs.sim.fast import kernel_module
from xdrs.sim.policies import PAPER_POLICIES
from xdrs.sim.run import Result, simulate

ROOT = traces_root()
ORDER = ROOT.parent / "reference" / "cloudsim-vm-order"
POLICIES = (*PAPER_POLICIES, "xdrs-consolidate", "xdrs-balance")
REF_DAY = "20110303"
# CloudSim 3.0.3 run here (issue 6): energy kWh, migrations, SLATAH %, PDM %, SLAV
CLOUDSIM: dict[str, tuple[float, int, float, float, float]] = {
    "dvfs": (764.96, 0, 0.0, 0.0, 0.0),
    "thr-mmt-0.8": (198.08, 27_728, 5.00, 0.071, 3.57e-5),
    "mad-mmt-2.5": (189.79, 27_781, 5.09, 0.070, 3.57e-5),
    "lr-mmt-1.2": (167.83, 27_649, 5.72, 0.075, 4.32e-5),
    "lrr-mmt-1.2": (167.83, 27_649, 5.72, 0.075, 4.32e-5),  # identical to LR in 3.0.3
}
CLOUDSIM_S, CLOUDSIM_GB = 36.0, 2.4  # one day of LR-MMT, issue 6
WEEK, WEEK_VMS = "week", 500  # the 7-day case of issue 13 (target <= 10 s)


def _day(day: str) -> Trace:
    return load_trace(f"planetlab:{day}", ROOT, ORDER)


def _week(n_vms: int = WEEK_VMS) -> Trace:
    """A 7-day trace of ``n_vms`` VMs: VM i's week is the i-th file (sorted names) of each
    of the first 7 PlanetLab days, one day after the other (2,016 samples of 300 s). It is
    simulated as an operator's trace (idle VMs stay), not by the paper's day rules."""
    days = sorted(p.name for p in (ROOT / "planetlab").iterdir() if p.is_dir())[:7]
    parts = [_day(d) for d in days]
    cpu = np.concatenate([t.cpu_pct[:n_vms] for t in parts], axis=1)
    names = tuple(f"vm{i:03d}" for i in range(cpu.shape[0]))
    return Trace(f"planetlab-week:{days[0]}+7d:{n_vms}", names, cpu)


def child(policy: str, day: str) -> None:
    """Run once in this fresh process; print seconds and peak RSS as JSON."""
    tr = _week() if day == WEEK else _day(day)
    r = simulate(tr, policy)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": r.seconds, "cpu_s": r.cpu_seconds, "rss_mib": rss,
                      "energy": r.energy_kwh}))  # fmt: skip


def timed(policy: str, day: str, repeat: int) -> dict[str, Any]:
    """``repeat`` timed runs in fresh processes after one untimed run (which fills numba's
    on-disk cache when the kernels are JIT-compiled: a fresh checkout without the
    ahead-of-time module compiles them once, ~5 s). Each timed run loads the kernels inside
    its time: the ahead-of-time module (``python -m xdrs.sim.aot build``, run by
    scripts/venv.sh) in a few ms, or else numba and its cached kernels (~0.45 s)."""
    runs = []
    for i in range(repeat + 1):
        out = subprocess.run(
            [sys.executable, "-m", "bench.sim", "--child", policy, day],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        if i:
            runs.append(json.loads(out.stdout))
    secs = [r["seconds"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    return {"median_s": statistics.median(secs), "all_s": secs,
            "median_cpu_s": statistics.median(cpu),
            "rss_mib": max(r["rss_mib"] for r in runs)}  # fmt: skip


def _fmt_ref(policy: str) -> list[str]:
    ref = CLOUDSIM.get(policy)
    if policy == "npa":
        return ["2,410.80", "0", "-", "-", "-"]
    if ref is None:
        return ["n/a"] * 5
    e, m, s, p, v = ref
    return [f"{e:,.2f}", f"{m:,}", f"{s:.2f}", f"{p:.3f}", f"{v:.2e}"]


def _fmt(r: Result) -> list[str]:
    return [f"{r.energy_kwh:,.2f}", f"{r.migrations:,}", f"{r.slatah * 100:.2f}",
            f"{r.pdm * 100:.3f}", f"{r.slav:.2e}"]  # fmt: skip


def _machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    kernel = kernel_module()
    impl = kernel.IMPL if kernel is not None else "numpy reference path (no numba)"
    git = ["git", "log", "-1", "--format=%h %s"]
    rev = subprocess.run(git, capture_output=True, text=True, check=False)
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; 1-minute load average "
        f"{os.getloadavg()[0]:.2f} when this report was written",
        f"- Python {platform.python_version()}, numpy {np.__version__}, {platform.system()} "
        f"{platform.release()}",
        f"- Code: `{rev.stdout.strip()}`; simulator: {impl}",
    ]


def report(timing: dict[str, Any], runs: list[Result], wall: float, days: list[str]) -> str:
    ref = [r for r in runs if r.trace.endswith(REF_DAY)]
    lines = [
        "# xdrs simulator vs CloudSim 3.0.3 (Beloglazov & Buyya 2012 setup)",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.sim` "
        "(repository root, `.venv/bin/python`).",
        "",
        "## Machine",
        "",
        *_machine(),
        "",
        "## Setup",
        "",
        "800 hosts (HP ML110 G4/G5 alternating), 4 EC2-like VM types in CloudSim's file order "
        "(`shared/reference/cloudsim-vm-order/`), PlanetLab traces, 300 s decisions, 24 h; "
        "CloudSim 3.0.3 accounting (see README, *What-if simulator*). CloudSim numbers: "
        "issue 6 (CloudSim 3.0.3 run on this kind of machine); LRR equals LR in 3.0.3.",
        "",
        f"## {REF_DAY}: xdrs | CloudSim",
        "",
        "| policy | energy kWh | migrations | SLATAH % | PDM % | SLAV | | CloudSim kWh "
        "| migr. | SLATAH % | PDM % | SLAV |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ref:
        lines.append("| " + " | ".join([r.policy, *_fmt(r), "", *_fmt_ref(r.policy)]) + " |")
    med = timing["median_s"]
    lines += [
        "",
        "## Speed and memory",
        "",
        f"- LR-MMT-1.2, {REF_DAY}, whole day (800 hosts, 1,052 VMs, 287 decisions): "
        f"median **{med:.2f} s** of {len(timing['all_s'])} runs in fresh processes "
        f"({', '.join(f'{s:.2f}' for s in timing['all_s'])}); target <= 0.7 s (issue 13): "
        f"**{'met' if med <= 0.7 else 'not met'}**; CPU time (median) "
        f"{timing['median_cpu_s']:.2f} s. CloudSim: {CLOUDSIM_S:.0f} s, "
        f"so {CLOUDSIM_S / med:.1f}x faster.",
        f"- LR-MMT-1.2 on a 7-day trace of {WEEK_VMS} VMs (the first {WEEK_VMS} files of the "
        "first 7 days, day after day, 2,016 samples; an operator's trace: idle VMs stay), "
        f"800 hosts: median **{timing['week']['median_s']:.2f} s** of "
        f"{len(timing['week']['all_s'])} runs in fresh processes "
        f"({', '.join(f'{s:.2f}' for s in timing['week']['all_s'])}); target <= 10 s: "
        f"**{'met' if timing['week']['median_s'] <= 10 else 'not met'}**.",
        f"- xdrs-demand (defaults), {REF_DAY}, whole day: median "
        f"**{timing['demand']['median_s']:.2f} s** of {len(timing['demand']['all_s'])} runs "
        f"in fresh processes ({', '.join(f'{s:.2f}' for s in timing['demand']['all_s'])}); "
        f"target <= 2 s: **{'met' if timing['demand']['median_s'] <= 2 else 'not met'}**.",
        f"- Peak RSS of such a process (interpreter, numpy, trace, run): "
        f"**{timing['rss_mib']:.0f} MiB** (CloudSim: {CLOUDSIM_GB} GB).",
        f"- All {len(days)} days x {len(POLICIES)} policies ({len(PAPER_POLICIES)} paper + 2 "
        f"xdrs) in one process: {wall:.0f} s wall; the {len(PAPER_POLICIES)} paper policies "
        f"alone: {sum(r.seconds for r in runs if r.policy in PAPER_POLICIES):.0f} s of "
        f"simulation, {sum(r.cpu_seconds for r in runs if r.policy in PAPER_POLICIES):.0f} s "
        "CPU (target <= 180 s).",
        "",
        "## Every day",
        "",
        "| day | VMs | policy | energy kWh | migrations | SLATAH % | PDM % | SLAV | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        day = r.trace.split(":")[-1]
        lines.append(f"| {day} | {r.vms} | {r.policy} | " + " | ".join(_fmt(r))
                     + f" | {r.seconds:.2f} |")  # fmt: skip
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """## Notes and differences

- NPA gives 2,410.80 kWh on every day: 800 hosts at full power over 287 intervals of 300 s.
- The CloudSim 3.0.3 rules that decide these numbers, all reproduced (README): decisions at
  300 k + 0.1 s with the trace interpolated there; energy is the trapezoid between host
  updates, 0 for a host idle at the start of an interval (so the first interval counts 0);
  migration completions are extra update points; the source host's utilisation counts a
  migrating VM at 100 %, the destination 10 %, and only the source writes the VM's state
  (90 % allocated, flagged as migrating); a VM whose request is exactly 0 at an update is
  destroyed for the rest of the day; memory and bandwidth are checked only when VMs are
  created (afterwards their requested RAM/BW are 0), so consolidation is CPU-only;
  PABFD scores power against the host's utilisation at the start of the decision.
- IQR-MMT-1.5 and the other days have no CloudSim reference in the issue; their numbers
  come from the same code path as the matched policies.
- The LR/LRR detector evaluates the least-squares prediction as a fixed linear form of
  the last 10 samples, which can differ from CloudSim's incremental `SimpleRegression`
  in the last bits; on 20110303 it changes nothing.
- Speed: CloudSim's decision is sequential by construction -- each PABFD placement sees
  the hosts changed by the previous one, and the under-load phase tries every active host
  in turn, all-or-nothing -- so a day is ~28,000 host searches plus ~12,000 host updates
  and ~2,400 whole-data-centre evaluations. In numpy each costs tens of calls (~1 us
  each), which set the time (3-4 s per LR-MMT day, IQR/MAD 5-7 s for their robust
  spreads). `xdrs/sim/kernel.py` compiles these steps with numba (one call per search,
  update or evaluation). Both paths share one float order, defined once in
  `xdrs/sim/sums.py`: sums and the LR terms left to right, each product and sum rounded
  on its own (no BLAS, no FMA, no pairwise sums), so every number here is bit-identical
  to the numpy reference path (`XDRS_SIM_KERNEL=numpy`) whichever kernel OpenBLAS picks
  (`tests/xdrs/sim/test_kernel.py` compares both move by move, and
  `tests/xdrs/sim/test_blas_independence.py` repeats that under OpenBLAS's Haswell and
  Sandybridge kernels; `python -m bench.sim_check` fingerprints all days x policies).
  The timed runs include loading the compiled kernels:
  the ahead-of-time module that `scripts/venv.sh` builds (`xdrs/sim/aot.py`, numba.pycc;
  a few ms, no numba import) or, without it, numba and its cached kernels (~0.45 s).
- xdrs-consolidate / xdrs-balance run the placement core on a ClusterState built at each
  decision. They keep memory headroom (4 GB hosts) and CPU demand under 80 % (consolidate)
  or spread load (balance), so they use more hosts and energy than the paper's CPU-only
  consolidation, with far fewer migrations and a lower SLAV.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim")
    ap.add_argument("--child", nargs=2, metavar=("POLICY", "DAY"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--days", default="all", help="'all' or a comma list")
    ap.add_argument("--out", type=Path, default=Path("bench/RESULTS-sim.md"))
    a = ap.parse_args(argv)
    if a.child:
        child(*a.child)
        return 0
    timing = timed("lr-mmt-1.2", REF_DAY, a.repeat)
    print(f"LR-MMT {REF_DAY}: {timing}", file=sys.stderr)
    timing["week"] = timed("lr-mmt-1.2", WEEK, a.repeat)
    print(f"LR-MMT {WEEK}: {timing['week']}", file=sys.stderr)
    timing["demand"] = timed("xdrs-demand", REF_DAY, a.repeat)
    print(f"xdrs-demand {REF_DAY}: {timing['demand']}", file=sys.stderr)
    all_days = sorted(p.name for p in (ROOT / "planetlab").iterdir() if p.is_dir())
    days = all_days if a.days == "all" else a.days.split(",")
    runs: list[Result] = []
    t0 = time.perf_counter()
    for day in days:
        tr = _day(day)
        for pol in POLICIES:
            r = simulate(tr, pol, label=f"planetlab:{day}")
            print(f"{day} {pol}: {r.energy_kwh:.2f} kWh {r.migrations} migr "
                  f"{r.seconds:.1f} s", file=sys.stderr)  # fmt: skip
            runs.append(r)
    wall = time.perf_counter() - t0
    # the xdrs-demand section is bench.sim_demand's: kept as it is
    atomic_write(a.out, keep_section(a.out, report(timing, runs, wall, days)).encode())
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
