"""Utilisation traces, the one definition for the replay collector and the what-if simulator.

A trace is the CPU utilisation of ``V`` VMs sampled every ``step_s`` seconds. Sources:

- ``planetlab:<day>``: the folder ``<trace_dir>/planetlab/<day>/`` (CloudSim's PlanetLab
  set): one file per VM, one CPU percentage per line, one line per 5 minutes. The published
  files hold integers; decimals are accepted too (they are real measurements). Hidden
  files (``.DS_Store``, editor swap files) are not VMs and are ignored, as are blank
  lines. When the folder does not exist and the day is the one shipped with the package
  (20110303), the packaged copy is used.
- a PlanetLab day folder given by its path;
- ``csv:<file>`` or a ``.csv`` file: ``timestamp,vm_id,cpu_pct[,mem_mb]`` rows.

Every error is a :class:`TraceError` whose message names the file and, where there is
one, the line.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PACKAGED_DAY",
    "STEP_S",
    "Trace",
    "TraceError",
    "load_trace",
    "read_csv",
    "read_planetlab",
    "traces_root",
]

FloatA = NDArray[np.float64]
STEP_S = 300.0  # PlanetLab's sampling interval
PACKAGED_DAY = "20110303"


class TraceError(ValueError):
    """A trace that cannot be read; the message names the file and line."""


@dataclass(frozen=True, eq=False)
class Trace:
    """CPU utilisation of ``V`` VMs over ``T`` steps of ``step_s`` seconds.

    name : where the trace came from (folder, file or ``packaged:<day>``), for messages
    vm_names : length V
    cpu_pct : (V, T) float64, percent of each VM's own vCPUs, 0..100
    step_s : seconds between samples
    mem_mb : (V,) float64 or None, each VM's memory when the trace gives it (0: unknown)
    """

    name: str
    vm_names: tuple[str, ...]
    cpu_pct: FloatA
    step_s: float = STEP_S
    mem_mb: FloatA | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.cpu_pct)
        if len(shape) != 2 or shape[0] != len(self.vm_names) or not self.step_s > 0:
            raise TraceError(
                f"trace {self.name!r}: cpu_pct of shape {shape} for {len(self.vm_names)} VM "
                f"names, step {self.step_s} s (expected (V, T) and a step > 0)"
            )

    @property
    def n_steps(self) -> int:
        return int(self.cpu_pct.shape[1])

    @property
    def util(self) -> FloatA:
        """(V, T) float64: utilisation as a fraction of each VM's CPU (``cpu_pct / 100``)."""
        return self.cpu_pct / 100.0


