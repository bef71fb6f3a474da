"""Apply moves with RelocateVM_Task (destination host and its cluster's root resource pool).

Each move reads the VM's ``runtime.host`` before, relocates, waits for the task with a
timeout, and reads ``runtime.host`` again; the outcome (success, or the vSphere fault) is a
:class:`MoveResult`. A failed move affects nothing else: the next one still runs. The
engine, not vCenter, enforces placement rules (the simulator accepts any relocation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from collectors.vsphere._sdk import vim, vmodl
from collectors.vsphere.connection import TRANSIENT, Connection
from collectors.vsphere.records import MoveResult

__all__ = ["apply_actions", "relocate"]

POLL_S = 0.2


def _host_of(vm: Any) -> str | None:
    h = vm.runtime.host
    return None if h is None else str(h._moId)


def _fail(vm_id: str, src: str | None, dst: str, before: str | None, e: BaseException,
          t0: float, after: str | None = None) -> MoveResult:  # fmt: skip
    fault = type(e).__name__.rsplit(".", 1)[-1]  # pyvmomi names: vmodl.fault.X
    msg = getattr(e, "msg", None) or str(e) or fault
    return MoveResult(vm_id, src, dst, False, before, after, fault=fault, message=str(msg),
                      seconds=time.monotonic() - t0)  # fmt: skip


def relocate(
    conn: Connection,
    vm_id: str,
    host_id: str,
    *,
    source: str | None = None,
    timeout_s: float = 600.0,
) -> MoveResult:
    """Move VM ``vm_id`` to host ``host_id`` and report what happened.

    With ``source``, a VM that is no longer on ``source`` is not moved (the plan was made
    on a different placement): the result is a failure with fault ``StalePlan``.
    """
    t0 = time.monotonic()
    si = conn.si
    vm = vim.VirtualMachine(vm_id, si._stub)
    host = vim.HostSystem(host_id, si._stub)
    before = None
    try:
        before = _host_of(vm)
        if source is not None and before != source:
            return MoveResult(vm_id, source, host_id, False, before, before, fault="StalePlan",
                              message=f"VM is on {before}, not on the planned source {source}",
                              seconds=time.monotonic() - t0)  # fmt: skip
        pool = host.parent.resourcePool
        task = vm.RelocateVM_Task(vim.vm.RelocateSpec(host=host, pool=pool))
        _wait(task, timeout_s)
        after = _host_of(vm)
    except vmodl.MethodFault as e:
        return _fail(vm_id, source, host_id, before, e, t0, _safe_host(vm))
    except TimeoutError as e:
        return _fail(vm_id, source, host_id, before, e, t0, _safe_host(vm))
    ok = after == host_id
    msg = "" if ok else f"task succeeded but runtime.host is {after}"
    return MoveResult(vm_id, source, host_id, ok, before, after, fault=None if ok else "NotMoved",
                      message=msg, seconds=time.monotonic() - t0)  # fmt: skip


def _safe_host(vm: Any) -> str | None:
    try:
        return _host_of(vm)
    except (vmodl.MethodFault, *TRANSIENT):
        return None


def _wait(task: Any, timeout_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait for ``task``; raise its fault on error, :class:`TimeoutError` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return
        if info.state == vim.TaskInfo.State.error:
            raise info.error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"task {task._moId} still {info.state} after {timeout_s:g} s")
        sleep(POLL_S)


def apply_actions(
    conn: Connection,
    actions: Iterable[dict[str, Any]],
    *,
    timeout_s: float = 600.0,
    on_result: Callable[[MoveResult], None] | None = None,
) -> list[MoveResult]:
    """Apply the ``migrate`` elements of an action list in order (others are skipped).

    Each move checks that the VM is still on the action's ``source``.
    """
    results = []
    for act in actions:
        if act.get("action") != "migrate":
            continue
        res = relocate(conn, str(act["vm"]), str(act["destination"]),
                       source=str(act["source"]), timeout_s=timeout_s)  # fmt: skip
        results.append(res)
        if on_result is not None:
            on_result(res)
    return results
