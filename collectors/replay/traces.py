"""Utilisation traces, the one definition for the replay collector and the what-if simulator.

A trace is the CPU utilisation of ``V`` VMs sampled every ``step_s`` seconds. Sources:

- ``planetlab:<day>``: the folder ``<trace_dir>/planetlab/<day>/`` (CloudSim's PlanetLab
  set): one file per VM, one CPU percentage per line, one line per 5 minutes. The published
  files hold integers; decimals are accepted too (they are real measurements). Hidden
  files (``.DS_Store``, editor swap files) are not VMs and are ignored, as are blank
  lines. When the folder does not exist and the day is the one shipped with the package
  (20110303), the packaged copy is used.
- a PlanetLab day folder given by its path;
- ``csv:<file>`` or a ``.csv`` file: a generic CSV (:func:`formats.read_table`);
- ``bitbrains:<folder>``: a Bitbrains GWA-T-12 folder (one ``;``-separated file per VM);
- ``azure:<file>``: the Azure public dataset's ``vm_cpu_readings`` layout.

PlanetLab days are evenly sampled by construction and keep CloudSim's rules (``paper``).
Every other source has real timestamps and is resampled onto the decision interval
(:mod:`collectors.replay.resample`): mean within a slot, gaps carried forward up to
``max_gap`` seconds, then the VM is absent; ``Trace.resampling`` says what that did.

Every error is a :class:`TraceError` whose message names the file and, where there is
one, the line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from collectors.replay.formats import FormatError, read_azure, read_bitbrains, read_table
from collectors.replay.resample import ResampleError, Resampling, Samples, resample

__all__ = [
    "MAX_GAP_S",
    "PACKAGED_DAY",
    "STEP_S",
    "Resampling",
    "Trace",
    "TraceError",
    "first_hours",
    "load_trace",
    "read_csv",
    "read_planetlab",
    "traces_root",
]

FloatA = NDArray[np.float64]
STEP_S = 300.0  # PlanetLab's sampling interval
PACKAGED_DAY = "20110303"
MAX_GAP_S = 3600.0  # a VM without samples for longer than this is absent
BoolA = NDArray[np.bool_]


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
    paper : CloudSim's rules apply (a PlanetLab day: a VM is destroyed at its first 0 %)
    present : (V, T) bool or None (all present): False where the VM has no value
    vcpus, vm_mhz : (V,) float64 or None, each VM's vCPUs and CPU capacity (0: unknown)
    resampling : what resampling did, for sources with real timestamps
    """

    name: str
    vm_names: tuple[str, ...]
    cpu_pct: FloatA
    step_s: float = STEP_S
    mem_mb: FloatA | None = None
    paper: bool = False
    present: BoolA | None = None
    vcpus: FloatA | None = None
    vm_mhz: FloatA | None = None
    resampling: Resampling | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.cpu_pct)
        ok_present = self.present is None or np.shape(self.present) == shape
        if (
            len(shape) != 2
            or shape[0] != len(self.vm_names)
            or not self.step_s > 0
            or not ok_present
        ):
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


def first_hours(trace: Trace, hours: float) -> Trace:
    """The first ``hours`` of ``trace`` (at least two samples: one simulated interval)."""
    steps = max(2, min(trace.n_steps, math.ceil(hours * 3600.0 / trace.step_s)))
    present = None if trace.present is None else trace.present[:, :steps]
    return replace(trace, cpu_pct=trace.cpu_pct[:, :steps], present=present)


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
    return Trace(str(d), tuple(names), np.array(rows, dtype=np.float64), paper=True)


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
    return Trace(f"packaged:{PACKAGED_DAY}", tuple(names), cpu, paper=True)


# -- sampled traces (CSV, Bitbrains, Azure) -------------------------------------------------


def _resampled(name: str, read: Callable[[], Samples], interval: float, max_gap: float) -> Trace:
    try:
        s = read()
        r = resample(s, interval, max_gap)
    except FormatError as e:
        raise TraceError(str(e)) from None
    except ResampleError as e:
        raise TraceError(f"{name}: {e}") from None
    return Trace(
        name, s.vm_names, r.cpu_pct, interval, _known(s.mem_mb), present=r.present,
        vcpus=_known(s.vcpus), vm_mhz=_known(s.vm_mhz), resampling=r.report,
    )  # fmt: skip


def _known(sizes: FloatA | None) -> FloatA | None:
    return sizes if sizes is not None and bool((sizes > 0).any()) else None


def read_csv(
    path: str | os.PathLike[str], interval: float = STEP_S, max_gap: float = MAX_GAP_S
) -> Trace:
    """Read a generic CSV (:func:`collectors.replay.formats.read_table`) resampled onto
    ``interval`` seconds (:func:`collectors.replay.resample.resample`)."""
    return _resampled(str(path), lambda: read_table(Path(path)), interval, max_gap)


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
    *,
    interval: float = STEP_S,
    max_gap: float = MAX_GAP_S,
) -> Trace:
    """Load ``planetlab:<day>``, ``csv:<file>``, ``bitbrains:<folder>``, ``azure:<file>``,
    a PlanetLab folder or a ``.csv`` file.

    For ``planetlab:<day>`` the folder is ``trace_dir/planetlab/<day>``; the packaged day
    (20110303) is used when that folder does not exist (or no ``trace_dir`` is given).
    When ``order_dir`` has ``<day>.txt``, VMs are numbered in that order (CloudSim's), else
    by sorted file name. Other sources are resampled onto ``interval`` seconds with gaps
    carried forward up to ``max_gap`` seconds.
    """
    kind, _, rest = spec.partition(":")
    if kind == "planetlab" and rest:
        return _planetlab_day(spec, rest, trace_dir, order_dir)
    readers: dict[str, Callable[[Path], Samples]] = {
        "csv": read_table, "bitbrains": read_bitbrains, "azure": read_azure,
    }  # fmt: skip
    if kind in readers and rest:
        read = readers[kind]
        return _resampled(rest, lambda: read(Path(rest)), interval, max_gap)
    p = Path(spec)
    if p.is_dir():
        return read_planetlab(p)
    if p.suffix == ".csv":
        return read_csv(p, interval, max_gap)
    raise TraceError(
        f"trace {spec!r}: expected planetlab:<day>, csv:<file>, bitbrains:<folder>, "
        "azure:<file>, a folder or a .csv file"
    )


def _planetlab_day(
    spec: str,
    day: str,
    trace_dir: str | os.PathLike[str] | None,
    order_dir: str | os.PathLike[str] | None,
) -> Trace:
    order = _order(order_dir, day)
    folder = Path(trace_dir) / "planetlab" / day if trace_dir is not None else None
    if (folder is None or not folder.is_dir()) and day == PACKAGED_DAY:
        return _packaged(order)  # a fresh clone without the trace set
    if folder is None:
        raise TraceError(f"trace {spec!r}: no trace directory given")
    return read_planetlab(folder, order)
