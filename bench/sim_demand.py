"""The demand-aware policy against the paper policies: a sweep of its settings on 10 days.

``python -m bench.sim_demand`` (repository root) runs the paper's migration policies and
the ``xdrs-demand`` settings of :data:`SETTINGS` on every PlanetLab day, writes the
energy-vs-migrations plot to ``bench/sim_tradeoff.png`` and replaces the xdrs-demand
section of ``bench/RESULTS-sim.md`` (between its markers; ``python -m bench.sim`` keeps it).
Targets, on every day against IQR-MMT-1.5 on the same day: energy <= 1.10x, SLAV <= 1.0x,
migrations <= 0.10x.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from collectors.replay.traces import load_trace, traces_root
from xdrs._io import atomic_write
from xdrs.sim.policies import PAPER_POLICIES, parse_policy
from xdrs.sim.report import write_tradeoff
from xdrs.sim.run import Result, simulate_world
from xdrs.sim.setup import Datacenter, build_world

ROOT = traces_root()
ORDER = ROOT.parent / "reference" / "cloudsim-vm-order"
REF = "iqr-mmt-1.5"
CHOSEN = "xdrs-demand"
TARGETS = (1.10, 1.0, 0.10)  # energy, SLAV, migrations as multiples of REF's
NAMES = ("energy", "SLAV", "migrations")
PAPER = tuple(p for p in PAPER_POLICIES if p not in ("npa", "dvfs"))
SETTINGS = (
    CHOSEN,  # period=24, budget=80, first=-1, q=0.95, window=72, target=0.9, react=1.0
    "xdrs-demand:period=1,budget=4",
    "xdrs-demand:period=3,budget=10",
    "xdrs-demand:period=6,budget=20",
    "xdrs-demand:period=12,budget=40",
    "xdrs-demand:period=48,budget=160",
    "xdrs-demand:period=96,budget=320",
    "xdrs-demand:budget=20",
    "xdrs-demand:budget=40",
    "xdrs-demand:budget=160",
    "xdrs-demand:target=0.7",
    "xdrs-demand:target=0.8",
    "xdrs-demand:target=1.0",
    "xdrs-demand:q=0.9",
    "xdrs-demand:q=1.0",
    "xdrs-demand:window=36",
    "xdrs-demand:window=144",
    "xdrs-demand:react=0.9",
    "xdrs-demand:first=300",
    "xdrs-demand:q=0.9,target=1.0",
)
BEGIN, END = "<!-- xdrs-demand:begin -->", "<!-- xdrs-demand:end -->"


def keep_section(path: Path, text: str) -> str:
    """``text`` with the xdrs-demand section of the file at ``path`` (if any) appended."""
    old = path.read_text() if path.exists() else ""
    if BEGIN not in old:
        return text
    return text.rstrip("\n") + "\n\n" + old[old.index(BEGIN) : old.index(END) + len(END)] + "\n"


def replace_section(path: Path, section: str) -> str:
    """The file at ``path`` with its xdrs-demand section replaced (appended if absent)."""
    old = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in old:
        return old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    return old.rstrip("\n") + "\n\n" + block + "\n"


def run_all(days: list[str], policies: tuple[str, ...]) -> list[Result]:
    out = []
    for day in days:
        world = build_world(Datacenter(), load_trace(f"planetlab:{day}", ROOT, ORDER))
        for pol in policies:
            r = simulate_world(world, parse_policy(pol).initial(world), pol, label=day)
            print(f"{day} {pol}: {r.energy_kwh:.2f} kWh {r.migrations} migr "
                  f"SLAV {r.slav:.2e} {r.seconds:.2f} s", file=sys.stderr)  # fmt: skip
            out.append(r)
    return out


def ratios(r: Result, ref: Result) -> tuple[float, float, float]:
    """Energy, SLAV and migrations of ``r`` as multiples of ``ref``'s."""
    return (r.energy_kwh / ref.energy_kwh, r.slav / max(ref.slav, 1e-300),
            r.migrations / max(ref.migrations, 1))  # fmt: skip


def _met(x: tuple[float, float, float]) -> bool:
    return all(v <= t for v, t in zip(x, TARGETS, strict=True))


