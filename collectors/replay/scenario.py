"""Replay scenarios: the simulated data centre a trace is replayed on.

A scenario file (JSON, ``"format": "xdrs-replay-scenario/1"``) names the clusters and their
hosts, the VM flavors, and how VMs are first placed; the trace gives each VM's CPU use.
Every field is optional; :data:`DEFAULT` is the demo's data centre.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

__all__ = ["DEFAULT", "HostGroup", "Scenario", "ScenarioError", "load_scenario", "parse_scenario"]

FORMAT = "xdrs-replay-scenario/1"


class ScenarioError(ValueError):
    """An invalid scenario; the message names the file and field."""


@dataclass(frozen=True)
class HostGroup:
    count: int
    vcpus: int
    memory_mb: int
    disk_gb: int = 2000
    vcpu_ratio: float = 4.0
    memory_ratio: float = 1.0
    vcpu_reserved: float = 0.0
    memory_mb_reserved: float = 4096.0


@dataclass(frozen=True)
class Flavor:
    vcpus: int
    memory_mb: int
    disk_gb: int = 40
    share: float = 1.0


@dataclass(frozen=True)
class Scenario:
    """Clusters of host groups, VM flavors, and the initial placement.

    placement : ``"skewed"`` packs VMs onto a few popular hosts first (an unbalanced start, as
        after a maintenance window); ``"spread"`` deals them round-robin.
    memory_base : resident memory of an idle VM as a share of its allocation; it grows
        linearly to 1 at 100 % CPU (PlanetLab traces carry CPU only).
    """

    clusters: dict[str, list[HostGroup]]
    flavors: list[Flavor]
    trace: str = "planetlab:20110303"
    vms: int | None = None
    placement: str = "skewed"
    memory_base: float = 0.5
    seed: int = 0


DEFAULT = Scenario(
    clusters={
        "replay-a": [HostGroup(16, 16, 131072), HostGroup(8, 32, 262144)],
        "replay-b": [HostGroup(24, 16, 131072)],
    },
    flavors=[Flavor(1, 2048, 20, 0.5), Flavor(2, 4096, 40, 0.35), Flavor(4, 8192, 80, 0.15)],
)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    try:
        with open(path, "rb") as f:
            doc = orjson.loads(f.read())
    except orjson.JSONDecodeError as e:
        raise ScenarioError(f"{path}: not valid JSON: {e}") from None
    try:
        return parse_scenario(doc)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from None


def parse_scenario(doc: object) -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError("expected a JSON object")
    if doc.get("format") != FORMAT:
        raise ScenarioError(f"format: expected {FORMAT!r}, got {doc.get('format')!r}")
    clusters = _clusters(doc.get("clusters"))
    flavors = [_obj(Flavor, f"flavors[{i}]", f) for i, f in enumerate(_list(doc, "flavors"))]
    if not flavors:
        raise ScenarioError("flavors: expected at least one flavor")
    vms = doc.get("vms")
    if vms is not None and (type(vms) is not int or vms <= 0):
        raise ScenarioError(f"vms: expected an integer > 0, got {vms!r}")
    placement = doc.get("placement", "skewed")
    if placement not in ("skewed", "spread"):
        raise ScenarioError(f"placement: expected 'skewed' or 'spread', got {placement!r}")
    base = doc.get("memory_base", 0.5)
    if type(base) not in (int, float) or not 0 <= base <= 1:
        raise ScenarioError(f"memory_base: expected a number in 0..1, got {base!r}")
    return Scenario(
        clusters,
        flavors,
        str(doc.get("trace", DEFAULT.trace)),
        vms,
        placement,
        float(base),
        int(doc.get("seed", 0)),
    )


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise ScenarioError(f"{key}: expected an array, got {value!r:.60}")
    return value


def _clusters(value: object) -> dict[str, list[HostGroup]]:
    if not isinstance(value, list) or not value:
        raise ScenarioError("clusters: expected a non-empty array")
    out: dict[str, list[HostGroup]] = {}
    for i, c in enumerate(value):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise ScenarioError(f"clusters[{i}].name: expected a non-empty string")
        if c["name"] in out:
            raise ScenarioError(f"clusters[{i}].name: duplicate cluster {c['name']!r}")
        groups = _list(c, "hosts")
        out[c["name"]] = [
            _obj(HostGroup, f"clusters[{i}].hosts[{j}]", g) for j, g in enumerate(groups)
        ]
        if not out[c["name"]]:
            raise ScenarioError(f"clusters[{i}].hosts: expected at least one host group")
    return out


def _obj(cls: type[Any], where: str, raw: object) -> Any:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected an object")
    fields = cls.__dataclass_fields__
    for key, value in raw.items():
        if key not in fields:
            raise ScenarioError(f"{where}.{key}: unknown field")
        if type(value) not in (int, float) or not np.isfinite(value) or value < 0:
            raise ScenarioError(f"{where}.{key}: expected a number >= 0, got {value!r}")
    try:
        obj = cls(**raw)
    except TypeError as e:
        raise ScenarioError(f"{where}: {e}") from None
    for key in ("count", "vcpus", "memory_mb"):
        if key in fields and getattr(obj, key) <= 0:
            raise ScenarioError(f"{where}.{key}: expected a number > 0")
    return obj


def flavor_choice(flavors: list[Flavor], n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    share = np.array([f.share for f in flavors], dtype=np.float64)
    if share.sum() <= 0:
        share = np.ones_like(share)
    return rng.choice(len(flavors), size=n, p=share / share.sum())
