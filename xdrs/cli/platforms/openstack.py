"""The OpenStack platform's commands: ``xdrs openstack snapshot`` (a live cloud, no Kafka).

``snapshot`` reads a cloud's compute hosts, Placement capacity, servers and server groups
and writes a ``drs-peer-cluster/1`` snapshot (each availability zone a migration domain),
so ``xdrs plan`` runs on OpenStack. The cloud is a clouds.yaml entry (``--cloud``) or the
``OS_*`` environment; TLS is verified unless ``--insecure``. openstacksdk is imported only
when the command runs; a cloud that refuses or cannot be reached is one ``xdrs: error:``
line and exit status 1. ``xdrs collect openstack`` / ``actuate openstack`` (the bus) are
still to come.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from xdrs._io import atomic_write
from xdrs.cli.options import add_tls_args
from xdrs.errors import CommandError, UsageError
from xdrs.snapshot import snapshot_doc

__all__ = ["connection_args", "guarded", "register"]


def connection_args(p: argparse.ArgumentParser) -> None:
    """A cloud's name, TLS and timeout: every OpenStack command's options."""
    p.add_argument(
        "--cloud", metavar="NAME", help="clouds.yaml entry (default: the OS_* environment)"
    )
    p.add_argument("--cloud-id", metavar="ID", help="prefix of this cloud's ids (default: --cloud)")
    add_tls_args(p)


def register(sub: Any) -> None:
    top = sub.add_parser("openstack", help="snapshot a live OpenStack cloud")
    group = top.add_subparsers(dest="openstack_command", required=True, parser_class=type(top))
    p = group.add_parser("snapshot", help="write a drs-peer-cluster/1 snapshot of a cloud")
    connection_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="SNAPSHOT.json")
    p.set_defaults(func=guarded(_snapshot))


def guarded(fn: Any) -> Any:
    """Run ``fn`` with openstacksdk present; cloud failures become :class:`CommandError`."""

    def handler(args: argparse.Namespace) -> int:
        try:
            # lazy: openstacksdk, an optional extra, loads only when an OpenStack command runs
            from collectors.openstack import OpenStackError  # noqa: PLC0415
        except ImportError as e:
            raise UsageError(
                f"openstack: openstacksdk is not installed ({e}); pip install 'xdrs[openstack]'"
            ) from None
        try:
            status: int = fn(args)
            return status
        except OpenStackError as e:
            raise CommandError(str(e)) from None

    return handler


def scope(args: argparse.Namespace) -> str:
    return str(args.cloud_id or args.cloud or "openstack")


def connect(args: argparse.Namespace) -> Any:
    # lazy: openstacksdk (optional extra)
    from collectors.openstack import CloudSpec  # noqa: PLC0415
    from collectors.openstack import connect as sdk_connect  # noqa: PLC0415

    spec = CloudSpec(args.cloud, args.ca_bundle, args.insecure, args.timeout)
    return sdk_connect(spec)


def _snapshot(args: argparse.Namespace) -> int:
    # lazy: openstacksdk (optional extra)
    from collectors.openstack import collect_inventory, to_cluster_state  # noqa: PLC0415
    from collectors.openstack.connection import error  # noqa: PLC0415

    conn = connect(args)
    try:
        inv = collect_inventory(conn, str(conn.config.get_auth_args().get("auth_url", "")))
    except Exception as e:  # the SDK's and keystoneauth's many failure types
        raise error(scope(args), e) from None
    finally:
        conn.close()
    state = to_cluster_state(inv, scope(args))
    doc = snapshot_doc(state)
    _name(doc, inv, scope(args))
    atomic_write(args.out, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(
        f"xdrs openstack snapshot: {state.n_hosts} hosts, {state.n_vms} active servers, "
        f"{int(state.domain.max(initial=-1)) + 1} availability zones -> {args.out}"
    )
    return 0


def _name(doc: dict[str, Any], inv: Any, prefix: str) -> None:
    """Host names, server names and availability zones as domains in the snapshot."""
    hosts = {f"{prefix}/{h.name}": h for h in inv.hosts}
    names = {f"{prefix}/{s.id}": s.name for s in inv.servers}
    for h in doc["hosts"]:
        h["hostname"] = hosts[h["uuid"]].name
        h["domain"] = hosts[h["uuid"]].zone or "nova"
    for v in doc["vms"]:
        v["name"] = names[v["uuid"]]
    doc["generator"] = {
        "name": "xdrs openstack snapshot",
        "source": inv.source,
        "collected_at": inv.collected_at,
    }
