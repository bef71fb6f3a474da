"""Whole-process time of ``xdrs plan``: what a user waits for, beside the planning alone.

Usage: ``python -m bench.cli [--repeat N] [--hosts H] [--vms V]``. Writes one snapshot of a
synthetic cluster (``xdrs.synth.synth_cluster(H, V, seed=0)``) to a temporary folder, then
times, each in a fresh subprocess, N times:

- ``python -c pass`` (the interpreter alone),
- ``python -c "import xdrs.cli"`` (what the command line costs before it does anything),
- ``xdrs plan --in SNAPSHOT --strategy S`` for balance and consolidate (the planning time
  is the one the command prints, ``planning time ms``).

Returns medians, minima and maxima, and the largest peak RSS of the children.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["measure_cli"]

STRATEGIES = ("balance", "consolidate")
HEAVY = ("kafka", "prometheus_client", "pyvmomi", "matplotlib", "numba")


def _xdrs() -> str:
    return str(Path(sys.executable).with_name("xdrs"))


def _timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, done.stdout


def _planning_ms(stdout: str) -> float:
    for line in stdout.splitlines():
        if line.startswith("planning time ms"):
            return float(line.split()[-1])
    raise ValueError("xdrs plan printed no 'planning time ms' line")


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _heavy_modules() -> list[str]:
    probe = f"import sys, xdrs.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found: list[str] = json.loads(out.stdout.replace("'", '"'))
    return found


def measure_cli(n_hosts: int = 1000, n_vms: int = 10000, repeat: int = 7) -> dict[str, Any]:
    """Time the interpreter, ``import xdrs.cli`` and ``xdrs plan`` in fresh processes."""
    with tempfile.TemporaryDirectory() as tmp:
        snap = str(Path(tmp) / "snapshot.json")
        subprocess.run(
            [_xdrs(), "plan", "--generate", f"{n_hosts}/{n_vms}", "--strategy", "evacuate",
             "--save-snapshot", snap],
            capture_output=True, check=True,
        )  # fmt: skip
        cases: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import xdrs.cli": [sys.executable, "-c", "import xdrs.cli"],
        }
        for s in STRATEGIES:
            cases[f"xdrs plan --strategy {s}"] = [_xdrs(), "plan", "--in", snap, "--strategy", s]
        walls: dict[str, list[float]] = {name: [] for name in cases}
        plans: dict[str, list[float]] = {name: [] for name in cases if "plan" in name}
        for _ in range(repeat):
            for name, cmd in cases.items():
                wall, out = _timed(cmd)
                walls[name].append(wall)
                if name in plans:
                    plans[name].append(_planning_ms(out) / 1000)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "hosts": n_hosts,
        "vms": n_vms,
        "repeat": repeat,
        "wall_s": {k: _stats(v) for k, v in walls.items()},
        "planning_s": {k: _stats(v) for k, v in plans.items()},
        "peak_rss_mib": rss,
        "heavy_modules_after_import": _heavy_modules(),
    }


def render_cli(r: dict[str, Any]) -> str:
    """Markdown section for ``bench/RESULTS.md``."""
    head = (
        f"Snapshot of {r['hosts']} hosts / {r['vms']} VMs (synth, seed 0) read with `--in`; "
        f"each row a fresh process, median of {r['repeat']} runs (min-max). Planning is the "
        "command's own `planning time ms`; the rest is interpreter start, imports, reading "
        "the snapshot, ordering waves and the report. Largest child peak RSS "
        f"{r['peak_rss_mib']:.0f} MiB. Heavy packages loaded by `import xdrs.cli`: "
        f"{', '.join(r['heavy_modules_after_import']) or 'none'} (of {', '.join(HEAVY)}).\n\n"
        "| command | whole process s | min-max s | planning s | share planning |\n"
        "|---|---|---|---|---|\n"
    )
    rows = []
    for name, w in r["wall_s"].items():
        p = r["planning_s"].get(name)
        plan = f"{p['median']:.3f}" if p else "-"
        share = f"{100 * p['median'] / w['median']:.0f} %" if p else "-"
        rows.append(
            f"| `{name}` | {w['median']:.3f} | {w['min']:.3f}-{w['max']:.3f} | {plan} | {share} |"
        )
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--vms", type=int, default=10000)
    opts = p.parse_args(argv)
    r = measure_cli(opts.hosts, opts.vms, opts.repeat)
    print(render_cli(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
