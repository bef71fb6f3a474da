"""Utilisation traces for the replay collector.

``planetlab:<day>`` reads ``<trace_dir>/planetlab/<day>/``: one file per VM, one CPU
percentage (an integer 0..100) per line, one line per 5 minutes. When the directory does not
exist and the day is the one shipped with the package (20110303), the packaged copy is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["PACKAGED_DAY", "STEP_S", "Trace", "TraceError", "load_trace"]

STEP_S = 300.0
PACKAGED_DAY = "20110303"


class TraceError(ValueError):
    """A trace that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """CPU utilisation of ``V`` VMs over ``T`` steps of ``step_s`` seconds.

    cpu_pct : (V, T) float64, percent of the VM's own vCPUs
    """

    name: str
    vm_names: tuple[str, ...]
    cpu_pct: NDArray[np.float64]
    step_s: float = STEP_S

    @property
    def n_steps(self) -> int:
        return int(self.cpu_pct.shape[1])


def load_trace(spec: str, trace_dir: str | os.PathLike[str] | None = None) -> Trace:
    """Load ``planetlab:<day>`` from ``trace_dir`` (or the packaged day)."""
    kind, _, day = spec.partition(":")
    if kind != "planetlab" or not day:
        raise TraceError(f"trace {spec!r}: expected planetlab:<day>, e.g. planetlab:20110303")
    folder = Path(trace_dir) / "planetlab" / day if trace_dir is not None else None
    if folder is not None and folder.is_dir():
        return _read_planetlab(folder, spec)
    if day == PACKAGED_DAY:
        return _packaged(spec)
    where = folder if folder is not None else "(no trace directory given)"
    raise TraceError(f"trace {spec!r}: {where} is not a directory")


def _read_planetlab(folder: Path, spec: str) -> Trace:
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    if not names:
        raise TraceError(f"{folder}: no trace files")
    rows = [_read_file(folder / n) for n in names]
    length = len(rows[0])
    for n, r in zip(names, rows, strict=True):
        if len(r) != length:
            raise TraceError(f"{folder / n}: {len(r)} samples, expected {length} like {names[0]}")
    return Trace(spec, tuple(names), np.array(rows, dtype=np.float64))


def _read_file(path: Path) -> list[float]:
    out = []
    with open(path, encoding="ascii", errors="replace") as f:
        for i, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                raise TraceError(
                    f"{path}:{i}: expected a CPU percentage, got {text!r:.40}"
                ) from None
            if not 0.0 <= value <= 100.0:
                raise TraceError(f"{path}:{i}: CPU percentage {value} is outside 0..100")
            out.append(value)
    if not out:
        raise TraceError(f"{path}: empty trace file")
    return out


def _packaged(spec: str) -> Trace:
    ref = resources.files("collectors.replay") / "data" / f"planetlab-{PACKAGED_DAY}.npz"
    with resources.as_file(ref) as path, np.load(path) as z:
        cpu = z["cpu"].astype(np.float64)
        names = tuple(str(n) for n in z["names"])
    return Trace(spec, names, cpu)
