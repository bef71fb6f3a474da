"""Trace readers: PlanetLab day folders and a generic CSV.

A trace is a ``(V, S)`` matrix of CPU utilisation (fraction of the VM's capacity) sampled
every ``interval`` seconds, with the VM names. Errors name the file and line.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["Trace", "TraceError", "load_trace", "read_csv", "read_planetlab", "traces_root"]

FloatA = NDArray[np.float64]
PACKAGED_DAY = "20110303"
PLANETLAB_INTERVAL = 300.0


class TraceError(ValueError):
    """A trace file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """CPU utilisation of V VMs over S samples.

    names : VM names, length V
    util : (V, S) float64, fraction of each VM's CPU (PlanetLab: value / 100)
    interval : seconds between samples
    mem_mb : (V,) float64 or None, memory of each VM when the trace gives it
    source : where the trace came from (for reports)
    """

    names: tuple[str, ...]
    util: FloatA
    interval: float
    mem_mb: FloatA | None = None
    source: str = ""


def traces_root(flag: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding trace sets: ``flag``, else ``$XDRS_TRACES``, else ``../shared/traces``.

    The default is resolved against the repository (the parent of the ``xdrs`` package).
    """
    if flag:
        return Path(flag)
    env = os.environ.get("XDRS_TRACES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "traces"


def _parse_planetlab_file(path: Path) -> list[float]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: cannot read: {e}") from None
    values: list[float] = []
    for no, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        try:
            v = int(s)
        except ValueError:
            raise TraceError(f"{path}:{no}: expected an integer CPU %, got {s[:40]!r}") from None
        if not 0 <= v <= 100:
            raise TraceError(f"{path}:{no}: CPU % must be in 0..100, got {v}")
        values.append(v / 100.0)
    return values


def read_planetlab(day_dir: str | os.PathLike[str], order: list[str] | None = None) -> Trace:
    """Read a PlanetLab day folder (one file per VM, one integer CPU % per line).

    ``order`` lists the file names in the order VMs are numbered (CloudSim numbers them in
    file-system order; ``shared/reference/cloudsim-vm-order/<day>.txt`` records it). The
    default is sorted file names.
    """
    d = Path(day_dir)
    if not d.is_dir():
        raise TraceError(f"{d}: not a directory of PlanetLab trace files")
    present = sorted(p.name for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    if not present:
        raise TraceError(f"{d}: no trace files")
    names = present if order is None else _check_order(d, present, order)
    rows = [_parse_planetlab_file(d / n) for n in names]
    n0 = len(rows[0])
    for n, r in zip(names, rows, strict=True):
        if len(r) != n0 or n0 == 0:
            raise TraceError(f"{d / n}: {len(r)} samples, expected {n0} like {d / names[0]}")
    return Trace(tuple(names), np.array(rows), PLANETLAB_INTERVAL, None, str(d))


def _check_order(d: Path, present: list[str], order: list[str]) -> list[str]:
    missing = sorted(set(order) - set(present))
    extra = sorted(set(present) - set(order))
    if missing or extra or len(order) != len(set(order)):
        raise TraceError(
            f"{d}: VM order file does not match the folder "
            f"(missing files {missing[:3]}, unlisted files {extra[:3]})"
        )
    return order


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def _csv_rows(path: Path) -> list[tuple[float, str, float, float | None]]:
    out: list[tuple[float, str, float, float | None]] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for no, row in enumerate(csv.reader(f), start=1):
                if not row or (no == 1 and row[0].strip().lower() == "timestamp"):
                    continue
                out.append(_csv_row(path, no, row))
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: cannot read: {e}") from None
    if not out:
        raise TraceError(f"{path}: no samples")
    return out


def _csv_row(path: Path, no: int, row: list[str]) -> tuple[float, str, float, float | None]:
    if len(row) not in (3, 4):
        raise TraceError(f"{path}:{no}: expected timestamp,vm_id,cpu_pct[,mem_mb], got {row}")
    try:
        ts = _timestamp(row[0].strip())
    except ValueError:
        raise TraceError(f"{path}:{no}: bad timestamp {row[0]!r}") from None
    try:
        cpu = float(row[2])
        mem = float(row[3]) if len(row) == 4 and row[3].strip() else None
    except ValueError:
        raise TraceError(f"{path}:{no}: cpu_pct/mem_mb must be numbers, got {row[2:]}") from None
    if not 0 <= cpu <= 100:
        raise TraceError(f"{path}:{no}: cpu_pct must be in 0..100, got {cpu}")
    if not row[1].strip():
        raise TraceError(f"{path}:{no}: empty vm_id")
    return ts, row[1].strip(), cpu / 100.0, mem


def read_csv(path: str | os.PathLike[str]) -> Trace:
    """Read ``timestamp,vm_id,cpu_pct[,mem_mb]`` rows (optional header line).

    Timestamps are seconds or ISO 8601. The sample grid is the sorted set of timestamps and
    the interval their smallest spacing; a VM without a sample at a grid time keeps its
    previous value (0 before its first sample). Memory is the VM's largest ``mem_mb``.
    """
    p = Path(path)
    rows = _csv_rows(p)
    times = np.unique(np.array([r[0] for r in rows]))
    names = sorted({r[1] for r in rows})
    col = {t: i for i, t in enumerate(times.tolist())}
    vix = {n: i for i, n in enumerate(names)}
    util = np.full((len(names), times.size), np.nan)
    mem = np.zeros(len(names))
    for ts, vm, cpu, m in rows:
        util[vix[vm], col[ts]] = cpu
        if m is not None:
            mem[vix[vm]] = max(mem[vix[vm]], m)
    util = _carry_forward(util)
    interval = float(np.diff(times).min()) if times.size > 1 else PLANETLAB_INTERVAL
    has_mem = any(r[3] is not None for r in rows)
    return Trace(tuple(names), util, interval, mem if has_mem else None, str(p))


def _carry_forward(util: FloatA) -> FloatA:
    idx = np.where(np.isnan(util), 0, np.arange(util.shape[1])[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = util[np.arange(util.shape[0])[:, None], idx]
    return np.nan_to_num(filled, nan=0.0)


def _packaged(order: list[str] | None) -> Trace:
    """The PlanetLab day shipped with the package (the replay collector's copy)."""
    from collectors.replay.traces import load_trace as load_packaged  # noqa: PLC0415

    day = load_packaged(f"planetlab:{PACKAGED_DAY}", None)
    names = list(day.vm_names)
    util = day.cpu_pct / 100.0
    if order is not None:
        index = {n: i for i, n in enumerate(names)}
        if sorted(order) != sorted(names):
            raise TraceError(f"packaged day {PACKAGED_DAY}: VM order file does not match it")
        pick = [index[n] for n in order]
        names, util = order, util[pick]
    return Trace(tuple(names), util, PLANETLAB_INTERVAL, None, f"packaged:{PACKAGED_DAY}")


def load_trace(spec: str, root: Path, order_dir: Path | None = None) -> Trace:
    """Load ``planetlab:<day>``, ``csv:<file>``, a PlanetLab folder or a ``.csv`` file.

    ``planetlab:20110303`` falls back to the day shipped in the package when ``root`` does
    not hold it.

    For ``planetlab:<day>`` the folder is ``root/planetlab/<day>``; when ``order_dir`` has
    ``<day>.txt``, VMs are numbered in that order (CloudSim's), else by sorted name.
    """
    kind, _, rest = spec.partition(":")
    if kind == "planetlab" and rest:
        order = None
        if order_dir is not None and (order_dir / f"{rest}.txt").is_file():
            order = [s for s in (order_dir / f"{rest}.txt").read_text().splitlines() if s]
        folder = root / "planetlab" / rest
        if not folder.is_dir() and rest == PACKAGED_DAY:
            return _packaged(order)  # a fresh clone without the trace set
        return read_planetlab(folder, order)
    if kind == "csv" and rest:
        return read_csv(rest)
    p = Path(spec)
    if p.is_dir():
        return read_planetlab(p)
    if p.suffix == ".csv":
        return read_csv(p)
    raise TraceError(
        f"trace {spec!r}: expected planetlab:<day>, csv:<file>, a folder or a .csv file"
    )
