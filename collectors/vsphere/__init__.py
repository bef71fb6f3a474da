"""vSphere adapter (pyvmomi): inventory, rules, metrics, change watching, relocation.

Everything here produces plain records (:mod:`collectors.vsphere.records`); turning them
into events, and events into a :class:`placement.ClusterState`, is the caller's business
(:func:`to_cluster_state` does the latter directly for the snapshot command). pyvmomi is
imported only inside this package (install the ``vsphere`` extra).
"""

from collectors.vsphere.actuator import apply_actions, relocate
from collectors.vsphere.collector import CollectorOptions, Sink, VSphereCollector
from collectors.vsphere.connection import (
    PASSWORD_ENV,
    AuthError,
    Connection,
    ConnectionSpec,
    TLSError,
    VSphereError,
    read_password,
)
from collectors.vsphere.inventory import collect_inventory
from collectors.vsphere.mapping import MappingOptions, to_cluster_state
from collectors.vsphere.metrics import PerfCollector, quickstats_samples
from collectors.vsphere.records import (
    Change,
    ClusterRecord,
    HostRecord,
    Inventory,
    MetricSample,
    MoveResult,
    RuleRecord,
    VMRecord,
)
from collectors.vsphere.watch import UpdateWatcher

__all__ = [
    "PASSWORD_ENV",
    "AuthError",
    "Change",
    "ClusterRecord",
    "CollectorOptions",
    "Connection",
    "ConnectionSpec",
    "HostRecord",
    "Inventory",
    "MappingOptions",
    "MetricSample",
    "MoveResult",
    "PerfCollector",
    "RuleRecord",
    "Sink",
    "TLSError",
    "UpdateWatcher",
    "VMRecord",
    "VSphereCollector",
    "VSphereError",
    "apply_actions",
    "collect_inventory",
    "quickstats_samples",
    "read_password",
    "relocate",
    "to_cluster_state",
]
