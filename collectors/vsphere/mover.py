"""One recommended move -> RelocateVM_Task -> one :class:`ActionResult` (no Kafka here).

The move's ids are the bridge's scoped ids (``SCOPE/vm-57``); a move naming an object of
another vCenter is refused. The VM's ``runtime.host`` is read before the relocation (a VM
no longer on the move's source is not moved: ``StalePlan``) and after it. A lost session is
re-established and the move retried a few times; a VM found already on the destination
after such a loss counts as moved (the relocation went through before the session broke).
"""

from __future__ import annotations

import logging

from collectors.events import ActionResult, Move, Recommendation, move_result
from collectors.retry import Patience
from collectors.vsphere._sdk import vim, vmodl
from collectors.vsphere.actuator import relocate
from collectors.vsphere.connection import TRANSIENT, Connection, VSphereError
from collectors.vsphere.records import MoveResult

__all__ = ["VSPHERE_PATIENCE", "VSphereMover"]

log = logging.getLogger(__name__)

VSPHERE_PATIENCE = Patience()


class VSphereMover:
    """Applies moves of the clusters of one vCenter (``scope``, as in the event bridge).

    Parameters
    ----------
    conn : Connection
    scope : str
    patience : Patience
        ``timeout_s``: how long one relocation task may take; ``attempts``: tries of one
        move when the session drops (each after a new log-in), with ``backoff_s`` doubling
        between them. The task's own polling is the actuator's.
    """

    def __init__(self, conn: Connection, scope: str, patience: Patience = VSPHERE_PATIENCE) -> None:
        self.conn = conn
        self.scope = scope
        self.patience = patience

    def owns(self, cluster: str) -> bool:
        return cluster.startswith(self.scope + "/")

    def _moid(self, uuid: str) -> str | None:
        prefix = self.scope + "/"
        return uuid[len(prefix) :] if uuid.startswith(prefix) and len(uuid) > len(prefix) else None

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        """Apply one move of ``rec``; never raises for a vSphere or transport failure."""
        vm, src, dst = m.vm, m.src, m.dst
        ids = [self._moid(x) for x in (vm, src, dst)]
        if None in ids:
            return self._result(rec, m, "ForeignObject", f"not an object of vCenter {self.scope!r}")
        vm_id, src_id, dst_id = (str(x) for x in ids)
        res = self._relocate(vm_id, src_id, dst_id, self._moid(rec.cluster) or "")
        if res.ok:
            return self._result(rec, m, "", "")
        return self._result(rec, m, res.fault or "Failed", res.message)

    def _relocate(self, vm_id: str, src_id: str, dst_id: str, cluster_id: str) -> MoveResult:
        p, retried = self.patience, False
        for attempt in range(1, p.attempts + 1):
            try:
                refused = self._check_destination(vm_id, src_id, dst_id, cluster_id)
                if refused is not None:
                    return refused
                res = relocate(self.conn, vm_id, dst_id, source=src_id, timeout_s=p.timeout_s)
            except (*TRANSIENT, VSphereError, OSError, vmodl.MethodFault) as e:
                log.warning(
                    "relocate %s: %s (attempt %d of %d)",
                    vm_id,
                    type(e).__name__,
                    attempt,
                    p.attempts,
                )
                self.conn.invalidate()
                if attempt == p.attempts:
                    return MoveResult(
                        vm_id,
                        src_id,
                        dst_id,
                        False,
                        None,
                        None,
                        fault="ConnectionLost",
                        message=str(e) or type(e).__name__,
                    )
                p.back_off(attempt)
                retried = True
                continue
            if retried and res.fault == "StalePlan" and res.host_before == dst_id:
                return MoveResult(vm_id, src_id, dst_id, True, src_id, dst_id)
            return res
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_destination(
        self, vm_id: str, src_id: str, dst_id: str, cluster_id: str
    ) -> MoveResult | None:
        """A failure if ``dst_id`` is not a host of the recommendation's cluster.

        The engine never plans across clusters, and vCenter would accept such a move (a
        different compatibility and DRS domain): refuse it here too.
        """
        try:
            parent = vim.HostSystem(dst_id, self.conn.si._stub).parent
        except vmodl.MethodFault as e:
            if isinstance(e, TRANSIENT):
                raise
            fault = type(e).__name__.rsplit(".", 1)[-1]
            msg = f"destination {dst_id}: {getattr(e, 'msg', '') or fault}"
            return MoveResult(vm_id, src_id, dst_id, False, None, None, fault=fault, message=msg)
        if parent is None or str(parent._moId) != cluster_id:
            msg = f"destination {dst_id} is not a host of cluster {cluster_id}"
            return MoveResult(
                vm_id, src_id, dst_id, False, None, None, fault="WrongCluster", message=msg
            )
        return None

    def _result(self, rec: Recommendation, m: Move, fault: str, message: str) -> ActionResult:
        return move_result(rec, m, f"{fault}: {message}" if fault else "")
