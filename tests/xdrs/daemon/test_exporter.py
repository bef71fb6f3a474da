"""The daemon's Prometheus metrics: read from its counts at scrape time, bounded labels."""

from __future__ import annotations

import time

import msgspec
from prometheus_client import CollectorRegistry, generate_latest

from collectors.events import Approval, Move, Recommendation, move_result
from xdrs.daemon.exporter import DaemonMetrics
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy

from .sim import Bench, spread_moves


def test_counts_by_status_and_skip_reason_without_per_vm_labels():
    b = Bench(limits=Limits(vm_cooldown_s=1e6, metric_age_s=1e9))
    registry = CollectorRegistry()
    DaemonMetrics(registry, lambda: b.daemon)
    empty = generate_latest(registry).decode()
    assert "xdrs_daemon_in_flight 0.0" in empty
    b.metrics()  # fresh (the bench's clock runs 2,000 times faster than real time)
    rec = b.plan("c0")
    b.daemon.receive(rec)
    b.run_until_idle()
    m = rec.moves[0]
    back = Move("back/0", m.vm, m.dst, m.src, "imbalance")  # within the VM's cooldown
    b.daemon.receive(msgspec.structs.replace(rec, id="back", moves=[back]))
    b.run_until_idle()
    text = generate_latest(registry).decode()
    ok = sum(r.status == "ok" for r in b.journal)
    assert f'xdrs_daemon_moves_total{{status="ok"}} {float(ok)}' in text
    assert 'xdrs_daemon_skipped_total{why="held"} 1.0' in text
    assert "vm0" not in text and "c0-h" not in text  # no per-VM or per-host label


def test_every_label_from_zero_pending_approvals_held_back_and_failures_by_reason():
    b = Bench(limits=Limits(per_host=1, metric_age_s=1e9), policy=Policy(default="manual"))
    registry = CollectorRegistry()
    DaemonMetrics(registry, lambda: b.daemon)
    text = generate_latest(registry).decode()
    for line in ('xdrs_daemon_moves_total{status="failed"} 0.0',
                 'xdrs_daemon_skipped_total{why="no_room"} 0.0',
                 'xdrs_daemon_failed_total{why="timeout"} 0.0',
                 'xdrs_daemon_held_back{why="per_host"} 0.0',
                 "xdrs_daemon_pending_approvals 0.0"):  # fmt: skip
        assert line in text
    moves = spread_moves(b.collector, "c0", 3, "r1")
    rec = Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, moves)
    b.daemon.receive(rec)
    text = generate_latest(registry).decode()
    assert "xdrs_daemon_pending_approvals 3.0" in text
    assert "xdrs_daemon_pending_recommendations 1.0" in text
    assert 'xdrs_daemon_held_back{why="approval"} 3.0' in text
    b.daemon.decide(Approval("r1", "c0", "approve"))
    b.daemon.tick()  # one per host: the others wait behind the per-host limit
    text = generate_latest(registry).decode()
    assert "xdrs_daemon_in_flight 1.0" in text and "xdrs_daemon_pending_approvals 0.0" in text
    assert 'xdrs_daemon_held_back{why="per_host"} 2.0' in text
    b.run_until_idle()
    b.daemon.journal(move_result(rec, moves[0], "Timeout: no result after 1 s"), False)
    b.daemon.journal(move_result(rec, moves[0], "HostCommunication: lost"), False)
    text = generate_latest(registry).decode()
    assert 'xdrs_daemon_failed_total{why="timeout"} 1.0' in text
    assert 'xdrs_daemon_failed_total{why="platform"} 1.0' in text  # the platform's own fault
