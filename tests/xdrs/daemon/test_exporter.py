"""The daemon's Prometheus metrics: read from its counts at scrape time, bounded labels."""

from __future__ import annotations

import msgspec
from prometheus_client import CollectorRegistry, generate_latest

from collectors.events import Move
from xdrs.daemon.exporter import DaemonMetrics
from xdrs.daemon.limits import Limits

from .sim import Bench


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
