"""Simulation results out: terminal table, JSON or CSV metrics (atomic writes)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from xdrs._io import atomic_write
from xdrs.sim.run import Result

__all__ = ["FORMAT", "moves_lines", "table", "write_metrics"]

FORMAT = "xdrs-sim-metrics/1"
COLUMNS = (
    ("policy", "policy", "{}"),
    ("trace", "trace", "{}"),
    ("energy_kwh", "energy kWh", "{:,.2f}"),
    ("migrations", "migrations", "{:,}"),
    ("slatah", "SLATAH %", "{:.2%}"),
    ("pdm", "PDM %", "{:.3%}"),
    ("slav", "SLAV", "{:.2e}"),
    ("esv", "ESV", "{:.2e}"),
    ("mean_active_hosts", "hosts on", "{:.1f}"),
    ("seconds", "s", "{:.2f}"),
)


def _cell(fmt: str, value: object) -> str:
    s = fmt.format(value)
    return s[:-1] if fmt.endswith("%}") else s  # the header already says %


def table(results: Sequence[Result]) -> str:
    """A fixed-width summary table, one row per run."""
    head = [h for _, h, _ in COLUMNS]
    rows = [[_cell(f, r.row()[k]) for k, _, f in COLUMNS] for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs)

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def write_metrics(
    path: Path, results: Sequence[Result], resampling: Mapping[str, object] | None = None
) -> None:
    """JSON (``{"format": ..., "runs": [...]}``, and ``resampling``: what resampling did to
    each trace, by trace) or, for a ``.csv`` path, one row per run."""
    rows = [r.row() for r in results]
    if path.suffix.lower() == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["policy"])
        w.writeheader()
        w.writerows(rows)
        atomic_write(path, buf.getvalue().encode())
        return
    doc: dict[str, object] = {"format": FORMAT, "runs": rows}
    doc["series"] = [_series(r) for r in results]
    if resampling:
        doc["resampling"] = dict(resampling)
    atomic_write(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def _series(r: Result) -> dict[str, object]:
    d: dict[str, object] = {"policy": r.policy, "trace": r.trace, **r.series.__dict__}
    if r.moves is not None:
        d["moves"] = [{"t": t, "vm": v, "from": a, "to": b} for t, v, a, b in r.moves]
    return d


def moves_lines(r: Result, limit: int = 40) -> list[str]:
    """Human-readable migrations of a what-if run (the first ``limit``)."""
    if not r.moves:
        return [f"{r.policy}: no migrations"]
    out = [f"{r.policy}: {len(r.moves)} migrations"]
    for t, v, a, b in r.moves[:limit]:
        out.append(f"  {t / 3600:6.2f} h  {v}  {a} -> {b}")
    if len(r.moves) > limit:
        out.append(f"  ... {len(r.moves) - limit} more (all in --out)")
    return out
