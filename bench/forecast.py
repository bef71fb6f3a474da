"""Forecast backtest on the PlanetLab days: which forecaster the demand-aware policy uses.

``python -m bench.forecast`` (repository root) writes ``bench/RESULTS-forecast.md``: for every
forecaster of :mod:`xdrs.sim.forecast` and horizons of 1, 3, 12 and 24 intervals (5 min to
2 h), the pinball loss at the planning percentile and the fraction of (VM, interval) pairs
whose real demand exceeded the forecast, over all VMs of the 10 days at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from collectors.replay.traces import Trace, load_trace, traces_root
from xdrs._io import atomic_write
from xdrs.sim.forecast import FORECASTERS, exceed_rate, pinball

ROOT = traces_root()
HORIZONS = (1, 3, 12, 24)
# (label, forecaster, keyword arguments)
MODELS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("last value", "last", {}),
    ("EWMA a=0.3", "ewma", {"alpha": 0.3}),
    ("seasonal (previous day)", "seasonal", {}),
    ("rolling quantile W=6", "rolling-quantile", {"window": 6}),
    ("rolling quantile W=12", "rolling-quantile", {"window": 12}),
    ("rolling quantile W=36", "rolling-quantile", {"window": 36}),
    ("rolling quantile W=72", "rolling-quantile", {"window": 72}),
    ("rolling quantile W=144", "rolling-quantile", {"window": 144}),
    ("last + step quantile W=36", "step-quantile", {"window": 36}),
)


def _days() -> list[str]:
    return sorted(p.name for p in (ROOT / "planetlab").iterdir() if p.is_dir())


def _previous(tr: Trace, prev: Trace | None) -> np.ndarray:
    """(V, T) the previous trace day's samples of the VMs with the same name, NaN elsewhere."""
    out = np.full(tr.cpu_pct.shape, np.nan)
    if prev is None:
        return out
    where = {n: i for i, n in enumerate(prev.vm_names)}
    rows = [(i, where[n]) for i, n in enumerate(tr.vm_names) if n in where]
    if rows:
        a, b = np.array(rows).T
        out[a] = prev.cpu_pct[b]
    return out


def backtest(q: float, days: list[str]) -> tuple[dict[tuple[str, int], list[float]], str]:
    """Loss sums over all days: (model, horizon) -> [pinball sum, exceed sum, count]."""
    acc: dict[tuple[str, int], list[float]] = {}
    prev: Trace | None = None
    matched = total = 0
    for day in days:
        tr = load_trace(f"planetlab:{day}", ROOT)
        y, p = tr.cpu_pct, _previous(tr, prev)
        matched += int((~np.isnan(p[:, 0])).sum())
        total += y.shape[0]
        for label, name, kw in MODELS:
            fn, wants_q, wants_prev = FORECASTERS[name]
            for h in HORIZONS:
                extra = dict(kw) | ({"q": q} if wants_q else {})
                f = fn(y, h, p, **extra) if wants_prev else fn(y, h, **extra)
                yy, ff = y[:, h:], f[:, :-h]
                a = acc.setdefault((label, h), [0.0, 0.0, 0.0])
                a[0] += pinball(yy, ff, q) * yy.size
                a[1] += exceed_rate(yy, ff) * yy.size
                a[2] += yy.size
        prev = tr
        print(f"{day}: {y.shape[0]} VMs", file=sys.stderr)
    note = f"{matched:,} of {total:,} VM-days have the same VM on the previous trace day"
    return acc, note


def report(q: float, days: list[str]) -> str:
    t0 = time.perf_counter()
    acc, note = backtest(q, days)
    secs = time.perf_counter() - t0
    head = " | ".join(f"h={h} pinball | h={h} exceed %" for h in HORIZONS)
    lines = [
        "# Demand forecasts backtested on the PlanetLab days",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.forecast` "
        "(repository root, `.venv/bin/python`).",
        "",
        f"All VMs of the {len(days)} days ({', '.join(days)}), CPU % of the VM, every "
        f"forecast made after each 5-minute sample for the sample h intervals later. "
        f"Planning percentile q = {q}: pinball loss at q (CPU percentage points, lower is "
        f"better) and the share of outcomes above the forecast (a calibrated q-quantile "
        f"forecast exceeds {100 * (1 - q):.0f} %).",
        "",
        f"| forecaster | {head} |",
        "|---|" + "---|" * (2 * len(HORIZONS)),
    ]
    for label, _, _ in MODELS:
        cells = []
        for h in HORIZONS:
            s_pin, s_exc, n = acc[(label, h)]
            cells += [f"{s_pin / n:.3f}", f"{100 * s_exc / n:.1f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", NOTES.format(note=note, secs=secs)]
    return "\n".join(lines) + "\n"


NOTES = """## Notes

- Seasonal: each PlanetLab file is one day and the 10 days are not consecutive, so
  "yesterday" is the previous day in the set (e.g. 20110309 for 20110322), same VM by file
  name, same 5-minute slot; {note}; the others (and the whole first day) fall back to the
  last value.
- The quantile forecasters take the `higher` order statistic of the window
  (`xdrs.sim.forecast.window_quantile`, the same rule the simulator's policy runs); until a
  window has samples they use what there is.
- Point forecasts (last value, EWMA, seasonal) aim at the middle of the distribution, so
  40-44 % of the outcomes exceed them (not half: many PlanetLab VMs sit at a constant
  level); at q = 0.95 that costs them most of their pinball loss.
- Chosen for `xdrs-demand`: the rolling quantile over 72 samples (6 h), the lowest pinball
  loss at every horizon, with an exceedance close to the nominal 5 % (5.0-5.7 %). Shorter
  windows under-cover (W=6: 11 % above), longer ones react too late. The policy re-plans
  every 24 intervals by default, so the h = 24 column is the one that matters most;
  `bench.sim_demand` also sweeps the window (36, 144) and q in the simulator.
- The step-quantile model (last value plus the quantile of recent h-step changes) is
  well calibrated at h = 1 but its spread grows with h faster than the demand's.
- Backtest time (loading the traces included): {secs:.1f} s on a shared 2-core machine."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.forecast")
    ap.add_argument("--q", type=float, default=0.95, help="planning percentile (0..1)")
    ap.add_argument("--days", default="all", help="'all' or a comma list")
    ap.add_argument("--out", type=Path, default=Path("bench/RESULTS-forecast.md"))
    a = ap.parse_args(argv)
    if not 0 < a.q < 1:
        ap.error(f"--q: expected a quantile level in (0, 1), got {a.q}")
    days = _days() if a.days == "all" else a.days.split(",")
    atomic_write(a.out, report(a.q, days).encode())
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