def traces_root(flag: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding trace sets: ``flag``, else ``$XDRS_TRACES``, else
    ``../shared/traces`` beside the repository (the parent of the ``collectors`` package)."""
    if flag:
        return Path(flag)
    env = os.environ.get("XDRS_TRACES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "traces"


# -- PlanetLab folders -------------------------------------------------------------------


def _percentage(path: Path, no: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{path}:{no}: expected a CPU percentage, got {text[:40]!r}") from None
    if not 0.0 <= value <= 100.0:  # also refuses nan
        raise TraceError(f"{path}:{no}: CPU percentage {text[:40]} is outside 0..100")
    return value


def _read_planetlab_file(path: Path) -> list[float]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    # undecodable bytes become U+FFFD, so the error names the line that holds them
    lines = raw.decode("ascii", errors="replace").splitlines()
    return [_percentage(path, no, s) for no, line in enumerate(lines, 1) if (s := line.strip())]


def read_planetlab(day_dir: str | os.PathLike[str], order: list[str] | None = None) -> Trace:
    """Read a PlanetLab day folder (one file per VM, one CPU percentage per line).

    ``order`` lists the file names in the order VMs are numbered (CloudSim numbers them in
    file-system order; ``shared/reference/cloudsim-vm-order/<day>.txt`` records it). The
    default is sorted file names.
    """
    d = Path(day_dir)
    if not d.is_dir():
        raise TraceError(f"{d} is not a directory of PlanetLab trace files")
    present = sorted(p.name for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    if not present:
        raise TraceError(f"{d}: no trace files")
    names = present if order is None else _check_order(d, present, order)
    rows = [_read_planetlab_file(d / n) for n in names]
    for n, r in zip(names, rows, strict=True):
        if not r:
            raise TraceError(f"{d / n}: no samples")
        if len(r) != len(rows[0]):
            raise TraceError(f"{d / n}: {len(r)} samples, expected {len(rows[0])} like {names[0]}")
    return Trace(str(d), tuple(names), np.array(rows, dtype=np.float64))


def _check_order(d: Path | str, present: list[str], order: list[str]) -> list[str]:
    missing = sorted(set(order) - set(present))
    extra = sorted(set(present) - set(order))
    if missing or extra or len(order) != len(set(order)):
        raise TraceError(
            f"{d}: VM order file does not match the folder "
            f"(missing files {missing[:3]}, unlisted files {extra[:3]})"
        )
    return order


def _packaged(order: list[str] | None) -> Trace:
    """The PlanetLab day shipped with the package, VMs in ``order`` if given."""
    ref = resources.files("collectors.replay") / "data" / f"planetlab-{PACKAGED_DAY}.npz"
    with resources.as_file(ref) as path, np.load(path) as z:
        cpu = z["cpu"].astype(np.float64)
        names = [str(n) for n in z["names"]]
    if order is not None:
        index = {n: i for i, n in enumerate(names)}
        names = _check_order(f"packaged day {PACKAGED_DAY}", names, order)
        cpu = cpu[[index[n] for n in names]]
    return Trace(f"packaged:{PACKAGED_DAY}", tuple(names), cpu)


# -- CSV -----------------------------------------------------------------------------------

_Row = tuple[float, str, float, float | None]


def _timestamp(text: str) -> float:
    try:
        ts = float(text)
    except ValueError:
        ts = datetime.fromisoformat(text).timestamp()
    if not math.isfinite(ts):
        raise ValueError(text)
    return ts


def _csv_rows(path: Path) -> list[_Row]:
    out: list[_Row] = []
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


def _csv_row(path: Path, no: int, row: list[str]) -> _Row:
    if len(row) not in (3, 4):
        raise TraceError(f"{path}:{no}: expected timestamp,vm_id,cpu_pct[,mem_mb], got {row}")
    try:
        ts = _timestamp(row[0].strip())
    except (ValueError, OverflowError, OSError):
        raise TraceError(f"{path}:{no}: bad timestamp {row[0]!r}") from None
    try:
        cpu = float(row[2])
        mem = float(row[3]) if len(row) == 4 and row[3].strip() else None
    except ValueError:
        raise TraceError(f"{path}:{no}: cpu_pct/mem_mb must be numbers, got {row[2:]}") from None
    if not 0 <= cpu <= 100:
        raise TraceError(f"{path}:{no}: cpu_pct must be in 0..100, got {cpu}")
    if mem is not None and not 0 <= mem < 1e9:
        raise TraceError(f"{path}:{no}: mem_mb must be in 0..1e9, got {mem}")
    if not row[1].strip():
        raise TraceError(f"{path}:{no}: empty vm_id")
    return ts, row[1].strip(), cpu, mem


def read_csv(path: str | os.PathLike[str]) -> Trace:
    """Read ``timestamp,vm_id,cpu_pct[,mem_mb]`` rows (optional header line).

    Timestamps are seconds or ISO 8601. The sample grid is the sorted set of timestamps and
    the step their smallest spacing; a VM without a sample at a grid time keeps its
    previous value (0 before its first sample). Memory is the VM's largest ``mem_mb``.
    """
    p = Path(path)
    rows = _csv_rows(p)
    times = np.unique(np.array([r[0] for r in rows]))
    names = sorted({r[1] for r in rows})
    col = {t: i for i, t in enumerate(times.tolist())}
    vix = {n: i for i, n in enumerate(names)}
    cpu = np.full((len(names), times.size), np.nan)
    mem = np.zeros(len(names))
    for ts, vm, pct, m in rows:
        cpu[vix[vm], col[ts]] = pct
        if m is not None:
            mem[vix[vm]] = max(mem[vix[vm]], m)
    step = float(np.diff(times).min()) if times.size > 1 else STEP_S
    has_mem = any(r[3] is not None for r in rows)
    return Trace(str(p), tuple(names), _carry_forward(cpu), step, mem if has_mem else None)


def _carry_forward(values: FloatA) -> FloatA:
    idx = np.where(np.isnan(values), 0, np.arange(values.shape[1])[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = values[np.arange(values.shape[0])[:, None], idx]
    return np.nan_to_num(filled, nan=0.0)


# -- the one entrance ----------------------------------------------------------------------


def _order(order_dir: str | os.PathLike[str] | None, day: str) -> list[str] | None:
    if order_dir is None:
        return None
    path = Path(order_dir) / f"{day}.txt"
    if not path.is_file():
        return None
    try:
        return [s for s in path.read_text(encoding="utf-8").splitlines() if s]
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: cannot read: {e}") from None


def load_trace(
    spec: str,
    trace_dir: str | os.PathLike[str] | None = None,
    order_dir: str | os.PathLike[str] | None = None,
) -> Trace:
    """Load ``planetlab:<day>``, ``csv:<file>``, a PlanetLab folder or a ``.csv`` file.

    For ``planetlab:<day>`` the folder is ``trace_dir/planetlab/<day>``; the packaged day
    (20110303) is used when that folder does not exist (or no ``trace_dir`` is given).
    When ``order_dir`` has ``<day>.txt``, VMs are numbered in that order (CloudSim's), else
    by sorted file name.
    """
    kind, _, rest = spec.partition(":")
    if kind == "planetlab" and rest:
        order = _order(order_dir, rest)
        folder = Path(trace_dir) / "planetlab" / rest if trace_dir is not None else None
        if (folder is None or not folder.is_dir()) and rest == PACKAGED_DAY:
            return _packaged(order)  # a fresh clone without the trace set
        if folder is None:
            raise TraceError(f"trace {spec!r}: no trace directory given")
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
