"""Event-driven changes with WaitForUpdatesEx: VM power state, host, name; host maintenance.

The watcher owns a property collector of its own (so it never disturbs other callers) with
one filter over a ContainerView of all VMs and hosts. Its first wait returns the full
state, which :meth:`UpdateWatcher.start` keeps as the baseline; later waits return only the
properties that changed, as :class:`Change` records. vCenter does not report everything
this way (the simulator, for one, changes maintenance mode, VM sizes and cluster rules
silently), so the collector also polls the inventory periodically.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from collectors.vsphere._sdk import vim, vmodl
from collectors.vsphere.inventory import view_filter
from collectors.vsphere.records import Change

__all__ = ["WATCHED", "UpdateWatcher"]

WATCHED: dict[Any, dict[str, str]] = {
    vim.VirtualMachine: {"name": "name", "runtime.powerState": "power_state",
                         "runtime.host": "host"},
    vim.HostSystem: {"name": "name", "runtime.inMaintenanceMode": "maintenance"},
}  # fmt: skip


def _value(val: Any) -> object:
    mo = getattr(val, "_moId", None)
    return str(mo) if mo is not None else val


class UpdateWatcher:
    """Changes of watched properties since the previous call.

    Use: ``w = UpdateWatcher(content); w.start(); while ...: changes = w.poll(20)``.
    After a lost session, build a new watcher (its filter died with the session).
    """

    def __init__(self, content: Any) -> None:
        self.content = content
        self.pc: Any = None
        self.view: Any = None
        self.version = ""

    def start(self) -> dict[tuple[str, str], dict[str, object]]:
        """Create the filter and read the baseline: ``{(kind, id): {field: value}}``."""
        c = self.content
        self.pc = c.propertyCollector.CreatePropertyCollector()
        self.view = c.viewManager.CreateContainerView(c.rootFolder, list(WATCHED), True)
        paths = {t: list(fields) for t, fields in WATCHED.items()}
        self.pc.CreateFilter(view_filter(self.view, paths), partialUpdates=True)
        baseline: dict[tuple[str, str], dict[str, object]] = {}
        for ch in self._wait(0.0, complete=True):
            baseline.setdefault((ch.kind, ch.id), {})[ch.field] = ch.value
        return baseline

    def poll(self, max_wait_s: float) -> list[Change]:
        """Block up to ``max_wait_s`` seconds for changes; [] when nothing changed."""
        if self.pc is None:
            raise RuntimeError("UpdateWatcher.poll: call start() first")
        return self._wait(max_wait_s, complete=False)

    def _wait(self, max_wait_s: float, complete: bool) -> list[Change]:
        out: list[Change] = []
        secs = max(0, round(max_wait_s))
        while True:
            opts = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=secs)
            update = self.pc.WaitForUpdatesEx(self.version, opts)
            if update is None:
                return out
            self.version = update.version
            ts = time.time()
            for fs in update.filterSet or []:
                for ou in fs.objectSet or []:
                    out.extend(_changes(ou, ts))
            if not update.truncated:
                if complete or out:
                    return out
                secs = 0  # only filter bookkeeping changed: do not wait again

    def stop(self) -> None:
        for obj, method in ((self.pc, "Destroy"), (self.view, "Destroy")):
            if obj is not None:
                with contextlib.suppress(vmodl.MethodFault, OSError):  # session gone
                    getattr(obj, method)()
        self.pc = self.view = None


def _changes(ou: Any, ts: float) -> list[Change]:
    obj = ou.obj
    kind = "vm" if isinstance(obj, vim.VirtualMachine) else "host"
    oid = str(obj._moId)
    fields = WATCHED[vim.VirtualMachine if kind == "vm" else vim.HostSystem]
    if ou.kind == "leave":
        return [Change(kind, oid, "removed", None, ts)]
    out = [Change(kind, oid, "added", None, ts)] if ou.kind == "enter" else []
    for pc in ou.changeSet or []:
        name = fields.get(pc.name)
        if name is not None:
            out.append(Change(kind, oid, name, _value(pc.val) if pc.op != "remove" else None, ts))
    return out
