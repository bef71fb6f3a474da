"""PNG plots of simulation runs (needs matplotlib: ``pip install 'xdrs[sim]'``)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xdrs._io import atomic_write
from xdrs.sim.policies import PAPER_POLICIES
from xdrs.sim.run import Result

__all__ = ["ReportError", "check_plotting", "tradeoff", "write_report", "write_tradeoff"]


class ReportError(RuntimeError):
    """The report cannot be made (matplotlib missing)."""


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional, as above
    except ImportError:
        raise ReportError(
            "--report needs matplotlib; install it with: pip install 'xdrs[sim]'"
        ) from None
    return plt


def check_plotting() -> None:
    """Raise :class:`ReportError` now if plots cannot be made."""
    _pyplot()


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def _hours(r: Result) -> list[float]:
    return [t / 3600 for t in r.series.t]


def _over_time(plt: Any, results: Sequence[Result], attr: str, ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in results:
        ax.plot(_hours(r), getattr(r.series, attr), label=f"{r.policy} {Path(r.trace).name}")
    ax.set_xlabel("time (h)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(plt, fig, path)


def _comparison(plt: Any, results: Sequence[Result], path: Path) -> None:
    days = sorted({Path(r.trace).name for r in results})
    policies = list(dict.fromkeys(r.policy for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(policies), 1)
    for i, pol in enumerate(policies):
        by_day = {Path(r.trace).name: r for r in results if r.policy == pol}
        xs = [d + i * width for d in range(len(days))]
        axes[0].bar(
            xs, [by_day[d].energy_kwh if d in by_day else 0 for d in days], width, label=pol
        )
        axes[1].bar(xs, [by_day[d].slav if d in by_day else 0 for d in days], width, label=pol)
    for ax, title in zip(axes, ("energy (kWh)", "SLAV"), strict=True):
        ax.set_xticks(
            [d + 0.4 - width / 2 for d in range(len(days))], days, rotation=45, fontsize=7
        )
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    _save(plt, fig, path)


def tradeoff(
    plt: Any, results: Sequence[Result], path: Path, paper: Sequence[str], ref: str = ""
) -> None:
    """Energy against migrations, summed over the traces, per policy; colour: mean SLAV.
    Policies named in ``paper`` are squares, the others circles; with ``ref`` (a policy
    of ``results``), dashed lines at 1.1x its energy and 0.1x its migrations."""
    from matplotlib.colors import LogNorm  # noqa: PLC0415 - lazy: matplotlib is optional

    rows = []
    for pol in dict.fromkeys(r.policy for r in results):
        runs = [r for r in results if r.policy == pol]
        mig = sum(r.migrations for r in runs) + 1
        kwh = sum(r.energy_kwh for r in runs)
        rows.append((pol, mig, kwh, sum(r.slav for r in runs) / len(runs)))
    slav = [max(r[3], 1e-9) for r in rows]
    norm = LogNorm(min(slav), max(*slav, min(slav) * 10))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for (pol, mig, kwh, _), s in zip(rows, slav, strict=True):
        mark = "s" if pol in paper else "o"
        sc = ax.scatter([mig], [kwh], c=[s], norm=norm, cmap="viridis", marker=mark, s=60)
        ax.annotate(pol.replace("xdrs-demand:", ""), (mig, kwh), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    for pol, mig, kwh, _ in rows:
        if pol == ref:
            ax.axhline(1.1 * kwh, ls="--", c="grey", lw=0.8)
            ax.axvline(0.1 * mig, ls="--", c="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("migrations + 1 (sum over the traces, log)")
    ax.set_ylabel("energy (kWh, sum over the traces)")
    ax.set_title(f"energy vs migrations over {len({r.trace for r in results})} traces "
                 "(squares: paper policies)")  # fmt: skip
    fig.colorbar(sc, ax=ax, label="SLAV (mean over the traces)")
    ax.grid(alpha=0.3, which="both")
    _save(plt, fig, path)


def write_tradeoff(
    path: Path, results: Sequence[Result], paper: Sequence[str], ref: str = ""
) -> None:
    """:func:`tradeoff` alone, into ``path``."""
    tradeoff(_pyplot(), results, path, paper, ref)


def write_report(folder: Path, results: Sequence[Result]) -> list[Path]:
    """Write the plots into ``folder`` (created); returns the files written."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    out = [
        folder / "energy.png",
        folder / "active_hosts.png",
        folder / "sla_violation.png",
        folder / "policies.png",
    ]
    _over_time(plt, results, "energy_kwh", "energy so far (kWh)", out[0])
    _over_time(plt, results, "active", "active hosts", out[1])
    _over_time(plt, results, "slatah", "SLATAH so far", out[2])
    _comparison(plt, results, out[3])
    out.append(folder / "tradeoff.png")
    tradeoff(plt, results, out[4], PAPER_POLICIES)
    return out
