"""Fingerprints of simulator runs, to prove a speed-up changed no result.

``python -m bench.sim_check OUT.json [--days D1,D2] [--policies P1,P2]`` runs each day x
policy and writes every metric at full precision (``repr``) plus a SHA-256 of the move log
(time, VM, source, destination). ``--compare OLD.json`` exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from collectors.replay.traces import load_trace, traces_root
from xdrs.sim.policies import PAPER_POLICIES, parse_policy
from xdrs.sim.run import simulate_world
from xdrs.sim.setup import Datacenter, build_world

ROOT = traces_root()
ORDER = ROOT.parent / "reference" / "cloudsim-vm-order"
KEYS = ("energy_kwh", "migrations", "slatah", "pdm", "slav", "esv", "overall_sla",
        "mean_active_hosts", "mean_load", "max_load")  # fmt: skip


def fingerprint(day: str, policy: str) -> dict[str, object]:
    dc = Datacenter()
    world = build_world(dc, load_trace(f"planetlab:{day}", ROOT, ORDER))
    pol = parse_policy(policy)
    r = simulate_world(world, pol.initial(world), policy, label=day, log_moves=True)
    log = hashlib.sha256(repr(r.moves).encode()).hexdigest()
    out: dict[str, object] = {k: repr(getattr(r, k)) for k in KEYS}
    out |= {"moves_sha256": log, "cpu_s": r.cpu_seconds, "wall_s": r.seconds}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim_check")
    ap.add_argument("out", type=Path)
    ap.add_argument("--days", default="all")
    ap.add_argument("--policies", default=",".join(PAPER_POLICIES))
    ap.add_argument("--compare", type=Path)
    a = ap.parse_args(argv)
    days = sorted(p.name for p in (ROOT / "planetlab").iterdir() if p.is_dir())
    days = days if a.days == "all" else a.days.split(",")
    res: dict[str, dict[str, object]] = {}
    t0 = time.process_time()
    for day in days:
        for pol in a.policies.split(","):
            res[f"{day} {pol}"] = fp = fingerprint(day, pol)
            print(f"{day} {pol}: {fp['energy_kwh']} kWh cpu {fp['cpu_s']:.2f} s", file=sys.stderr)
    print(f"total CPU {time.process_time() - t0:.1f} s", file=sys.stderr)
    a.out.write_text(json.dumps(res, indent=1))
    if a.compare is None:
        return 0
    old = json.loads(a.compare.read_text())
    bad = 0
    for k, fp in res.items():
        for m in (*KEYS, "moves_sha256"):
            if k in old and old[k][m] != fp[m]:
                print(f"DIFF {k} {m}: {old[k][m]} -> {fp[m]}", file=sys.stderr)
                bad += 1
    print(f"{len(res)} runs compared, {bad} differences", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
