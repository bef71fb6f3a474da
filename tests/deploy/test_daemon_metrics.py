"""A real rebalancing daemon process serves its metrics, and the dashboard's daemon panels
show them through a real Prometheus.

``xdrs replay --apply --metrics-addr`` runs as a subprocess on the embedded broker (the
replayed cluster and the daemon over it), the engine of conftest.py recommends, and
Prometheus scrapes both with deploy/prometheus/prometheus.yml's jobs (``xdrs-engine``,
``xdrs-daemon``). The daemon's totals must be the ones on the actions topic.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from collectors.events import ActionResult
from tests.deploy.conftest import (
    LiveEngine,
    Prometheus,
    by,
    dashboard,
    fill,
    prometheus_config,
    queries,
    run_prometheus,
)
from tests.support import wait_for
from xdrs.bus.broker import free_port
from xdrs.daemon.approvals import read_topic
from xdrs.daemon.exporter import STATUSES

pytestmark = [pytest.mark.prometheus, pytest.mark.broker]


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[str]
    url: str  # its /metrics

    def metrics(self) -> dict[str, float]:
        """Every sample of its /metrics, by name and labels (``{}`` if not answering)."""
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            m = re.fullmatch(r"(\S+) (\S+)", line)
            if m and not line.startswith("#"):
                out[m[1]] = float(m[2])
        return out


@pytest.fixture(scope="module")
def daemon(engine: LiveEngine) -> Iterator[DaemonProcess]:
    port = free_port()
    cmd = [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
           "replay", "--apply", "--bootstrap-servers", engine.config.bootstrap,
           "--topic-prefix", engine.config.topics.prefix, "--speed", "4",
           "--metrics-addr", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield DaemonProcess(proc, f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def scraping(
    engine: LiveEngine, daemon: DaemonProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    target = daemon.url.removeprefix("http://").removesuffix("/metrics")
    config = prometheus_config(f"127.0.0.1:{engine.metrics_port}", target)
    with run_prometheus(tmp_path_factory.mktemp("prometheus"), config) as prom:
        yield prom


def _ok_on_topic(engine: LiveEngine) -> int:
    last: dict[str, str] = {}
    for e in read_topic(engine.config, engine.config.topics.actions):
        if isinstance(e, ActionResult):
            last[e.key] = e.status
    return sum(s == "ok" for s in last.values())


def test_the_daemon_process_serves_its_counters_and_gauges(daemon: DaemonProcess) -> None:
    def moved() -> bool:
        return daemon.metrics().get('xdrs_daemon_moves_total{status="ok"}', 0) > 0

    assert wait_for(moved, 90, every=0.5), (daemon.proc.poll(), daemon.metrics())
    m = daemon.metrics()
    for name in ("xdrs_daemon_in_flight", "xdrs_daemon_waiting",
                 "xdrs_daemon_pending_approvals", 'xdrs_daemon_held_back{why="approval"}',
                 'xdrs_daemon_skipped_total{why="old_metrics"}',
                 'xdrs_daemon_failed_total{why="platform"}'):  # fmt: skip
        assert name in m, name
    assert m["xdrs_daemon_pending_approvals"] == 0  # full automation: nothing asks
    assert not any(k.startswith("xdrs_engine") for k in m)  # the daemon's own registry


def test_dashboard_daemon_panels_show_the_daemon_process(
    engine: LiveEngine, daemon: DaemonProcess, scraping: Prometheus
) -> None:
    assert wait_for(lambda: scraping.values('up{job="xdrs-daemon"}') == [1.0], 30)
    q = queries(dashboard())
    by_status = q["Daemon moves since start, by status"][0]

    def agree() -> bool:  # the daemon's ok moves, scraped, are the topic's
        got = by(scraping, by_status, "status")
        return got.get("ok", 0) > 0 and got["ok"] == _ok_on_topic(engine)

    assert wait_for(agree, 90, every=1.0), (by(scraping, by_status, "status"),
                                            _ok_on_topic(engine))  # fmt: skip
    assert set(by(scraping, by_status, "status")) == set(STATUSES)
    gauges = (
        "Migrations in flight",
        "Moves waiting behind a limit",
        "Moves waiting for approval",
        "Recommendations waiting for approval",
    )
    for title in gauges:
        assert len(scraping.values(fill(q[title][0], []))) == 1, title
    held = by(scraping, q["Moves held back now, by cause"][0], "why")
    assert held["approval"] == 0 and "per_host" in held
    assert "timeout" in by(scraping, q["Failed migrations since start, by reason"][0], "why")
