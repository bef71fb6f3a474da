"""``xdrs vsphere snapshot|apply|collect``: a live vCenter without Kafka.

``snapshot`` writes a ``drs-peer-cluster/1`` snapshot of one or more clusters (each cluster
a migration domain), so ``xdrs plan`` runs on a real vCenter; ``apply`` replays the
``migrate`` elements of an action list written by ``xdrs plan --out`` with RelocateVM_Task;
``collect`` prints the collector's records as JSON lines. pyvmomi is imported only when one
of them runs. Connection, TLS and authentication failures are one ``xdrs: error:`` line
(:class:`xdrs.errors.CommandError`) and exit status 1, as is ``apply`` when any move
failed; bad arguments and files (URL, password file, action list) exit with status 2.
The connection options are declared here once, for these commands and for ``xdrs collect
vsphere`` / ``xdrs actuate vsphere`` (:mod:`xdrs.cli.platforms.vsphere`).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from xdrs._io import atomic_write
from xdrs.cli.options import add_ratio_args, add_tls_args, checked, integer, number
from xdrs.errors import EXIT_FAILED, CommandError, SnapshotError, UsageError
from xdrs.snapshot import snapshot_doc

__all__ = ["RATIO_NAMES", "connect", "connection_args", "guarded", "register"]

RATIO_NAMES = {"cpu_ratio": "--cpu-ratio", "mem_ratio": "--mem-ratio"}


def connection_args(p: argparse.ArgumentParser) -> None:
    """A vCenter's URL, credentials, TLS and timeout: every vSphere command's options."""
    p.add_argument("--url", required=True, help="https://VCENTER[:PORT][/sdk]")
    p.add_argument("--user", required=True)
    p.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="first line is the password (default: $XDRS_VSPHERE_PASSWORD)",
    )
    add_tls_args(p)


def register(sub: Any) -> None:
    top = sub.add_parser("vsphere", help="snapshot, apply or collect a live vCenter")
    vs = top.add_subparsers(dest="vsphere_command", required=True, parser_class=type(top))
    p = vs.add_parser("snapshot", help="write a drs-peer-cluster/1 snapshot of live clusters")
    connection_args(p)
    p.add_argument(
        "--cluster",
        action="append",
        metavar="NAME",
        help="cluster name or id (repeatable; default: all)",
    )
    add_ratio_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="SNAPSHOT.json")
    p.set_defaults(func=guarded(_snapshot))
    p = vs.add_parser("apply", help="apply the migrations of an action list")
    connection_args(p)
    p.add_argument("--actions", type=Path, required=True, metavar="ACTIONS.json")
    p.add_argument("--task-timeout", type=number(above=True), default=600.0, metavar="SECONDS")
    p.add_argument("--results", type=Path, metavar="RESULTS.json", help="write the results")
    p.set_defaults(func=guarded(_apply))
    p = vs.add_parser("collect", help="print inventory, metrics and changes as JSON lines")
    connection_args(p)
    p.add_argument("--interval", type=number(above=True), default=20.0, metavar="SECONDS")
    p.add_argument(
        "--cycles", type=integer(0), default=0, metavar="N", help="stop after N (0: never)"
    )
    p.add_argument("--no-perf", action="store_true", help="quickStats only, no QueryPerf")
    p.set_defaults(func=guarded(_collect))


def guarded(fn: Any) -> Any:
    """Run ``fn`` with pyvmomi present; vSphere failures become :class:`CommandError`."""

    def handler(args: argparse.Namespace) -> int:
        try:
            # lazy: pyvmomi, an optional extra, loads only when a vSphere command runs
            from collectors.vsphere import VSphereError  # noqa: PLC0415
            from collectors.vsphere._sdk import vmodl  # noqa: PLC0415
        except ImportError as e:
            raise UsageError(
                f"vsphere: pyvmomi is not installed ({e}); pip install 'xdrs[vsphere]'"
            ) from None
        try:
            status: int = fn(args)
            return status
        except VSphereError as e:
            raise CommandError(str(e)) from None
        except vmodl.MethodFault as e:
            raise CommandError(
                f"{args.url}: vCenter refused: {type(e).__name__}: {e.msg}"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            if getattr(e, "filename", None):
                raise  # a local file: reported by xdrs.cli as bad input
            raise CommandError(f"{args.url}: connection lost: {type(e).__name__}: {e}") from None

    return handler


def connect(args: argparse.Namespace) -> Any:
    """A :class:`collectors.vsphere.Connection` (not logged in yet); bad arguments exit 2."""
    # lazy: pyvmomi (optional extra)
    from collectors.vsphere import (  # noqa: PLC0415
        Connection,
        ConnectionSpec,
        VSphereError,
        read_password,
    )

    try:  # bad arguments (URL, password file) exit with status 2, before any traffic
        spec = ConnectionSpec(
            url=args.url,
            user=args.user,
            password=read_password(args.password_file),
            ca_bundle=args.ca_bundle,
            insecure=args.insecure,
            timeout_s=args.timeout,
        )
        spec.parts()
    except VSphereError as e:
        raise UsageError(str(e)) from None
    return Connection(spec, retries=2)


def _snapshot(args: argparse.Namespace) -> int:
    # lazy: pyvmomi (optional extra)
    from collectors.vsphere import MappingOptions, collect_inventory  # noqa: PLC0415
    from collectors.vsphere import to_cluster_state as to_state  # noqa: PLC0415

    opts = checked(MappingOptions, RATIO_NAMES, cpu_ratio=args.cpu_ratio, mem_ratio=args.mem_ratio)
    with connect(args) as conn:
        inv = conn.call(lambda si: collect_inventory(si.RetrieveContent(), args.url))
    try:
        state = to_state(inv, args.cluster, opts)
    except KeyError as e:
        raise SnapshotError(f"--cluster: {e.args[0]}") from None
    doc = _named(snapshot_doc(state), inv)
    atomic_write(args.out, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(
        f"xdrs vsphere snapshot: {state.n_hosts} hosts, {state.n_vms} powered-on VMs, "
        f"{int(state.domain.max(initial=-1)) + 1} clusters -> {args.out}"
    )
    return 0


def _named(doc: dict[str, Any], inv: Any) -> dict[str, Any]:
    """Readable names in the snapshot: host names, VM names, cluster names as domains."""
    hosts = {h.id: h for h in inv.hosts}
    clusters = {c.id: c.name for c in inv.clusters}
    vm_names = {v.id: v.name for v in inv.vms}
    for h in doc["hosts"]:
        rec = hosts[h["uuid"]]
        h["hostname"] = rec.name
        h["domain"] = clusters.get(rec.cluster or "", "default")
    for v in doc["vms"]:
        v["name"] = vm_names[v["uuid"]]
    doc["generator"] = {
        "name": "xdrs vsphere snapshot",
        "source": inv.source,
        "collected_at": inv.collected_at,
    }
    return doc


def _read_actions(path: Path) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise SnapshotError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}") from None
    if not isinstance(doc, list):
        raise SnapshotError(f"{path}: expected an action list (a JSON array)")
    for i, act in enumerate(doc):
        if not isinstance(act, dict):
            raise SnapshotError(f"{path}: actions[{i}]: expected an object")
        if act.get("action") == "migrate":
            for key in ("vm", "source", "destination"):
                if not isinstance(act.get(key), str):
                    raise SnapshotError(f"{path}: actions[{i}].{key}: expected a string id")
    return doc


def _apply(args: argparse.Namespace) -> int:
    # lazy: pyvmomi (optional extra)
    from collectors.vsphere import apply_actions  # noqa: PLC0415

    actions = _read_actions(args.actions)

    def show(r: Any) -> None:
        what = "ok" if r.ok else f"FAILED {r.fault}: {r.message}"
        print(f"{r.vm}: {r.host_before} -> {r.destination}: {what} ({r.seconds:.1f} s)")

    with connect(args) as conn:
        results = apply_actions(conn, actions, timeout_s=args.task_timeout, on_result=show)
    failed = sum(not r.ok for r in results)
    skipped = sum(a.get("action") != "migrate" for a in actions)
    note = f", {skipped} host actions not applied (power intent only)" if skipped else ""
    print(f"xdrs vsphere apply: {len(results) - failed} moved, {failed} failed{note}")
    if args.results is not None:
        body = [r.as_dict() for r in results]
        atomic_write(args.results, orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return EXIT_FAILED if failed else 0


class _JsonLines:
    def __init__(self, out: Any) -> None:
        self.out = out

    def _emit(self, kind: str, body: object) -> None:
        self.out.write(orjson.dumps({"type": kind, "body": body}).decode() + "\n")
        self.out.flush()

    def on_inventory(self, inv: Any) -> None:
        self._emit("inventory", inv.as_dict())

    def on_metrics(self, samples: Sequence[Any]) -> None:
        self._emit("metrics", [s.as_dict() for s in samples])

    def on_changes(self, changes: Sequence[Any]) -> None:
        self._emit("changes", [c.as_dict() for c in changes])


def _collect(args: argparse.Namespace) -> int:
    # lazy: pyvmomi (optional extra)
    from collectors.vsphere import CollectorOptions, VSphereCollector  # noqa: PLC0415
    from collectors.vsphere.bus import run_cycles  # noqa: PLC0415

    opts = CollectorOptions(interval_s=args.interval, perf=not args.no_perf)
    with connect(args) as conn:
        col = VSphereCollector(conn, _JsonLines(sys.stdout), opts)
        run_cycles(col, args.cycles, threading.Event())
    return 0
