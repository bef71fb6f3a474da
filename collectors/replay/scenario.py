"""Replay scenarios: the simulated data centre a trace is replayed on.

A scenario file (JSON, ``"format": "xdrs-replay-scenario/1"``) names the clusters and their
hosts, the VM flavors, and how VMs are first placed; the trace gives each VM's CPU use.
Every field is optional; :data:`DEFAULT` is the demo's data centre.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta, Struct
from numpy.typing import NDArray

from collectors._schema import Name, explain

__all__ = [
    "DEFAULT",
    "ClusterSpec",
    "Flavor",
    "HostGroup",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
]

FORMAT: Literal["xdrs-replay-scenario/1"] = "xdrs-replay-scenario/1"
MAX_FILE_BYTES = 16 << 20
Hosts = Annotated[int, Meta(ge=1, le=100_000)]
Cores = Annotated[int, Meta(ge=1, le=4096)]
MiB = Annotated[int, Meta(ge=1, le=1 << 32)]
GiB = Annotated[int, Meta(ge=0, le=1 << 30)]
Ratio = Annotated[float, Meta(gt=0, le=1000)]
Reserve = Annotated[float, Meta(ge=0, le=1 << 32)]
Share = Annotated[float, Meta(ge=0, le=1e6)]


class ScenarioError(ValueError):
    """An invalid scenario; the message names the file and field."""


class _Spec(Struct, frozen=True, forbid_unknown_fields=True):
    """Common configuration: immutable, unknown fields refused."""


class HostGroup(_Spec, frozen=True):
    """``count`` identical hosts; reserved capacity is taken off before the ratio."""

    count: Hosts
    vcpus: Cores
    memory_mb: MiB
    disk_gb: GiB = 2000
    vcpu_ratio: Ratio = 4.0
    memory_ratio: Ratio = 1.0
    vcpu_reserved: Reserve = 0.0
    memory_mb_reserved: Reserve = 4096.0

    def __post_init__(self) -> None:
        if self.vcpu_reserved > self.vcpus:
            raise ValueError(f"vcpu_reserved: {self.vcpu_reserved:g} exceeds vcpus {self.vcpus}")
        if self.memory_mb_reserved > self.memory_mb:
            raise ValueError(f"memory_mb_reserved: {self.memory_mb_reserved:g} exceeds "
                             f"memory_mb {self.memory_mb}")  # fmt: skip


class Flavor(_Spec, frozen=True):
    """A VM size; ``share`` is its relative frequency among the VMs."""

    vcpus: Cores
    memory_mb: MiB
    disk_gb: GiB = 40
    share: Share = 1.0


class ClusterSpec(_Spec, frozen=True):
    name: Name
    hosts: Annotated[list[HostGroup], Meta(min_length=1)]


class Scenario(_Spec, frozen=True):
    """Clusters of host groups, VM flavors, and the initial placement.

    placement : ``"skewed"`` packs VMs onto a few popular hosts first (an unbalanced start, as
        after a maintenance window); ``"spread"`` deals them round-robin.
    memory_base : resident memory of an idle VM as a share of its allocation; it grows
        linearly to 1 at 100 % CPU (PlanetLab traces carry CPU only).
    """

    format: Literal["xdrs-replay-scenario/1"]
    clusters: Annotated[list[ClusterSpec], Meta(min_length=1)]
    flavors: Annotated[list[Flavor], Meta(min_length=1)]
    trace: Name = "planetlab:20110303"
    vms: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    placement: Literal["skewed", "spread"] = "skewed"
    memory_base: Annotated[float, Meta(ge=0, le=1)] = 0.5
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0

    def __post_init__(self) -> None:
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError("clusters: two clusters share a name")

    def host_groups(self) -> dict[str, list[HostGroup]]:
        """Cluster name -> its host groups, in file order."""
        return {c.name: c.hosts for c in self.clusters}


DEFAULT = Scenario(
    FORMAT,
    clusters=[
        ClusterSpec("replay-a", [HostGroup(16, 16, 131072), HostGroup(8, 32, 262144)]),
        ClusterSpec("replay-b", [HostGroup(24, 16, 131072)]),
    ],
    flavors=[Flavor(1, 2048, 20, 0.5), Flavor(2, 4096, 40, 0.35), Flavor(4, 8192, 80, 0.15)],
)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file; :class:`ScenarioError` names the file and field."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror or e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        return _checked(lambda: msgspec.json.decode(data, type=Scenario))
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from None


def parse_scenario(doc: object) -> Scenario:
    """Validate a scenario given as parsed JSON (a dict)."""
    return _checked(lambda: msgspec.convert(doc, Scenario))


def _checked(read: Callable[[], Scenario]) -> Scenario:
    try:
        return read()
    except msgspec.ValidationError as e:
        text = explain(e, "$")
        raise ScenarioError(text[2:] if text.startswith("$.") else "scenario" + text[1:]) from None
    except msgspec.DecodeError as e:
        raise ScenarioError(f"not valid JSON: {str(e)[:200]}") from None
    except RecursionError:
        raise ScenarioError("not valid JSON: nested too deeply") from None


def flavor_choice(flavors: list[Flavor], n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    share = np.array([f.share for f in flavors], dtype=np.float64)
    if share.sum() <= 0:
        share = np.ones_like(share)
    return rng.choice(len(flavors), size=n, p=share / share.sum())
