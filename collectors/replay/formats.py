"""Readers of sampled traces: generic CSV, Bitbrains GWA-T-12, Azure ``vm_cpu_readings``.

Each returns :class:`~collectors.replay.resample.Samples` (raw samples with real
timestamps); :mod:`collectors.replay.traces` resamples them. Every error is a
:class:`FormatError` whose message starts with the file and, where there is one, the line.
CPU above 100 % (Bitbrains reports it; turbo and rounding cause it) is set to 100 % and
counted; negative or non-finite values are errors.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from collectors.replay.resample import Samples

__all__ = ["MAX_FIELD", "FormatError", "read_azure", "read_bitbrains", "read_table"]

MAX_FIELD = 131_072  # characters in one CSV field (Python's csv default, kept as the limit)
MAX_MEM_MB = 1e9

COLUMNS = {  # header name -> canonical column
    "timestamp": "timestamp", "time": "timestamp", "ts": "timestamp",
    "vm_id": "vm_id", "vm": "vm_id",
    "cpu_pct": "cpu_pct", "cpu_mhz": "cpu_mhz",
    "mem_mb": "mem_mb", "mem": "mem_mb",
    "vcpus": "vcpus", "vm_mhz": "vm_mhz",
}  # fmt: skip
POSITIONAL = ("timestamp", "vm_id", "cpu_pct", "mem_mb")


class FormatError(ValueError):
    """A trace file that cannot be read; the message names the file and line."""


def number(text: str, what: str, hi: float = math.inf) -> float:
    """A finite number in ``0..hi``; ``ValueError`` naming ``what`` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text.strip()[:40]!r}") from None
    if not (math.isfinite(value) and 0 <= value <= hi):
        raise ValueError(f"{what} must be a finite number in 0..{hi:g}, got {text.strip()[:40]}")
    return value


def timestamp(text: str) -> float:
    """Seconds (a number) or ISO 8601; finite."""
    t = text.strip()
    try:
        ts = float(t)
    except ValueError:
        try:
            ts = datetime.fromisoformat(t).timestamp()
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"bad timestamp {t[:40]!r}") from None
    if not math.isfinite(ts) or abs(ts) > 1e13:  # 1e13 s: 300,000 years
        raise ValueError(f"bad timestamp {t[:40]!r} (expected finite seconds or ISO 8601)")
    return ts


@dataclass
class _Builder:
    """Samples gathered row by row; VM sizes keep each VM's largest value."""

    ts: list[float] = field(default_factory=list)
    vm: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, dict[int, float]] = field(default_factory=dict)
    clipped: int = 0

    def add(self, ts: float, vm: str, pct: float, **sizes: float | None) -> None:
        v = self.index.setdefault(vm, len(self.index))
        self.ts.append(ts)
        self.vm.append(v)
        self.clipped += pct > 100.0
        self.cpu.append(min(pct, 100.0))
        for name, value in sizes.items():
            if value is not None:
                col = self.sizes.setdefault(name, {})
                col[v] = max(col.get(v, 0.0), value)

    def build(self, source: Path) -> Samples:
        if not self.ts:
            raise FormatError(f"{source}: no samples")
        n = len(self.index)

        def size(name: str) -> np.ndarray | None:
            col = self.sizes.get(name)
            if col is None:
                return None
            out = np.zeros(n)
            out[list(col)] = list(col.values())
            return out

        return Samples(
            tuple(self.index), np.array(self.ts), np.array(self.vm, dtype=np.int64),
            np.array(self.cpu), self.clipped, size("mem_mb"), size("vcpus"), size("vm_mhz"),
        )  # fmt: skip


