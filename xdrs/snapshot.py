"""Read and write ``drs-peer-cluster/1`` snapshots (see README for the xdrs extension).

All validation of a snapshot happens here, at the file boundary, and every problem raises
:class:`SnapshotError` naming the field and the object; :func:`placement.make_state` then
receives trusted arrays. Resources are ``R = 3`` columns: CPU (cores, vCPUs), memory
(MiB), disk (GiB).

Sizes are bounded by :data:`LIMITS` (physical values, so that loads and sums stay finite),
and a file by :data:`xdrs._io.MAX_INPUT_BYTES`; :func:`read_snapshot` prefixes every error
with the file's path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from placement import ClusterState, Rules, StateError, make_state
from placement.constraints import EPS
from placement.rules import RuleError
from xdrs._fields import MISSING, Table, show
from xdrs._io import MAX_INPUT_BYTES, atomic_write, read_bounded
from xdrs._rules_io import parse_rules, rules_doc
from xdrs.actions import action_list, replay_actions, write_actions
from xdrs.errors import SnapshotError

__all__ = [
    "FORMAT",
    "LIMITS",
    "SnapshotError",
    "action_list",
    "parse_snapshot",
    "read_snapshot",
    "replay_actions",
    "snapshot_doc",
    "write_actions",
    "write_snapshot",
]

FORMAT = "drs-peer-cluster/1"
DEFAULT_DOMAIN = "default"
SIZES = ("vcpus", "memory_mb", "disk_gb")
RESERVED = ("vcpu_reserved", "memory_mb_reserved", "disk_gb_reserved")
RATIOS = ("vcpu_ratio", "memory_ratio", "disk_ratio")
POWER_POINTS = 11
# Upper bounds of one host's or VM's numbers, with what they mean (README, "Snapshot
# format"): above today's largest servers (vSphere 8: 896 logical CPUs and 24 TiB per host)
# and low enough that every load and sum over any number of VMs stays finite.
TIB_IN_MIB = 1 << 20
LIMITS: dict[str, tuple[float, str]] = {
    "vcpus": (4096, "4096 cores or vCPUs"),
    "memory_mb": (64 * TIB_IN_MIB, "64 TiB in MiB"),
    "disk_gb": (64 * TIB_IN_MIB, "64 PiB in GiB"),
    "ratio": (1000, "over-commit ratio"),
    "cpu_util_pct": (100, "percent"),
    "power_w": (100_000, "100 kW"),
}

FloatA = NDArray[np.float64]
IntA = NDArray[np.int64]


# ---- reading -----------------------------------------------------------------------------
def read_snapshot(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_INPUT_BYTES
) -> ClusterState:
    """Read a snapshot file of at most ``max_bytes`` (default 1 GiB).

    Every :class:`SnapshotError` starts with ``path``; invalid JSON is reported with its
    line and column. ``OSError`` (missing file, ...) passes through.
    """
    data = read_bounded(path, max_bytes)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise SnapshotError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    try:
        return parse_snapshot(doc)
    except SnapshotError as e:
        raise SnapshotError(f"{path}: {e}") from None


def parse_snapshot(doc: object) -> ClusterState:
    """Validate a decoded snapshot and build the :class:`placement.ClusterState`."""
    if not isinstance(doc, dict):
        raise SnapshotError(f"snapshot: expected a JSON object, got {show(doc)[:40]}")
    if doc.get("format") != FORMAT:
        raise SnapshotError(f"format: expected {FORMAT!r}, got {show(doc.get('format'))}")
    hosts, vms = Table("hosts", doc.get("hosts")), Table("vms", doc.get("vms"))
    if not len(hosts):
        raise SnapshotError("hosts: expected at least one host, got an empty array")
    host_ids, vm_ids = hosts.uuids(), vms.uuids()
    h = _hosts(hosts)
    v = _vms(vms, len(hosts))
    _check_fits(vms, v["alloc"], h["alloc_cap"], h["domain"], v["placement"], h["names"])
    rules = Rules.empty(len(hosts))
    if "rules" in doc:
        index_h = {u: i for i, u in enumerate(host_ids)}
        rules = parse_rules(doc["rules"], index_h, {u: i for i, u in enumerate(vm_ids)})
    try:
        return make_state(host_ids, vm_ids, h["phys"], v["alloc"], v["demand"], v["placement"],
                          alloc_cap=h["alloc_cap"], domain=h["domain"],
                          maintenance=h["maintenance"], disabled=h["disabled"],
                          pinned=v["pinned"], rules=rules, power=h["power"])  # fmt: skip
    except (StateError, RuleError) as e:  # pragma: no cover - checked above
        raise SnapshotError(str(e)) from None


def _sizes(t: Table) -> FloatA:
    """(n, 3) float64: ``vcpus``, ``memory_mb``, ``disk_gb``, each within :data:`LIMITS`."""
    return np.stack([t.numbers(k, *LIMITS[k]) for k in SIZES], axis=1).reshape(len(t), 3)


def _hosts(t: Table) -> dict[str, Any]:
    phys = _sizes(t)
    cap = np.empty_like(phys)
    for r, (res_key, ratio_key) in enumerate(zip(RESERVED, RATIOS, strict=True)):
        res = t.numbers(res_key, *LIMITS[SIZES[r]], default=0)
        t.at_most(res_key, res, SIZES[r], phys[:, r])
        ratio = t.numbers(ratio_key, *LIMITS["ratio"], default=1)
        cap[:, r] = _capacity(phys[:, r], res, ratio)
    names, domain = np.unique(t.strings("domain", DEFAULT_DOMAIN), return_inverse=True)
    return {
        "phys": phys,
        "alloc_cap": cap,
        "domain": domain.astype(np.int64).reshape(len(t)),
        "names": [str(n) for n in names],
        "maintenance": t.flags("maintenance"),
        "disabled": t.flags("disabled"),
        "power": _power(t),
    }


def _capacity(size: FloatA, reserved: FloatA, ratio: FloatA) -> FloatA:
    """Allocation capacity ``(size - reserved) * ratio`` (the writer inverts this formula)."""
    return (size - reserved) * ratio


def _cpu_demand(pct: FloatA, vcpus: FloatA) -> FloatA:
    """Cores busy from ``cpu_util_pct`` (the writer inverts this formula)."""
    return pct / 100.0 * vcpus


def _power(t: Table) -> FloatA | None:
    if not any("power_w" in o for o in t.objs):
        return None
    hi = LIMITS["power_w"][0]
    want = f"an array of {POWER_POINTS} numbers in 0..{hi:g} (watts at 0, 10, ..., 100 % load)"
    rows = []
    for i, o in enumerate(t.objs):
        row = o.get("power_w", MISSING)
        if not isinstance(row, list) or len(row) != POWER_POINTS:
            raise t.fail(i, "power_w", want + ", on every host or none", row)
        if not all(type(x) in (int, float) and 0 <= x <= hi for x in row):
            raise t.fail(i, "power_w", want, row)
        rows.append(row)
    return np.array(rows, dtype=np.float64)


def _vms(t: Table, n_hosts: int) -> dict[str, Any]:
    alloc = _sizes(t)
    pct = t.numbers("cpu_util_pct", *LIMITS["cpu_util_pct"])
    ram = t.numbers("ram_usage_mb", *LIMITS["memory_mb"])
    demand = np.stack([_cpu_demand(pct, alloc[:, 0]), ram, alloc[:, 2]], axis=1)
    demand = demand.reshape(len(t), 3)
    return {
        "alloc": alloc,
        "demand": demand,
        "placement": t.indices("host", n_hosts, "a host"),
        "pinned": t.flags("pinned"),
    }


def _check_fits(
    t: Table, alloc: FloatA, cap: FloatA, domain: IntA, place: IntA, names: list[str]
) -> None:
    """Raise for the first VM whose allocation fits no host of its migration domain."""
    vm_domain = domain[place]
    for d in np.unique(vm_domain).tolist():
        caps = np.unique(cap[domain == d], axis=0)  # few distinct host types
        vms = np.flatnonzero(vm_domain == d)
        vms = vms[~(alloc[vms] <= caps.min(axis=0) + EPS).all(axis=1)]
        for lo in range(0, len(vms), 1024):
            sub = vms[lo : lo + 1024]
            fits: NDArray[np.bool_] = np.any(
                np.all(alloc[sub, None, :] <= caps[None] + EPS, axis=2), axis=1
            )
            if not fits.all():
                raise _too_big(t, int(sub[~fits][0]), alloc, caps.max(axis=0), names[d])


def _too_big(t: Table, v: int, alloc: FloatA, biggest: FloatA, dom: str) -> SnapshotError:
    where = f"{t.where(v)} in migration domain {dom!r}"
    over = np.flatnonzero(alloc[v] > biggest + EPS).tolist()
    if over:
        r = over[0]
        return SnapshotError(
            f"{t.where(v)}.{SIZES[r]}: {alloc[v, r]:g} exceeds the allocation capacity of "
            f"every host of its migration domain {dom!r} (largest {biggest[r]:g})"
        )
    sizes = ", ".join(f"{k} {x:g}" for k, x in zip(SIZES, alloc[v], strict=True))
    return SnapshotError(f"{where}: allocation ({sizes}) fits no single host of the domain")


# ---- writing -----------------------------------------------------------------------------
def write_snapshot(
    state: ClusterState, path: str | os.PathLike[str], placement: IntA | None = None
) -> None:
    """Write ``state`` (with ``placement`` if given) atomically.

    Reading the file back gives equal arrays, with two exceptions: domain ids are renumbered
    densely in their order, and CPU demand passes through ``cpu_util_pct``, which cannot
    represent every float (it comes back within a few ulps).
    """
    atomic_write(path, orjson.dumps(snapshot_doc(state, placement), option=orjson.OPT_INDENT_2))


def snapshot_doc(state: ClusterState, placement: IntA | None = None) -> dict[str, Any]:
    """The snapshot as a JSON-ready dict."""
    place = state.placement if placement is None else placement
    doc: dict[str, Any] = {
        "format": FORMAT,
        "units": {"vcpus": "cores / vCPUs", "memory_mb": "MiB", "disk_gb": "GiB"},
        "generator": {"name": "xdrs"},
        "hosts": _hosts_doc(state),
        "vms": _vms_doc(state, place),
    }
    if not state.rules.is_empty or state.rules.vv_names or state.rules.vh_names:
        doc["rules"] = rules_doc(state)
    return doc


def _hosts_doc(state: ClusterState) -> list[dict[str, Any]]:
    phys, cap = state.phys, state.alloc_cap
    if ((phys == 0) & (cap > 0)).any():
        raise ValueError("cannot write a host with allocation capacity but size 0")
    guess = np.divide(cap, phys, out=np.ones_like(cap), where=phys > 0)
    ratio = _invert(cap, guess, lambda x: _capacity(phys, np.zeros_like(phys), x))
    cols: dict[str, list[Any]] = {k: _jnum(phys[:, r]) for r, k in enumerate(SIZES)}
    cols |= {k: _jnum(ratio[:, r]) for r, k in enumerate(RATIOS)}
    hosts = [
        {"uuid": u, "hostname": u} | dict(zip(cols, vals, strict=True))
        for u, *vals in zip(state.host_ids, *cols.values(), strict=True)
    ]
    _extension(hosts, "maintenance", state.maintenance)
    _extension(hosts, "disabled", state.disabled)
    if state.domain.size and state.domain.max() > 0:
        width = len(str(int(state.domain.max())))
        for h, d in zip(hosts, state.domain.tolist(), strict=True):
            h["domain"] = f"domain-{d:0{width}d}"
    if state.power is not None:
        for h, row in zip(hosts, state.power.tolist(), strict=True):
            h["power_w"] = _jnum(np.array(row))
    return hosts


def _vms_doc(state: ClusterState, place: IntA) -> list[dict[str, Any]]:
    vcpus, cores = state.alloc[:, 0], state.demand[:, 0]
    guess = np.divide(cores, vcpus, out=np.zeros_like(cores), where=vcpus > 0) * 100.0
    pct = _invert(cores, guess, lambda x: _cpu_demand(x, vcpus))
    cols: dict[str, list[Any]] = {k: _jnum(state.alloc[:, r]) for r, k in enumerate(SIZES)}
    cols["cpu_util_pct"] = _jnum(pct)
    cols["ram_usage_mb"] = _jnum(state.demand[:, 1])
    cols["host"] = place.tolist()
    vms = [
        {"uuid": u} | dict(zip(cols, vals, strict=True))
        for u, *vals in zip(state.vm_ids, *cols.values(), strict=True)
    ]
    _extension(vms, "pinned", state.pinned)
    return vms


def _extension(objs: list[dict[str, Any]], key: str, flags: NDArray[np.bool_]) -> None:
    """Set an optional boolean key only where it is true (files stay plain otherwise)."""
    for i in np.flatnonzero(flags).tolist():
        objs[i][key] = True


def _invert(target: FloatA, guess: FloatA, forward: Callable[[FloatA], FloatA]) -> FloatA:
    """Nudge ``guess`` by a few ulps so that ``forward(x) == target`` exactly where possible."""
    best = guess.copy()
    done = forward(best) == target
    up = down = guess
    for _ in range(4):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        for cand in (up, down):
            hit = ~done & (forward(cand) == target)
            best[hit] = cand[hit]
            done |= hit
    return best


def _jnum(a: FloatA) -> list[int | float]:
    """Integral values as JSON integers (the format's sizes are ints), others as floats."""
    return [int(x) if x.is_integer() and abs(x) < 2**53 else x for x in a.tolist()]
