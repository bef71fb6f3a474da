"""Every query of the Grafana dashboard, evaluated by a real Prometheus scraping a live engine.

The engine (fed by the replay collector over the embedded broker, see conftest.py) is
scraped every second by Debian's Prometheus with deploy/prometheus/prometheus.yml's job;
each dashboard expression then goes through /api/v1/query with Grafana's variables filled
in as Grafana would, and must succeed with data.
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from placement import Reason
from tests.deploy.conftest import (
    CLUSTERS,
    HOSTS_PER_CLUSTER,
    RATE_INTERVALS,
    VMS,
    Pipeline,
    Prometheus,
    by,
    dashboard,
    fill,
    queries,
)
from tests.support import wait_for
from xdrs.daemon.exporter import STATUSES
from xdrs.engine.engine import TRIGGERS

pytestmark = [pytest.mark.prometheus, pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[2]
DATASOURCES = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
BUILTIN = {"__rate_interval"}


def _metric_names(dash: dict[str, Any]) -> set[str]:
    return {m for es in queries(dash).values() for e in es for m in re.findall(r"\bxdrs_\w+", e)}


def test_dashboard_is_wired_to_the_provisioned_datasource() -> None:
    dash = dashboard()
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    variables = {v["name"] for v in dash["templating"]["list"]}
    for p in panels:
        assert p["datasource"]["uid"] == uid, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == uid, p["title"]
            used = set(re.findall(r"\$(\w+)", t["expr"]))
            assert used <= variables | BUILTIN, (p["title"], used)
    for v in dash["templating"]["list"]:
        assert v["datasource"]["uid"] == uid
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles)
    cells = [
        (x, y)
        for p in dash["panels"]
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells)), "panels overlap"
    assert max(x for x, _ in cells) < 24  # Grafana's grid is 24 columns wide


def _ready(pipeline: Pipeline) -> bool:
    d = pipeline.daemon
    return set(d.views) == set(CLUSTERS) and bool(d.published) and d.dead >= 1 \
        and pipeline.progress.applied >= 1  # fmt: skip


@pytest.fixture(scope="module")
def scraped(pipeline: Pipeline, prometheus: Prometheus) -> Prometheus:
    """Waits until the pipeline has done everything the dashboard shows and Prometheus has
    scraped every xdrs series at least five times."""
    assert wait_for(lambda: _ready(pipeline), 30), (
        sorted(pipeline.daemon.views), len(pipeline.daemon.published),
        pipeline.daemon.dead, pipeline.progress.applied,
    )  # fmt: skip

    names = _metric_names(dashboard())

    def scrapes(name: str) -> float:  # scrapes of the least scraped series of ``name``
        got = prometheus.values(f"min(count_over_time({name}[1m]))")
        return got[0] if got else 0.0

    def scraped_enough() -> bool:
        return all(scrapes(n) >= 5 for n in names)

    assert wait_for(scraped_enough, 30, every=0.5), {n: scrapes(n) for n in names}
    return prometheus


def test_dashboard_uses_only_exported_metrics(pipeline: Pipeline, scraped: Prometheus) -> None:
    url = f"http://127.0.0.1:{pipeline.metrics_port}/metrics"
    with urllib.request.urlopen(url) as r:
        text = r.read().decode()
    exported = {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    used = _metric_names(dashboard())
    assert len(used) >= 10
    assert used <= exported, sorted(used - exported)


def test_every_dashboard_query_succeeds_with_data(scraped: Prometheus) -> None:
    dash = dashboard()
    variable = dash["templating"]["list"][0]
    metric = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
    assert metric, variable["definition"]
    clusters = sorted(scraped.label_values(metric[2], metric[1]))
    assert clusters == sorted(CLUSTERS)
    exprs = [e for es in queries(dash).values() for e in es]
    assert len(exprs) >= 15
    failed = {}
    for expr in exprs:
        for interval in RATE_INTERVALS:
            answer = scraped.query(fill(expr, clusters, interval))
            if answer.get("status") != "success" or not answer["data"]["result"]:
                failed[f"{expr} [{interval}]"] = answer
    assert not failed, failed


def test_dashboard_numbers_match_the_pipeline(pipeline: Pipeline, scraped: Prometheus) -> None:
    q = queries(dashboard())
    assert scraped.values(fill(q["Engine up"][0], [])) == [1.0]
    assert scraped.values(fill(q["Clusters"][0], list(CLUSTERS))) == [len(CLUSTERS)]
    hosts = len(CLUSTERS) * HOSTS_PER_CLUSTER
    assert scraped.values(fill(q["Hosts"][0], list(CLUSTERS))) == [hosts]
    assert scraped.values(fill(q["VMs"][0], list(CLUSTERS))) == [VMS]
    current, target = q["Imbalance: current vs target"]
    assert set(by(scraped, current, "cluster")) == set(CLUSTERS)
    assert set(by(scraped, target, "cluster")) == set(CLUSTERS)
    assert len(by(scraped, q["Host CPU load"][0], "host")) == hosts
    assert len(by(scraped, q["Host memory load"][0], "host")) == hosts
    consumed = by(scraped, q["Events consumed by topic"][0], "kind")
    assert consumed.get("metrics", 0) > 0  # the collector is still replaying
    assert set(consumed) == {"inventory", "metrics", "actions"}
    assert "malformed" in by(scraped, q["Dead letters by reason"][0], "reason")
    # series of every trigger and reason exist from the start, at zero (the exporter creates
    # them so that rate() sees the first increment); the totals test checks the values
    triggers = by(scraped, q["Recommendations by trigger"][0], "trigger")
    assert set(triggers) == set(TRIGGERS)
    reasons = by(scraped, q["Recommended moves by reason"][0], "reason")
    assert set(reasons) == {r.name.lower() for r in Reason}
    ages = by(scraped, q["Collector sample age"][0], "cluster")
    assert set(ages) == set(CLUSTERS)
    # an age, not a timestamp nor the replayed trace's time: every sample was sent after the
    # pipeline started, so no age exceeds the time since (the exporter clamps below at 0)
    since_start = time.time() - pipeline.started
    assert all(0 <= a <= since_start for a in ages.values()), (ages, since_start)


def test_rate_panels_show_the_work(pipeline: Pipeline, scraped: Prometheus) -> None:
    """Over the compose file's 1 m rate window (which covers the whole run), the rate panels
    show what the pipeline did; Prometheus first scraped the idle engine, so the counters'
    increases and the latency histogram are visible from the first event."""
    q = queries(dashboard())
    p50, p99 = (
        by(scraped, e, "", "1m")[""] for e in q["Optimiser latency"]
    )  # fmt: skip
    assert 0 < p50 <= p99 <= 10.0  # finite: the optimiser ran while Prometheus watched
    consumed = by(scraped, q["Events consumed by topic"][0], "kind", "1m")
    # not "actions": a labelled series is born at its first value, which rate() cannot see,
    # and the actuator's results arrive in one burst (checked as a series in the test above)
    assert consumed["inventory"] > 0 and consumed["metrics"] > 0, consumed
    assert by(scraped, q["Events consumed by topic"][1], "", "1m")[""] > 0
    dead = by(scraped, q["Dead letters by reason"][0], "reason", "1m")
    assert dead.get("malformed", 0) > 0


def test_totals_match_the_engine(pipeline: Pipeline, scraped: Prometheus) -> None:
    q = queries(dashboard())
    rec_q = q["Recommendations since engine start, by trigger"][0]
    moves_q = q["Moves recommended since engine start, by reason"][0]

    def expected() -> tuple[dict[str, float], dict[str, float]]:
        recs: dict[str, float] = {}
        moves: dict[str, float] = {}
        for r in list(pipeline.daemon.published):
            recs[r.trigger] = recs.get(r.trigger, 0) + 1
            for m in r.moves:
                moves[m.reason] = moves.get(m.reason, 0) + 1
        return recs, moves

    def nonzero(d: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in d.items() if v}

    def scraped_totals() -> tuple[dict[str, float], dict[str, float]]:
        return nonzero(by(scraped, rec_q, "trigger")), nonzero(by(scraped, moves_q, "reason"))

    def agree() -> bool:  # the next scrape catches up with a recommendation just published
        return scraped_totals() == expected()

    assert wait_for(agree, 10, every=0.5), (scraped_totals(), expected())
    assert sum(expected()[1].values()) >= pipeline.progress.applied > 0


def test_daemon_panels_match_the_daemon(pipeline: Pipeline, scraped: Prometheus) -> None:
    """The rebalancing daemon's panels: every status, cause and reason exists from the
    start (at zero), and the totals are the daemon's own (the pipeline's demo actuator)."""
    q = queries(dashboard())
    by_status = q["Daemon moves since start, by status"][0]
    assert set(by(scraped, by_status, "status")) == set(STATUSES)
    assert set(by(scraped, q["Daemon moves by status"][0], "status", "1m")) == set(STATUSES)
    held = by(scraped, q["Moves held back now, by cause"][0], "why")
    assert set(held) == {"approval", "per_host", "per_cluster", "total", "rate", "no_metrics"}
    assert held["approval"] == 0  # full automation: nothing waits for an operator
    skipped = by(scraped, q["Skipped moves by reason"][0], "why")
    assert {"held", "stale", "no_room", "rejected", "placement_changed"} <= set(skipped)
    assert set(by(scraped, q["Failed migrations since start, by reason"][0], "why")) == {
        "timeout", "interrupted", "internal", "platform"}  # fmt: skip
    for title in ("Moves waiting for approval", "Recommendations waiting for approval"):
        assert scraped.values(fill(q[title][0], [])) == [0.0], title
    assert len(scraped.values(fill(q["Migrations in flight"][0], []))) == 1
    assert len(scraped.values(fill(q["Moves waiting behind a limit"][0], []))) == 1

    def agree() -> bool:  # the next scrape catches up with the daemon's last record
        got = by(scraped, by_status, "status")
        p = pipeline.progress
        return (got["ok"], got["failed"], got["skipped"]) == (p.applied, p.failed, p.skipped)

    assert wait_for(agree, 10, every=0.5), (by(scraped, by_status, "status"), pipeline.progress)
    assert pipeline.progress.applied > 0