def _rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file, gzip if it ends in ``.gz``; errors name the line."""
    reader = None
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                yield reader.line_num, row
    except csv.Error as e:
        where = f"{path}:{max(reader.line_num, 1) if reader is not None else 1}"
        if "field larger than field limit" in str(e):
            raise FormatError(f"{where}: a field longer than {MAX_FIELD:,} characters") from None
        raise FormatError(f"{where}: {e}") from None
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise FormatError(f"{path}: cannot read: {e}") from None


def _header(path: Path, row: list[str]) -> tuple[str, ...]:
    cols = []
    for name in row:
        key = name.strip().lower()
        if key not in COLUMNS:
            raise FormatError(
                f"{path}:1: unknown column {name.strip()[:40]!r} (expected {', '.join(COLUMNS)})"
            )
        cols.append(COLUMNS[key])
    missing = {"timestamp", "vm_id"} - set(cols)
    if missing or not {"cpu_pct", "cpu_mhz"} & set(cols) or len(set(cols)) != len(cols):
        raise FormatError(
            f"{path}:1: header {row[:8]} needs timestamp, vm_id and cpu_pct or cpu_mhz, each once"
        )
    if "cpu_mhz" in cols and "vm_mhz" not in cols:
        raise FormatError(f"{path}:1: cpu_mhz needs a vm_mhz column (the VM's CPU capacity)")
    return tuple(cols)


def _table_row(cols: tuple[str, ...], row: list[str], b: _Builder) -> None:
    if len(row) != len(cols) and not (cols == POSITIONAL and len(row) == 3):
        want = "timestamp,vm_id,cpu_pct[,mem_mb]" if cols == POSITIONAL else ",".join(cols)
        raise ValueError(f"expected {want}, got {len(row)} fields")
    f = dict(zip(cols, row, strict=False))
    vm = f["vm_id"].strip()
    if not vm:
        raise ValueError("empty vm_id")
    opt = {k: number(f[k], k, MAX_MEM_MB) if f.get(k, "").strip() else None
           for k in ("mem_mb", "vcpus", "vm_mhz")}  # fmt: skip
    if "cpu_mhz" in f:
        cap = opt["vm_mhz"]
        if not cap:
            raise ValueError("cpu_mhz needs a vm_mhz > 0 on every row")
        pct = number(f["cpu_mhz"], "cpu_mhz") / cap * 100.0
    else:
        pct = number(f["cpu_pct"], "cpu_pct")
    b.add(timestamp(f["timestamp"]), vm, pct, **opt)


def read_table(path: str | Path) -> Samples:
    """A generic CSV: a header naming the columns (``timestamp``, ``vm_id``, ``cpu_pct`` or
    ``cpu_mhz``, optional ``mem_mb``, ``vcpus``, ``vm_mhz``), or no header and the columns
    ``timestamp,vm_id,cpu_pct[,mem_mb]``."""
    p = Path(path)
    b = _Builder()
    cols: tuple[str, ...] = POSITIONAL
    for no, row in _rows(p):
        if not row:
            continue
        if no == 1 and any(c.strip().lower() in COLUMNS for c in row):
            cols = _header(p, row)
            continue
        _at(p, no, _table_row, cols, row, b)
    return b.build(p)


def _at(path: Path, no: int, fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except ValueError as e:
        raise FormatError(f"{path}:{no}: {e}") from None


# -- Bitbrains GWA-T-12 ----------------------------------------------------------------------

BITBRAINS_FIELDS = 11  # timestamp; cores; capacity MHz; usage MHz; usage %; memory KB x 2; I/O


def _bitbrains_row(vm: str, row: list[str], b: _Builder) -> None:
    if len(row) != BITBRAINS_FIELDS:
        raise ValueError(f"expected {BITBRAINS_FIELDS} ';'-separated fields, got {len(row)}")
    cores = number(row[1], "CPU cores", 4096)
    cap = number(row[2], "CPU capacity provisioned [MHZ]", 1e7)
    pct = number(row[4], "CPU usage [%]")
    mem_kb = number(row[5], "Memory capacity provisioned [KB]", MAX_MEM_MB * 1024)
    # GWA-T-12's header says [ms] but the values are Unix seconds
    b.add(timestamp(row[0]), vm, pct, vcpus=cores, vm_mhz=cap, mem_mb=mem_kb / 1024.0)


def read_bitbrains(folder: str | Path) -> Samples:
    """A Bitbrains GWA-T-12 folder (``fastStorage``/``Rnd``): one ``;``-separated file per
    VM, named ``<id>.csv``, with the GWA header line."""
    d = Path(folder)
    if not d.is_dir():
        raise FormatError(f"{d} is not a directory of Bitbrains (GWA-T-12) files")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise FormatError(f"{d}: no .csv files")
    b = _Builder()
    for p in files:
        vm = p.name.split(".")[0]
        for no, row in _rows(p, ";"):
            if not row or (no == 1 and row[0].strip().lower().startswith("timestamp")):
                continue
            _at(p, no, _bitbrains_row, vm, row, b)
    return b.build(d)


# -- Azure public dataset --------------------------------------------------------------------


def _azure_row(row: list[str], b: _Builder) -> None:
    if len(row) != 5:
        raise ValueError(f"expected timestamp,vm_id,min_cpu,max_cpu,avg_cpu, got {len(row)} fields")
    vm = row[1].strip()
    if not vm:
        raise ValueError("empty vm_id")
    b.add(timestamp(row[0]), vm, number(row[4], "avg_cpu"))


def read_azure(path: str | Path) -> Samples:
    """Azure public dataset ``vm_cpu_readings-file-*.csv[.gz]``: no header, rows
    ``timestamp,vm_id,min_cpu,max_cpu,avg_cpu`` (CPU in %); the average is used."""
    p = Path(path)
    b = _Builder()
    for no, row in _rows(p):
        if row:
            _at(p, no, _azure_row, row, b)
    return b.build(p)
