"""The data centre described by a file: ``xdrs-datacenter/1`` JSON or YAML (by the suffix
``.yaml``/``.yml``; YAML needs pyyaml, in the ``sim`` extra), or a ``drs-peer-cluster/1``
snapshot's hosts. Without a file the paper's setup (800 HP ML110 G4/G5) stays the default.

``xdrs-datacenter/1``::

    {"format": "xdrs-datacenter/1",
     "hosts": [{"name": "R640", "count": 40, "cores": 40, "core_mhz": 2400,
                "memory_mb": 393216, "network_gbps": 10,
                "power_w": [idle, 10 %, ..., 100 %]            (11 values, W)
                or "specpower": [[load %, W], ...]}],           (at least 0 and 100 %)
     "vms": [{"name": "m.large", "vcpus": 2, "mhz_per_vcpu": 2400, "memory_mb": 8192}]}

The same in YAML (a fuller example: ``examples/datacenter.yaml``)::

    format: xdrs-datacenter/1
    hosts:
      - {name: R640, count: 40, cores: 40, core_mhz: 2400, memory_mb: 393216,
         specpower: [[0, 55], [50, 160], [100, 290]]}
    vms:
      - {name: m.large, vcpus: 2, mhz_per_vcpu: 2400, memory_mb: 8192}

YAML anchors and aliases are refused (a few lines of aliases can expand to billions of
nodes), and so are nesting deeper than 32 levels and a file over 16 MiB.

``vms`` (optional, default the paper's four types) sizes the VMs a trace does not size;
they take the types in equal contiguous blocks in trace order, as CloudSim does. VMs of a
described data centre may have several vCPUs, so a VM's demand is capped by its host, not
by one core. A snapshot gives the hosts only (its CPU is counted in cores: ``core_mhz``
then comes from ``--core-mhz``); hosts without a power curve get the HP ML110 G5 curve.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Annotated

import msgspec
import numpy as np
from msgspec import Meta

from xdrs.errors import SnapshotError
from xdrs.limits import MAX_HOSTS
from xdrs.sim.setup import PAPER_HOSTS, PAPER_VMS, Datacenter, HostType, VmType
from xdrs.snapshot import read_snapshot

__all__ = ["FORMAT", "DatacenterError", "read_datacenter"]

FORMAT = "xdrs-datacenter/1"
GBPS = 1_000_000.0  # CloudSim's bandwidth unit: 1,000,000 = 1 Gbit/s

Pos = Annotated[float, Meta(gt=0, le=1e9)]
Watts = Annotated[float, Meta(ge=0, le=1e6)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32  # a data-centre file needs 4 levels
YAML_SUFFIXES = (".yaml", ".yml")


class _Host(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    count: Annotated[int, Meta(ge=1, le=MAX_HOSTS)]
    cores: Annotated[int, Meta(ge=1, le=100_000)]
    core_mhz: Pos
    memory_mb: Pos
    network_gbps: Pos = 10.0
    power_w: Annotated[list[Watts], Meta(min_length=11, max_length=11)] | None = None
    specpower: list[tuple[Annotated[float, Meta(ge=0, le=100)], Watts]] | None = None


class _Vm(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    vcpus: Annotated[int, Meta(ge=1, le=100_000)]
    mhz_per_vcpu: Pos
    memory_mb: Pos


class _File(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    hosts: Annotated[list[_Host], Meta(min_length=1, max_length=1000)]
    vms: Annotated[list[_Vm], Meta(max_length=1000)] = []


class DatacenterError(ValueError):
    """A data-centre file that cannot be used; the message names the file and field."""


def _curve(path: Path, i: int, h: _Host) -> tuple[float, ...]:
    where = f"{path}: $.hosts[{i}]"
    if (h.power_w is None) == (h.specpower is None):
        raise DatacenterError(f"{where}: expected one of power_w (11 values) or specpower")
    if h.power_w is not None:
        return tuple(h.power_w)
    pts = sorted(h.specpower or [])
    loads = [p[0] for p in pts]
    if len(set(loads)) != len(loads) or loads[0] != 0 or loads[-1] != 100:
        raise DatacenterError(
            f"{where}.specpower: expected distinct [load %, W] points from 0 to 100 %, got {loads}"
        )
    watts = np.interp(np.arange(0, 101, 10), loads, [p[1] for p in pts])
    return tuple(float(w) for w in watts)


def _host_type(path: Path, i: int, h: _Host) -> HostType:
    return HostType(h.name, h.cores, h.core_mhz, h.memory_mb, h.network_gbps * GBPS,
                    _curve(path, i, h))  # fmt: skip


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise DatacenterError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise DatacenterError(f"{path}: larger than {MAX_BYTES:,} bytes")
    return raw


def _yaml(path: Path, raw: bytes) -> object:
    """The YAML document in ``raw`` as plain Python values (no aliases)."""
    try:
        import yaml  # noqa: PLC0415 - lazy: an optional package, needed for YAML files only
    except ImportError:
        raise DatacenterError(
            f"{path}: YAML needs the pyyaml package (pip install 'xdrs[sim]'); or use JSON"
        ) from None
    try:
        _check_events(path, yaml.parse(raw, Loader=yaml.SafeLoader), yaml)
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise DatacenterError(f"{path}: not YAML: {str(e)[:300]}") from None
    except RecursionError:
        raise DatacenterError(f"{path}: not YAML: nested too deeply") from None


def _check_events(path: Path, events: Iterable[object], yaml: ModuleType) -> None:
    """Refuse aliases and nesting deeper than :data:`MAX_DEPTH`, reading the events as they
    come (PyYAML's time grows with the square of the nesting depth)."""
    depth = 0
    for ev in events:
        if isinstance(ev, yaml.AliasEvent):
            raise DatacenterError(f"{path}: YAML aliases (*name) are not accepted; write it out")
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise DatacenterError(f"{path}: YAML nested deeper than {MAX_DEPTH} levels")
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1


def _decode(path: Path) -> _File | dict[str, object]:
    raw = _read(path)
    yaml_file = path.suffix.lower() in YAML_SUFFIXES
    try:
        doc = _yaml(path, raw) if yaml_file else msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise DatacenterError(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, "drs-peer-cluster/1"):
        raise DatacenterError(f'{path}: expected "format": "{FORMAT}" or drs-peer-cluster/1')
    if doc["format"] != FORMAT:
        if yaml_file:
            raise DatacenterError(f"{path}: a drs-peer-cluster/1 snapshot is JSON; name it .json")
        return doc
    try:
        if yaml_file:
            return msgspec.convert(doc, type=_File)
        return msgspec.json.decode(raw, type=_File)
    except msgspec.ValidationError as e:
        raise DatacenterError(f"{path}: {e}") from None


def read_datacenter(
    path: str | Path, *, core_mhz: float = 2600.0, memory_aware: bool = True
) -> Datacenter:
    """The :class:`Datacenter` a file describes (memory checked at every placement)."""
    p = Path(path)
    doc = _decode(p)
    if isinstance(doc, dict):
        return _from_snapshot(p, core_mhz, memory_aware)
    types = tuple(_host_type(p, i, h) for i, h in enumerate(doc.hosts))
    counts = tuple(h.count for h in doc.hosts)
    if sum(counts) > MAX_HOSTS:
        raise DatacenterError(f"{p}: {sum(counts):,} hosts; at most {MAX_HOSTS:,}")
    vms = tuple(VmType(v.name, v.vcpus * v.mhz_per_vcpu, v.memory_mb) for v in doc.vms)
    return Datacenter(
        n_hosts=sum(counts), host_types=types, host_counts=counts, vm_types=vms or PAPER_VMS,
        memory_aware=memory_aware, per_core_cap=False,
    )  # fmt: skip


def _from_snapshot(p: Path, core_mhz: float, memory_aware: bool) -> Datacenter:
    """Hosts of a ``drs-peer-cluster/1`` snapshot, one host type per host (in order)."""
    if not (math.isfinite(core_mhz) and core_mhz > 0):
        raise DatacenterError(f"core MHz {core_mhz}: expected a finite number > 0")
    try:
        st = read_snapshot(p)
    except SnapshotError as e:
        raise DatacenterError(str(e)) from None
    except OSError as e:
        raise DatacenterError(f"{p}: cannot read: {e.strerror or e}") from None
    g5 = PAPER_HOSTS[1].power
    types = []
    for i, hid in enumerate(st.host_ids):
        cores, mem = int(st.phys[i, 0]), float(st.phys[i, 1])
        if cores <= 0 or mem <= 0:
            raise DatacenterError(f"{p}: host {hid!r} has no vCPUs or no memory")
        power = tuple(float(w) for w in st.power[i]) if st.power is not None else g5
        types.append(HostType(hid, cores, core_mhz, mem, 10 * GBPS, power))
    return Datacenter(
        n_hosts=len(types), host_types=tuple(types), host_counts=(1,) * len(types),
        memory_aware=memory_aware, per_core_cap=False,
    )  # fmt: skip
