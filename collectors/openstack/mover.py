"""One recommended move -> Nova live migration -> one :class:`ActionResult` (no Kafka here).

The move's ids are scoped (``SCOPE/<server uuid>``, ``SCOPE/<host>``); a move naming
another cloud's object is refused. The server's host is read first: a server no longer on
the move's source is not moved (``StalePlan``). The migration is started with
``block_migration="auto"`` (Nova picks shared-storage or block migration), then the server
is polled until its task ends, and the server's migration record tells how it ended (a
successful move also waits for that record to finish: Nova's clean-up on the source). A 409
(server busy, e.g. another task running) or a transient API failure is retried a bounded
number of times with doubling back-off.

The migration is asked for at microversion 2.34, where Nova's pre-checks (the scheduler's
check of the destination) run after the request is accepted: a refused destination is a
failed migration found by polling, as on any recent cloud. Failure reports carry Nova's
words and the server's state: a refused request Nova's message and where the server is;
a failed migration the server's state, the migration record's status and the failed event
of the request's instance action (its ``details``, microversion 2.84; before that Nova keeps
only the event's stack, and the report names the last step in Nova's code; never the whole
traceback). ``server.fault`` is only shown for servers in ERROR.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from keystoneauth1 import exceptions as ksa
from openstack import exceptions as sdk

from collectors.events import ActionResult, Move, Recommendation, move_result
from collectors.openstack.mapping import cluster_id
from collectors.retry import Patience

__all__ = ["NOVA_PATIENCE", "NovaMover"]

log = logging.getLogger(__name__)

FINISHED = frozenset({"completed", "done", "error", "failed", "cancelled"})
TRANSIENT = (ksa.ConnectFailure, ksa.ConnectTimeout, ksa.RetriableConnectionFailure)
LIVE_MIGRATE = "2.34"  # asynchronous pre-checks (Newton); host and block_migration "auto"
ACTION_DETAILS = ("2.84", "2.51")  # events with ``details`` (Xena); else the traceback only
FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
NOVA_PATIENCE = Patience(attempts=4)  # a busy server (409) gets 1 + 2 + 4 s to become free


class MoveError(Exception):
    """A move that failed for a reason worth reporting; ``fault`` names the kind."""

    def __init__(self, fault: str, message: str) -> None:
        super().__init__(f"{fault}: {message}")
        self.fault = fault
        self.message = message


class NovaMover:
    """Applies the moves of one cloud's cluster (``scope``, as in the mapping).

    Parameters
    ----------
    conn : openstack.connection.Connection
    scope : str
    patience : Patience
        ``timeout_s``: how long one live migration may take; ``attempts``: tries of one
        Nova call when it answers 409 (starting a migration) or the API fails transiently;
        ``poll_s``: the wait between polls of the server. Default :data:`NOVA_PATIENCE`.
    """

    def __init__(self, conn: Any, scope: str, patience: Patience = NOVA_PATIENCE) -> None:
        self.conn = conn
        self.scope = scope
        self.patience = patience

    def owns(self, cluster: str) -> bool:
        return cluster == cluster_id(self.scope)

    def _local(self, uid: str) -> str | None:
        prefix = self.scope + "/"
        return uid[len(prefix) :] if uid.startswith(prefix) and len(uid) > len(prefix) else None

    def move(self, rec: Recommendation, m: Move) -> ActionResult:
        """Apply one move of ``rec``; never raises for a Nova or transport failure."""
        ids = [self._local(x) for x in (m.vm, m.src, m.dst)]
        if None in ids or not self.owns(rec.cluster):
            return move_result(rec, m, f"ForeignObject: not an object of cloud {self.scope!r}")
        server, src, dst = (str(x) for x in ids)
        try:
            self._migrate(server, src, dst)
        except MoveError as e:
            return move_result(rec, m, str(e))
        return move_result(rec, m)

    def _migrate(self, server: str, src: str, dst: str) -> None:
        s = self._call(lambda: self.conn.compute.get_server(server))
        if s.compute_host != src:
            raise MoveError("StalePlan", f"server {server} is on {s.compute_host}, not on {src}")
        before = {m.id for m in self._migrations(server)}
        try:
            request = self._call(lambda: self._start(server, dst), retry_conflict=True)
        except MoveError as e:  # refused: Nova's message and where the server is now
            raise MoveError(e.fault, f"{e.message}; {self._state(server)}") from None
        s = self._wait(server)
        if s.compute_host == dst and s.status == "ACTIVE":
            self._settle(server, before)
            return
        raise MoveError("MigrationFailed", self._why(server, s, before, request))

    def _start(self, server: str, dst: str) -> str:
        """Ask Nova to live-migrate ``server`` to ``dst``; the request's id (its instance
        action's) is returned."""
        body = {"os-migrateLive": {"host": dst, "block_migration": "auto"}}
        resp = self.conn.compute.post(
            f"/servers/{server}/action", json=body, microversion=LIVE_MIGRATE
        )
        sdk.raise_from_response(resp)
        return str(resp.headers.get("x-openstack-request-id") or "")

    def _state(self, server: str) -> str:
        """Where ``server`` is and in which state, for a report (one try: never raises)."""
        try:
            s = self.conn.compute.get_server(server)
        except (sdk.SDKException, ksa.ClientException) as e:
            return f"server {server}: state unknown ({type(e).__name__})"
        return f"server {server} is {s.status}/{s.task_state or '-'} on {s.compute_host}"

    def _settle(self, server: str, before: set[Any]) -> None:
        """Wait for the migration record to end too: Nova cleans up on the source after the
        server is active on the destination, and until then the source's migration slot
        (``max_concurrent_live_migrations``) is taken. A record still running after the
        timeout is left to Nova: the server is where it should be."""
        p = self.patience
        deadline = p.clock() + p.timeout_s
        while p.clock() < deadline:
            new = [m for m in self._migrations(server) if m.id not in before]
            if all(m.status in FINISHED for m in new):
                return
            p.sleep(p.poll_s)

    def _wait(self, server: str) -> Any:
        p = self.patience
        deadline = p.clock() + p.timeout_s
        while True:
            s = self._call(lambda: self.conn.compute.get_server(server))
            if s.task_state is None and s.status != "MIGRATING":
                return s
            if p.clock() > deadline:
                raise MoveError(
                    "Timeout",
                    f"server {server} still {s.status}/{s.task_state} after {p.timeout_s:.0f} s",
                )
            p.sleep(p.poll_s)

    def _migrations(self, server: str) -> list[Any]:
        return list(self._call(lambda: self.conn.compute.migrations(instance_uuid=server)))

    def _why(self, server: str, s: Any, before: set[Any], request: str) -> str:
        """Nova's account of a failed migration: the migration record, the server's fault
        (servers in ERROR only), the failed event of the request's instance action."""
        new = [m for m in self._migrations(server) if m.id not in before]
        parts = [f"server {server} is {s.status} on {s.compute_host}"]
        if new:
            parts.append(f"migration {new[-1].status}")
        fault = getattr(s, "fault", None) or {}
        said = fault.get("message") or self._failed_event(server, request)
        if said:
            parts.append(f"Nova: {said}")
        return "; ".join(parts)

    def _failed_event(self, server: str, request: str) -> str:
        """The first failed event of instance action ``request`` as :func:`_event_text`
        says it; "" when there is none or Nova cannot say (best effort: never raises)."""
        path = f"/servers/{server}/os-instance-actions/{request}"
        for version in ACTION_DETAILS if request else ():
            try:
                resp = self.conn.compute.get(path, microversion=version)
            except (sdk.SDKException, ksa.ClientException):
                return ""
            if resp.status_code == 406:  # a Nova older than the microversion
                continue
            if not resp.ok:
                return ""
            events = resp.json().get("instanceAction", {}).get("events") or []
            failed = [e for e in events if e.get("result") == "Error"]
            # the first to fail is the cause; later ones (rollbacks) follow from it
            failed.sort(key=lambda e: str(e.get("start_time") or ""))
            return _event_text(failed[0]) if failed else ""
        return ""

    def _call(self, fn: Callable[[], Any], *, retry_conflict: bool = False) -> Any:
        attempts = self.patience.attempts
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except sdk.ConflictException as e:
                if not retry_conflict or attempt == attempts:
                    raise MoveError("Conflict", _nova_message(e)) from None
                why = "409"
            except sdk.HttpException as e:
                if (e.status_code or 0) < 500 or attempt == attempts:
                    raise MoveError(f"HTTP{e.status_code}", _nova_message(e)) from None
                why = f"HTTP {e.status_code}"
            except TRANSIENT as e:
                if attempt == attempts:
                    raise MoveError("ConnectionLost", str(e).splitlines()[0]) from None
                why = type(e).__name__
            log.warning("nova: %s (attempt %d of %d)", why, attempt, attempts)
            self.patience.back_off(attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _nova_message(e: Any) -> str:
    return str(e.details or e.message or e).splitlines()[0][:500]


def _event_text(event: dict[str, Any]) -> str:
    """``event: details``, else where its traceback says it failed (never the stack)."""
    said = str(event.get("details") or "").strip() or _raised(str(event.get("traceback") or ""))
    return f"{event.get('event')}: {said.splitlines()[0][:500]}"


def _raised(tb: str) -> str:
    """A traceback's exception line when it has one; Nova before 2.84 keeps only the stack
    (``format_tb``): then the last frame in Nova's own code, which names the step."""
    lines = [x.rstrip() for x in tb.splitlines() if x.strip()]
    if lines and not lines[-1][0].isspace() and not lines[-1].startswith("Traceback"):
        return lines[-1]
    frames = FRAME.findall(tb)
    if not frames:
        return "no details"
    path, line, func = ([f for f in frames if "/nova/" in f[0]] or frames)[-1]
    where = path[path.rfind("/nova/") + 1 :] if "/nova/" in path else path.rsplit("/", 1)[-1]
    return f"failed in {func} ({where}:{line})"
