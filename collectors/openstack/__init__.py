"""OpenStack adapter (openstacksdk): inventory from Nova and Placement, live migration.

Everything here produces plain records (:mod:`collectors.openstack.inventory`), xdrs
inventory events or a :class:`placement.ClusterState` (:mod:`collectors.openstack.mapping`);
:class:`NovaMover` is the platform's :class:`collectors.platform.Mover`. openstacksdk is
imported only inside this package (install the ``openstack`` extra).
"""

from collectors.openstack.connection import AuthError, CloudSpec, OpenStackError, connect
from collectors.openstack.inventory import (
    HostRecord,
    Inventory,
    ServerGroupRecord,
    ServerRecord,
    collect_inventory,
)
from collectors.openstack.mapping import cluster_id, inventory_events, to_cluster_state
from collectors.openstack.mover import NOVA_PATIENCE, NovaMover

__all__ = [
    "NOVA_PATIENCE",
    "AuthError",
    "CloudSpec",
    "HostRecord",
    "Inventory",
    "NovaMover",
    "OpenStackError",
    "ServerGroupRecord",
    "ServerRecord",
    "cluster_id",
    "collect_inventory",
    "connect",
    "inventory_events",
    "to_cluster_state",
]
