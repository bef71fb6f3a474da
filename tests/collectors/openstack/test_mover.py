"""The mover against the real Nova: a live migration Nova and Placement agree on, stale
plans and refused moves."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from collectors.events import Move, Recommendation
from collectors.openstack import NOVA_PATIENCE, NovaMover, cluster_id
from collectors.openstack.mover import _event_text
from collectors.platform import Mover
from collectors.retry import Patience
from tests.collectors.openstack.conftest import CLOUD, boot, delete_all, nova, unique, wait_host

pytestmark = pytest.mark.openstack


@pytest.fixture
def server(conn: Any) -> Iterator[Any]:
    s = boot(conn, unique("move"), availability_zone="az1:fake-1")
    try:
        yield s
    finally:
        conn.compute.delete_server(s)
        conn.compute.wait_for_delete(s, wait=120)


def _rec(server_id: str, src: str, dst: str, cluster: str = cluster_id(CLOUD)) -> Recommendation:
    m = Move(
        key=f"k-{server_id}",
        vm=f"{CLOUD}/{server_id}",
        src=f"{CLOUD}/{src}",
        dst=f"{CLOUD}/{dst}",
        reason="imbalance",
    )
    return Recommendation(
        id="r1",
        cluster=cluster,
        trigger="test",
        strategy="balance",
        ts=0.0,
        objective_before=1.0,
        objective_after=0.5,
        moves=[m],
    )


def _usage(conn: Any, host: str) -> dict[str, int]:
    rp = next(r for r in conn.placement.resource_providers() if r.name == host)
    usages: dict[str, int] = conn.placement.get(f"/resource_providers/{rp.id}/usages").json()[
        "usages"
    ]
    return usages


def test_live_migration_lands_where_nova_and_placement_say(conn: Any, server: Any) -> None:
    assert conn.compute.get_server(server.id).compute_host == "fake-1"
    before = _usage(conn, "fake-2")["VCPU"]
    mover = NovaMover(conn, CLOUD, replace(NOVA_PATIENCE, timeout_s=120, poll_s=0.5))
    assert isinstance(mover, Mover)
    assert mover.owns(cluster_id(CLOUD)) and not mover.owns("other/nova")
    rec = _rec(server.id, "fake-1", "fake-2")
    result = mover.move(rec, rec.moves[0])
    assert result.status == "ok", result.error
    assert result.vm == f"{CLOUD}/{server.id}"
    s = wait_host(conn, server.id, "fake-2")
    assert s.status == "ACTIVE"
    assert _usage(conn, "fake-2")["VCPU"] == before + 1
    allocs = conn.placement.get(f"/allocations/{server.id}").json()["allocations"]
    rp2 = next(r.id for r in conn.placement.resource_providers() if r.name == "fake-2")
    assert list(allocs) == [rp2]  # the source's allocation is gone
    migrations = list(conn.compute.migrations(instance_uuid=server.id))
    assert [m.status for m in migrations] == ["completed"]


def test_server_not_on_source_is_not_moved(conn: Any, server: Any) -> None:
    mover = NovaMover(conn, CLOUD, replace(NOVA_PATIENCE, timeout_s=120))
    rec = _rec(server.id, "fake-2", "fake-1")  # the plan thinks it is on fake-2
    result = mover.move(rec, rec.moves[0])
    assert result.status == "failed"
    assert result.error.startswith("StalePlan:")
    assert "fake-1" in result.error
    assert conn.compute.get_server(server.id).compute_host == "fake-1"
    assert list(conn.compute.migrations(instance_uuid=server.id)) == []


def test_move_nova_refuses_reports_novas_reason(conn: Any, server: Any) -> None:
    mover = NovaMover(conn, CLOUD, Patience(timeout_s=120, attempts=2, backoff_s=0.01))
    rec = _rec(server.id, "fake-1", "no-such-host")
    result = mover.move(rec, rec.moves[0])
    assert result.status == "failed"
    assert result.error.startswith("HTTP400:"), result.error
    assert "no-such-host" in result.error  # Nova's own message names the host
    # and the server's state as it is after the refusal
    assert result.error.endswith(f"; server {server.id} is ACTIVE/- on fake-1"), result.error
    assert conn.compute.get_server(server.id).compute_host == "fake-1"


def test_foreign_ids_are_refused(conn: Any, server: Any) -> None:
    mover = NovaMover(conn, CLOUD)
    rec = _rec(server.id, "fake-1", "fake-2", cluster="elsewhere/nova")
    result = mover.move(rec, rec.moves[0])
    assert result.status == "failed" and result.error.startswith("ForeignObject:")
    assert conn.compute.get_server(server.id).compute_host == "fake-1"


def test_conflict_is_retried_then_reported_with_novas_reason(conn: Any, server: Any) -> None:
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=60, interval=0.5)
    waits: list[float] = []
    mover = NovaMover(conn, CLOUD, Patience(attempts=3, backoff_s=0.01, sleep=waits.append))
    rec = _rec(server.id, "fake-1", "fake-2")
    result = mover.move(rec, rec.moves[0])
    assert result.status == "failed"
    assert result.error.startswith("Conflict:")
    assert "stopped" in result.error  # Nova: "... while it is in vm_state stopped"
    assert result.error.endswith(f"; server {server.id} is SHUTOFF/- on fake-1"), result.error
    assert waits == [0.01, 0.02]  # two retries with doubling back-off, then give up
    assert conn.compute.get_server(server.id).compute_host == "fake-1"


@pytest.fixture
def full_fake2(conn: Any) -> Iterator[Any]:
    """fake-2 given a server as large as one Placement allocation may be (8 GiB of its
    (8192 - 512) x 1.5 = 11,520 MiB): an m1.large (4 GiB) no longer fits, an m1.small does."""
    fl = conn.compute.find_flavor("xdrs.fill") or conn.compute.create_flavor(
        name="xdrs.fill", ram=8192, vcpus=1, disk=1
    )
    filler = boot(conn, unique("fill"), flavor=fl.name, availability_zone="az1:fake-2")
    try:
        yield filler
    finally:
        conn.compute.delete_server(filler)
        conn.compute.wait_for_delete(filler, wait=120)


def test_destination_full_is_refused_with_novas_reason_and_nothing_else_moves(
    conn: Any, full_fake2: Any
) -> None:
    big = boot(conn, unique("big"), flavor="m1.large", availability_zone="az1:fake-1")
    small = boot(conn, unique("small"), availability_zone="az1:fake-1")
    try:
        used = _usage(conn, "fake-2")["MEMORY_MB"]
        mover = NovaMover(conn, CLOUD, replace(NOVA_PATIENCE, timeout_s=120, poll_s=0.5))
        refused = _rec(big.id, "fake-1", "fake-2")
        result = mover.move(refused, refused.moves[0])
        assert result.status == "failed"
        # refused after Nova accepted the request (asynchronous pre-checks): the server
        # stays ACTIVE with no fault; the reason is the instance action's failed event
        assert result.error.startswith(
            f"MigrationFailed: server {big.id} is ACTIVE on fake-1; migration error; Nova: "
        ), result.error
        assert "No valid host" in result.error, result.error  # Nova's scheduler said so
        assert "Traceback" not in result.error and "\n" not in result.error
        # a Nova before 2.84 gives no details: the traceback's last line, not the stack
        actions = conn.compute.get(f"/servers/{big.id}/os-instance-actions").json()
        request = next(a["request_id"] for a in actions["instanceActions"]
                       if a["action"] == "live-migration")  # fmt: skip
        path = f"/servers/{big.id}/os-instance-actions/{request}"
        old = conn.compute.get(path, microversion="2.51").json()["instanceAction"]["events"]
        failed = next(e for e in old if e["result"] == "Error")
        assert "details" not in failed and failed["traceback"].count("\n") > 3
        # Nova keeps the stack only (format_tb): the report names the last step in Nova's code
        said = _event_text(failed)
        assert said.startswith("conductor_live_migrate_instance: failed in select_destinations"
                               " (nova/scheduler/rpcapi.py:"), said  # fmt: skip
        assert conn.compute.get_server(big.id).compute_host == "fake-1"
        assert conn.compute.get_server(big.id).status == "ACTIVE"
        assert _usage(conn, "fake-2")["MEMORY_MB"] == used  # no claim left behind
        # the next move, which fits, is not affected by the refusal
        fits = _rec(small.id, "fake-1", "fake-2")
        assert mover.move(fits, fits.moves[0]).status == "ok"
        assert wait_host(conn, small.id, "fake-2").status == "ACTIVE"
        assert _usage(conn, "fake-2")["MEMORY_MB"] == used + 1024
        assert conn.compute.get_server(full_fake2.id).compute_host == "fake-2"
    finally:
        delete_all(conn, [big, small])


def test_nova_api_down_as_a_move_starts_is_retried_with_back_off(
    conn: Any, server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        time.sleep(s)

    mover = NovaMover(conn, CLOUD, Patience(timeout_s=120, attempts=8, backoff_s=0.5, sleep=sleep))
    rec = _rec(server.id, "fake-1", "fake-2")
    failed: list[Exception] = []

    def restart() -> None:
        time.sleep(2)
        try:
            nova("start", "api")
        except Exception as e:  # reported below; the API is started again there
            failed.append(e)

    nova("stop", "api")
    back = threading.Thread(target=restart)
    back.start()
    try:
        with caplog.at_level(logging.WARNING, logger="collectors.openstack.mover"):
            result = mover.move(rec, rec.moves[0])
    finally:
        back.join(180)
        if failed or back.is_alive():
            nova("start", "api")
    assert not failed, failed
    assert result.status == "ok", result.error
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("nova: ")]
    assert retries and all("ConnectFailure" in m for m in retries), retries
    assert retries[0] == "nova: ConnectFailure (attempt 1 of 8)"
    # the first waits are the back-off, doubling from 0.5 s (the polls' follow)
    assert waits[: len(retries)] == [0.5 * 2**i for i in range(len(retries))]
    assert wait_host(conn, server.id, "fake-2").status == "ACTIVE"


def test_a_migration_past_its_timeout_is_failed_and_the_server_ends_on_a_host(
    conn: Any, server: Any
) -> None:
    mover = NovaMover(conn, CLOUD, replace(NOVA_PATIENCE, timeout_s=0.01, poll_s=0.2))
    rec = _rec(server.id, "fake-1", "fake-2")
    result = mover.move(rec, rec.moves[0])
    assert result.status == "failed"
    assert result.error.startswith(f"Timeout: server {server.id} still MIGRATING/"), result.error
    deadline = time.monotonic() + 120  # Nova goes on with the migration
    while (s := conn.compute.get_server(server.id)).task_state is not None:
        assert time.monotonic() < deadline, s.task_state
        time.sleep(0.5)
    assert s.status == "ACTIVE" and s.compute_host in {"fake-1", "fake-2"}
