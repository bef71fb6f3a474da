"""The ``rules`` extension of a snapshot: parsed to and from :class:`placement.Rules`.

A rule that lists a VM (or host) twice is rejected with the rule's index and name rather
than silently de-duplicated: the duplicate is almost always a mistake in the generator, and
saying so is clearer than guessing what was meant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from placement import ClusterState, Rules
from placement.rules import KIND_NAMES
from xdrs._fields import show
from xdrs.errors import SnapshotError

__all__ = ["parse_rules", "rules_doc"]

VV_TYPES = {"affinity": False, "anti_affinity": True}
TYPES = (*VV_TYPES, "vm_host")

VV = tuple[str, bool, list[int]]
VH = tuple[str, int, list[int], list[int]]


def parse_rules(raw: object, hosts: dict[str, int], vms: dict[str, int]) -> Rules:
    """Rules from the top-level ``rules`` array; uuids are mapped to indices."""
    if not isinstance(raw, list):
        raise SnapshotError(f"rules: expected an array of rule objects, got {show(raw)}")
    vv: list[VV] = []
    vh: list[VH] = []
    names: set[str] = set()
    for i, rule in enumerate(raw):
        name = _name(i, rule, names)
        where = f"rules[{i}] (name {name!r})"
        kind = rule.get("type", None)
        if kind not in TYPES:
            raise SnapshotError(
                f"{where}.type: expected one of {', '.join(TYPES)}, got {show(kind)}"
            )
        members = _uuids(where, "vms", rule, vms, "VM")
        if kind in VV_TYPES:
            vv.append((name, VV_TYPES[kind], members))
        else:
            vh.append(
                (name, _kind(where, rule), members, _uuids(where, "hosts", rule, hosts, "host"))
            )
    return Rules.build(len(hosts), vv=vv, vh=vh)


def _name(i: int, rule: object, seen: set[str]) -> str:
    if not isinstance(rule, dict):
        raise SnapshotError(f"rules[{i}]: expected an object, got {show(rule)}")
    name = rule.get("name", None)
    if not isinstance(name, str) or not name:
        raise SnapshotError(f"rules[{i}].name: expected a non-empty string, got {show(name)}")
    if name in seen:
        raise SnapshotError(f"rules[{i}].name: duplicate rule name {name!r}")
    seen.add(name)
    return name


def _kind(where: str, rule: dict[str, Any]) -> int:
    kind = rule.get("kind")
    if kind not in KIND_NAMES:
        raise SnapshotError(
            f"{where}.kind: expected one of {', '.join(KIND_NAMES)}, got {show(kind)}"
        )
    return KIND_NAMES.index(kind)


def _uuids(
    where: str, key: str, rule: dict[str, Any], index: dict[str, int], what: str
) -> list[int]:
    ids = rule.get(key)
    if not isinstance(ids, list):
        raise SnapshotError(f"{where}.{key}: expected an array of {what} uuids, got {show(ids)}")
    first: dict[str, int] = {}
    for j, u in enumerate(ids):
        if not isinstance(u, str) or u not in index:
            raise SnapshotError(f"{where}.{key}[{j}]: unknown {what} uuid {show(u)}")
        if u in first:
            # a VM listed twice would conflict with itself (anti-affinity) and be moved
            raise SnapshotError(
                f"{where}.{key}[{j}]: {what} uuid {u!r} is listed twice (also at "
                f"{key}[{first[u]}]); list each {what} once"
            )
        first[u] = j
    return [index[u] for u in ids]


def rules_doc(state: ClusterState) -> list[dict[str, object]]:
    """The ``rules`` array describing ``state.rules`` (empty when there are none)."""
    r, vid, hid = state.rules, state.vm_ids, state.host_ids
    out: list[dict[str, object]] = []
    for g, name in enumerate(r.vv_names):
        kind = "anti_affinity" if r.vv_anti[g] else "affinity"
        members = [vid[v] for v in r.vv_vm[r.vv_group == g].tolist()]
        out.append({"name": name, "type": kind, "vms": members})
    for k, name in enumerate(r.vh_names):
        out.append(
            {
                "name": name,
                "type": "vm_host",
                "kind": KIND_NAMES[int(r.vh_kind[k])],
                "vms": [vid[v] for v in r.vh_vm[r.vh_rule == k].tolist()],
                "hosts": [hid[h] for h in np.flatnonzero(r.vh_hosts[k]).tolist()],
            }
        )
    return out