def settings_table(runs: list[Result], days: list[str]) -> list[str]:
    ref = {r.trace: r for r in runs if r.policy == REF}
    lines = [
        "| setting | energy kWh | migrations | mean SLAV | worst energy x | worst SLAV x "
        "| worst migr. x | days on target | s/day |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pol in (*PAPER, *SETTINGS):
        rs = [r for r in runs if r.policy == pol]
        x = [ratios(r, ref[r.trace]) for r in rs]
        worst = [max(v[i] for v in x) for i in range(3)]
        cells = [f"`{pol}`", f"{sum(r.energy_kwh for r in rs):,.1f}",
                 f"{sum(r.migrations for r in rs):,}",
                 f"{sum(r.slav for r in rs) / len(rs):.2e}",
                 *(f"{w:.3f}" for w in worst),
                 f"{sum(_met(v) for v in x)}/{len(days)}",
                 f"{sum(r.seconds for r in rs) / len(rs):.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def day_table(runs: list[Result], pol: str) -> tuple[list[str], list[str]]:
    """Per-day rows of ``pol`` beside REF, and one line per missed target."""
    ref = {r.trace: r for r in runs if r.policy == REF}
    lines = [
        f"| day | {REF} kWh | migr. | SLAV | hosts on | {pol} kWh | migr. (first plan) | SLAV "
        "| hosts on | energy x | SLAV x | migr. x | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    missed = []
    for r in (r for r in runs if r.policy == pol):
        b = ref[r.trace]
        x = ratios(r, b)
        over = [(n, v) for n, v, t in zip(NAMES, x, TARGETS, strict=True) if v > t]
        miss = [n for n, _ in over]
        missed += [f"- {r.trace}: {n} {v:.3f}x" for n, v in over]
        lines.append(
            f"| {r.trace} | {b.energy_kwh:,.2f} | {b.migrations:,} | {b.slav:.2e} "
            f"| {b.mean_active_hosts:.1f} | {r.energy_kwh:,.2f} | {r.migrations:,} "
            f"({_first(r):,}) | {r.slav:.2e} | {r.mean_active_hosts:.1f} | {x[0]:.3f} | "
            f"{x[1]:.3f} | {x[2]:.3f} | {'met' if not miss else 'missed: ' + ', '.join(miss)} |"
        )
    return lines, missed


def _first(r: Result) -> int:
    """Migrations started at the first decision (the series samples before deciding)."""
    m = r.series.migrations
    return m[1] if len(m) > 1 else r.migrations


def sweep_misses(runs: list[Result]) -> list[str]:
    """One line per setting that misses a target on some day: which, where, how much."""
    ref = {r.trace: r for r in runs if r.policy == REF}
    out = []
    for pol in SETTINGS:
        miss = [
            f"{n} {v:.3f}x on {r.trace}"
            for r in runs
            if r.policy == pol
            for n, v, t in zip(NAMES, ratios(r, ref[r.trace]), TARGETS, strict=True)
            if v > t
        ]
        if miss:
            out.append(f"- `{pol}`: " + "; ".join(miss))
    return out or ["- none"]


def section(runs: list[Result], days: list[str], wall: float) -> str:
    rows, missed = day_table(runs, CHOSEN)
    lines = [
        "## xdrs-demand: the demand-aware policy against IQR-MMT-1.5",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.sim_demand` "
        f"(repository root, `.venv/bin/python`; {wall:.0f} s for {len(days)} days x "
        f"{len(PAPER) + len(SETTINGS)} policies on a shared 2-core machine, so the seconds "
        "are upper bounds). Forecaster chosen by the backtest in "
        "[RESULTS-forecast.md](RESULTS-forecast.md). Targets on every day, as multiples of "
        f"{REF} on the same day: energy <= {TARGETS[0]}x, SLAV <= {TARGETS[1]}x, "
        f"migrations <= {TARGETS[2]}x.",
        "",
        f"### `{CHOSEN}` (defaults) day by day",
        "",
        *rows,
        "",
        "Targets missed: " + ("none." if not missed else ""),
        *missed,
        "",
        "### The sweep: every setting over the 10 days",
        "",
        "Sums over the days; *worst* is the largest multiple of IQR-MMT-1.5 on any one day; "
        "a setting is on target on a day when all three targets hold.",
        "",
        *settings_table(runs, days),
        "",
        "Settings of the sweep that miss a target on some day:",
        "",
        *sweep_misses(runs),
        "",
        "![energy vs migrations](sim_tradeoff.png)",
        "",
        "Energy against migrations, each summed over the 10 days (log scale), colour the mean "
        "SLAV; squares are the paper policies, dashed lines 1.1x IQR-MMT-1.5's energy and "
        "0.1x its migrations (over the sum; the targets hold day by day in the tables) "
        "(NPA and DVFS, which never migrate, are left "
        "out: 24,108 and 8,054 kWh). The same plot is `tradeoff.png` in "
        "`xdrs simulate --report DIR`.",
        "",
        NOTES,
    ]
    return "\n".join(lines)


NOTES = """### How it works

- Every `period` decisions (default 24, i.e. 2 h) the policy gives the placement core's
  `consolidate` -- the strategy `xdrs plan` and the live engine run -- a `ClusterState`
  whose CPU allocation is each VM's forecast demand, the 95th percentile of its last 72
  samples (6 h; the backtest's lowest pinball loss at every horizon), against 90 % of each
  host's MIPS. Hosts whose forecast is above that shed VMs first (the core's remediation),
  then whole hosts are emptied onto the others. A plan keeps its first `budget` (80) moves,
  mandatory ones included, and drops the consolidation moves off hosts that the cut leaves
  non-empty. Between re-plans only real overloads get an answer: a host whose measured
  demand exceeds its MIPS sheds the fewest VMs (largest first) onto hosts with room in both
  forecast and measured demand (`shed_overload`).
- It runs under the same CloudSim 3.0.3 rules as the paper policies (hosts, VM types,
  trace interpolation, migration times, energy and SLA accounting; memory checked only when
  a VM is created) and starts from the same initial placement (PABFD at full VM size, which
  keeps hundreds of hosts on), so its first plan migrates most VMs; those migrations are
  counted (in brackets above) and are most of its total.

### Why it wins

- Migrations: the paper policies decide every 5 minutes from each host's last samples. A
  host above its adaptive threshold sheds VMs, and the under-load phase then tries to empty
  every lightly used host whole, so VMs go back and forth: about 100 migrations per
  decision while the number of hosts on hardly changes. A 6-hour quantile moves slowly, so
  a placement made against it keeps holding; after the first plan xdrs-demand needs about
  15-30 migrations an hour (IQR-MMT-1.5: about 1,100).
- Energy: in CloudSim's accounting a migrating VM counts 100 % on its source plus 10 % on
  its destination while it copies, and hosts switched on to relieve an overload stay on
  until the under-load phase empties them again. With few moves, packing the forecast to
  90 % keeps fewer hosts on (the *hosts on* columns).
- SLAV = SLATAH x PDM. PDM is the CPU lost during migrations, so it falls with their
  number; SLATAH falls too, because the quantile keeps headroom.

### The trade-off

- `first=300` (the first plan limited like the others) shows why the first consolidation
  is done at once: the initial full-size placement stays on hundreds of hosts for hours,
  1.8-2.5x the energy of IQR-MMT-1.5 (the only setting that misses on every day).
- After the first plan, re-planning less often with a proportionally larger budget (1 to
  4 h) gives fewer migrations at about the same energy and SLAV (the forecast moves
  slowly); 8 h (`period=96`) starts to cost energy. Re-planning every decision
  (`period=1`) works as well but takes about 4x the time. A small budget (`budget=20`)
  saves migrations but leaves hosts on: energy rises.
- `target` and `q` set energy against SLAV: packing the forecast to 100 % of the MIPS or
  planning the 90th percentile each saves about 9-10 % energy, both together 17 %, for a
  higher SLATAH (still 15x under IQR-MMT-1.5's SLAV). The window's maximum (`q=1.0`) or a
  70 % target keep hosts on for rare peaks and miss the energy target on one or two days
  (20110420 most, the day IQR-MMT-1.5 comes closest to the defaults' hosts on: 63.0 vs
  59.3). The defaults stay in the middle of this range on purpose: the SLAV slack buys
  robustness to traces burstier than PlanetLab's."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim_demand")
    ap.add_argument("--days", default="all", help="'all' or a comma list")
    ap.add_argument("--out", type=Path, default=Path("bench/RESULTS-sim.md"))
    ap.add_argument("--plot", type=Path, default=Path("bench/sim_tradeoff.png"))
    a = ap.parse_args(argv)
    days = sorted(p.name for p in (ROOT / "planetlab").iterdir() if p.is_dir())
    days = days if a.days == "all" else a.days.split(",")
    t0 = time.perf_counter()
    runs = run_all(days, (*PAPER, *SETTINGS))
    wall = time.perf_counter() - t0
    write_tradeoff(a.plot, runs, PAPER, REF)
    atomic_write(a.out, replace_section(a.out, section(runs, days, wall)).encode())
    print(f"wrote {a.out} and {a.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
