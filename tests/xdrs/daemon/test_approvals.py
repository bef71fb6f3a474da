"""``xdrs recommendations list|show|approve|reject`` against a daemon at ``manual``, on the
real brokers."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from collectors.events import Approval, Move, Recommendation, inventory_key
from collectors.replay import ReplayCollector
from tests.support import wait_for
from xdrs.bus.kafka import KafkaSink
from xdrs.cli import main
from xdrs.daemon.api import ApiConfig, ApiServer
from xdrs.daemon.approvals import read_topic
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy, PolicyFile
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon

from .sim import feed, scenario, spread_moves, steady_trace

pytestmark = pytest.mark.broker


def _cli(config, *argv):
    return main(["recommendations", *argv, "--bootstrap-servers", config.bootstrap,
                 "--topic-prefix", config.topics.prefix])  # fmt: skip


def _host(dc: ReplayCollector, vm: str) -> str:
    return dc.hosts[int(dc.place[dc.vm_index[vm]])].uuid


def test_approve_reject_and_a_changed_placement_refused(config, running, capsys):
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    opts = DaemonOptions(limits=Limits(vm_cooldown_s=0, host_hold_s=0),
                         policy=PolicyFile(policy=Policy(default="manual")))  # fmt: skip
    daemon = RebalanceDaemon(config, dc, opts)  # the replayed cluster's instant mover
    running.start(daemon.run)
    assert daemon.ready.wait(60)
    moves = spread_moves(dc, "c0", 3, "r1")
    rec = Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, moves)
    sink.publish("recommendations", inventory_key("c0", "recommendation", "r1"), rec)
    sink.flush()

    def listed():
        capsys.readouterr()
        assert _cli(config, "list") == 0
        return "r1 " in capsys.readouterr().out

    assert wait_for(listed, 30)
    assert _cli(config, "show", "r1") == 0
    out = capsys.readouterr().out
    assert "r1/2" in out and "held: awaiting approval: cluster automation is manual" in out
    assert all(_host(dc, m.vm) == m.src for m in moves)  # manual: nothing ran

    assert _cli(config, "approve", "r1", "--move", "r1/0", "--by", "ann") == 0
    assert "r1/0: " in capsys.readouterr().out
    assert wait_for(lambda: _host(dc, moves[0].vm) == moves[0].dst, 30)
    m1 = moves[1]
    other = next(h.uuid for h in dc.hosts if h.cluster == "c0" and h.uuid not in (m1.src, m1.dst))
    dc.move(rec, Move("x/0", m1.vm, m1.src, other, "imbalance"))  # someone else moved it
    assert _cli(config, "approve", "r1") == 1
    err = capsys.readouterr().err
    assert f"placement changed: VM {m1.vm} is on {other}, not on {m1.src}" in err
    assert _host(dc, moves[2].vm) == moves[2].src

    assert _cli(config, "reject", "r1", "--by", "bob") == 0
    out = capsys.readouterr().out
    assert "r1/1: skipped: rejected: by bob" in out and "r1/2: skipped: rejected: by bob" in out
    assert _cli(config, "approve", "r1") == 1
    assert "no move is waiting for approval" in capsys.readouterr().err
    assert _cli(config, "approve", "nope") == 1
    assert "not on the recommendations topic" in capsys.readouterr().err
    sink.close()


def test_recommendations_needs_the_bus(capsys):
    assert main(["recommendations", "list"]) == 2
    assert "--bootstrap-servers: required" in capsys.readouterr().err


def test_the_http_api_of_a_daemon_on_the_bus(config, running):
    """An approval over HTTP runs at once and is recorded on the recommendations topic."""
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    opts = DaemonOptions(limits=Limits(vm_cooldown_s=0, host_hold_s=0),
                         policy=PolicyFile(policy=Policy(default="manual")))  # fmt: skip
    daemon = RebalanceDaemon(config, dc, opts)
    server = ApiServer(daemon.control(), ApiConfig(port=0))
    server.start()
    try:
        assert _get(server, "/v1/recommendations")[0] == 503  # still rebuilding
        running.start(daemon.run)
        assert daemon.ready.wait(60)
        moves = spread_moves(dc, "c0", 2, "r1")
        rec = Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, moves)
        sink.publish("recommendations", inventory_key("c0", "recommendation", "r1"), rec)
        sink.flush()
        assert wait_for(lambda: _get(server, "/v1/recommendations")[1]["recommendations"], 30)
        status, out = _post(server, "/v1/recommendations/r1/approve", {"by": "dee"})
        assert status == 200 and out["id"] == "r1"
        assert wait_for(lambda: all(_host(dc, m.vm) == m.dst for m in moves), 30)
        approvals = [e for e in read_topic(config, config.topics.recommendations)
                     if isinstance(e, Approval)]  # fmt: skip
        assert [(a.recommendation, a.decision, a.by) for a in approvals] == [("r1", "approve",
                                                                                "dee")]  # fmt: skip
        assert _post(server, "/v1/recommendations/r1/approve", {})[0] == 409  # replayed
    finally:
        server.close()
        sink.close()


def _get(server: ApiServer, path: str):
    return _call(urllib.request.Request(server.url + path))


def _post(server: ApiServer, path: str, body: object):
    return _call(urllib.request.Request(server.url + path, data=json.dumps(body).encode(),
                                        headers={"Content-Type": "application/json"}))  # fmt: skip


def _call(req: urllib.request.Request):
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
