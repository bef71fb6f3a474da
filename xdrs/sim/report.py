"""PNG plots of simulation runs (needs matplotlib: ``pip install 'xdrs[sim]'``)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xdrs._io import atomic_write
from xdrs.sim.run import Result

__all__ = ["ReportError", "check_plotting", "write_report"]


class ReportError(RuntimeError):
    """The report cannot be made (matplotlib missing)."""


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
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
    return out
