"""Irregular samples onto the decision interval: the one resampler every trace reader shares.

Samples carry real timestamps and are never assumed to be evenly spaced. Slot ``k`` of a
VM covers ``[t0 + k * interval, t0 + (k + 1) * interval)`` with ``t0`` the earliest
timestamp of the whole trace; a slot's value is the mean of the VM's samples in it. A slot
without a sample carries the VM's previous value forward for at most ``max_gap`` seconds;
after that, and before the VM's first sample, the VM is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_CELLS", "MAX_SPAN_S", "Resampled", "Resampling", "Samples", "resample"]

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]

# VMs x slots of one trace: 20 million float64 cells are 160 MB per copy, and the simulator
# holds a few copies (about 10,000 VMs x one week at 5 minutes)
MAX_CELLS = 20_000_000
MAX_SPAN_S = 366 * 86_400.0  # a year, as ``--hours``; a stray timestamp stretches a trace


@dataclass(frozen=True, eq=False)
class Samples:
    """Raw samples of ``V`` VMs as read, in any order (N samples).

    ts : (N,) float64, seconds (finite)
    vm : (N,) int64, index into ``vm_names``
    cpu_pct : (N,) float64, percent of the VM's CPU, 0..100 (already clipped)
    clipped : samples above 100 % that were set to 100 %
    mem_mb, vcpus, vm_mhz : (V,) float64 VM sizes when the source gives them (0: unknown)
    """

    vm_names: tuple[str, ...]
    ts: FloatA
    vm: IntA
    cpu_pct: FloatA
    clipped: int = 0
    mem_mb: FloatA | None = None
    vcpus: FloatA | None = None
    vm_mhz: FloatA | None = None


@dataclass(frozen=True)
class Resampling:
    """What resampling did: ``samples`` read for ``vms`` VMs onto ``slots`` slots of
    ``interval_s``; ``merged`` samples averaged into a slot that already had one,
    ``filled`` VM-slots carried forward (at most ``max_gap_s``), ``absent`` VM-slots
    without a value (before a VM's first sample or after a longer gap), ``clipped``
    samples above 100 % set to 100 %."""

    vms: int
    samples: int
    slots: int
    interval_s: float
    max_gap_s: float
    merged: int
    filled: int
    absent: int
    clipped: int

    def summary(self) -> str:
        return (
            f"{self.vms} VMs, {self.samples} samples onto {self.slots} slots of "
            f"{self.interval_s:g} s: {self.merged} averaged into a shared slot, "
            f"{self.filled} slots carried forward (up to {self.max_gap_s:g} s), "
            f"{self.absent} VM-slots absent, {self.clipped} samples above 100 % clipped"
        )


@dataclass(frozen=True, eq=False)
class Resampled:
    """``cpu_pct`` (V, T) float64 (0 where absent), ``present`` (V, T) bool, the report."""

    cpu_pct: FloatA
    present: BoolA
    report: Resampling


class ResampleError(ValueError):
    """The samples span more slots than :data:`MAX_CELLS` allows."""


def _slots(s: Samples, interval: float, max_cells: int) -> tuple[int, IntA]:
    t0, t1 = float(s.ts.min()), float(s.ts.max())
    if t1 - t0 > MAX_SPAN_S:
        raise ResampleError(
            f"samples from {t0:,.0f} s to {t1:,.0f} s span {(t1 - t0) / 86400:,.1f} days; "
            f"at most {MAX_SPAN_S / 86400:,.0f} days are simulated (a stray timestamp? "
            f"VM {s.vm_names[int(s.vm[np.argmin(s.ts)])]!r} has the first, "
            f"{s.vm_names[int(s.vm[np.argmax(s.ts)])]!r} the last)"
        )
    n_slots = int((t1 - t0) // interval) + 1
    cells = len(s.vm_names) * n_slots
    if cells > max_cells:
        raise ResampleError(
            f"{len(s.vm_names)} VMs over {t1 - t0:,.0f} s ({(t1 - t0) / 86400:,.1f} days) "
            f"make {n_slots:,} slots of {interval:g} s each, {cells:,} values; the limit is "
            f"{max_cells:,} (a stray timestamp? a longer --interval?)"
        )
    slot = np.floor((s.ts - t0) / interval).astype(np.int64)
    return n_slots, np.minimum(slot, n_slots - 1)


def resample(
    s: Samples, interval: float = 300.0, max_gap: float = 3600.0, max_cells: int = MAX_CELLS
) -> Resampled:
    """Mean per slot, gaps carried forward up to ``max_gap`` seconds, then absent."""
    if not (np.isfinite(interval) and interval > 0 and np.isfinite(max_gap) and max_gap >= 0):
        raise ResampleError(f"interval {interval} s, max gap {max_gap} s: expected > 0 and >= 0")
    n_vms = len(s.vm_names)
    n_slots, slot = _slots(s, interval, max_cells)
    flat = s.vm * n_slots + slot
    count = np.bincount(flat, minlength=n_vms * n_slots).reshape(n_vms, n_slots)
    total = np.bincount(flat, weights=s.cpu_pct, minlength=n_vms * n_slots)
    mean = (total.reshape(n_vms, n_slots) / np.maximum(count, 1)).clip(0.0, 100.0)
    has = count > 0
    cols = np.arange(n_slots)
    last = np.maximum.accumulate(np.where(has, cols[None, :], -1), axis=1)
    present = (last >= 0) & (cols[None, :] - last <= int(max_gap // interval))
    cpu = np.where(present, mean[np.arange(n_vms)[:, None], np.maximum(last, 0)], 0.0)
    report = Resampling(
        vms=n_vms,
        samples=int(s.ts.size),
        slots=n_slots,
        interval_s=float(interval),
        max_gap_s=float(max_gap),
        merged=int(s.ts.size - has.sum()),
        filled=int((present & ~has).sum()),
        absent=int((~present).sum()),
        clipped=s.clipped,
    )
    return Resampled(cpu, present, report)
