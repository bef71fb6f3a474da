"""Benchmark the placement strategies on synthetic clusters and write ``bench/RESULTS.md``.

Usage: ``python -m bench.run [--quick] [--repeat N] [--out bench/RESULTS.md]``. Each cluster
size runs in its own subprocess (``--size H V``), so its peak RSS is that size's alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import cpu_times, render, revision

SIZES = ((10, 100), (50, 500), (200, 2000), (1000, 10000), (10000, 100000))
QUICK_LIMIT = 10000  # --quick stops at this many VMs
BIG = 100000  # sizes this large run at most BIG_REPEAT times
BIG_REPEAT = 3
TIMEOUT_S = 3600.0


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    if opts.size:
        return _child(opts.size[0], opts.size[1], opts.repeat or 5)
    code = revision()
    stat = cpu_times()
    sizes = [s for s in SIZES if not opts.quick or s[1] <= QUICK_LIMIT]
    results = [_run_size(h, v, opts.repeat) for h, v in sizes]
    from bench.cli import measure_cli
    from bench.greedy import compare, plot
    from xdrs.synth import synth_cluster

    cli = measure_cli(repeat=opts.repeat or 7)
    state = synth_cluster(200, 2000, seed=0)
    rows, trace = compare(state)
    png = Path(opts.out).with_name("balance_vs_greedy.png")
    plot(rows, trace, str(png), "skewed 200 hosts / 2000 VMs (seed 0)")
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(opts.out).write_text(render(command.strip(), results, rows, png.name, code, cli, stat))
    print(f"wrote {opts.out} and {png}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="stop at 1000 hosts / 10000 VMs")
    p.add_argument("--repeat", type=int, default=None, help="runs per strategy (default 5)")
    p.add_argument("--out", default="bench/RESULTS.md", help="markdown report path")
    p.add_argument("--size", type=int, nargs=2, metavar=("HOSTS", "VMS"), help=argparse.SUPPRESS)
    return p


def _child(n_hosts: int, n_vms: int, repeat: int) -> int:
    from bench.measure import measure_size

    print(json.dumps(measure_size(n_hosts, n_vms, repeat)))
    return 0


def _run_size(n_hosts: int, n_vms: int, repeat: int | None) -> dict[str, Any]:
    """Measure one size in a fresh interpreter; a failure or timeout is reported, not raised."""
    n = repeat or 5
    if n_vms >= BIG:
        n = min(n, BIG_REPEAT)
    cmd = [sys.executable, "-m", "bench.run", "--size", str(n_hosts), str(n_vms)]
    t0 = time.perf_counter()
    print(f"{n_hosts} hosts / {n_vms} VMs, {n} runs each ...", flush=True)
    try:
        out = subprocess.run(
            [*cmd, "--repeat", str(n)],
            check=False,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"hosts": n_hosts, "vms": n_vms, "error": f"timed out after {TIMEOUT_S:.0f} s"}
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    if out.returncode != 0:
        return {"hosts": n_hosts, "vms": n_vms, "error": out.stderr.strip()[-500:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["total_s"] = time.perf_counter() - t0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
