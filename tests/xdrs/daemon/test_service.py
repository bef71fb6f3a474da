"""The daemon on the real brokers: killed mid-wave and restarted (a process of its own)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collectors.events import ActionResult, Recommendation, inventory_key
from collectors.replay import ReplayCollector
from tests.support import wait_for
from xdrs.bus.kafka import KafkaSink

from ..bus.conftest import read_all
from .sim import feed, scenario, spread_moves, steady_trace

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[3]


def _daemon(config, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.xdrs.daemon.platform", config.bootstrap,
         config.topics.prefix, str(log)], cwd=ROOT)  # fmt: skip


def _log(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]  # type: ignore[misc]


def in_flight_of(log: Path) -> set[str]:
    lines = _log(log)
    return {k for e, k in lines if e == "start"} - {k for e, k in lines if e == "end"}


def _finals(config) -> dict[str, list[ActionResult]]:
    out: dict[str, list[ActionResult]] = {}
    for r in read_all(config, config.topics.actions, settle_s=0.3):
        if isinstance(r.event, ActionResult):
            out.setdefault(r.event.key, []).append(r.event)
    return out


def test_sigkill_mid_wave_then_restart_issues_no_move_twice_and_records_all(
    config, running, tmp_path
):
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    moves = spread_moves(dc, "c0", 12, "r1")
    rec = Recommendation("r1", "c0", "imbalance", "balance", time.time(), 1.0, 0.5, moves)
    sink.publish("recommendations", inventory_key("c0", "recommendation", "r1"), rec)
    sink.flush()
    log = tmp_path / "platform.log"
    first = _daemon(config, log)
    try:
        assert wait_for(lambda: len(_log(log)) >= 5 and in_flight_of(log), 60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    cut = in_flight_of(log)
    before = len([e for e, _ in _log(log) if e == "start"])
    second = _daemon(config, log)
    try:
        keys = {m.key for m in moves}

        def all_final():
            f = _finals(config)
            return all(any(r.status in ("ok", "failed") for r in f.get(k, [])) for k in keys)

        assert wait_for(all_final, 90), "not every move has a result"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    starts = [k for e, k in _log(log) if e == "start"]
    assert len(starts) == len(set(starts)), "a migration was issued twice"
    assert 0 < before < len(moves) and len(starts) > before  # the plan resumed after the kill
    finals = _finals(config)
    for k in keys:
        ends = [r for r in finals[k] if r.status in ("ok", "failed", "skipped")]
        assert len(ends) == 1, (k, finals[k])
    for k in starts:  # every issued migration is on the record: started, then its result
        assert finals[k][0].status == "started"
    for k in cut:  # interrupted by the kill: resolved from the inventory on restart
        (end,) = [r for r in finals[k] if r.status != "started"]
        assert end.status == "failed" and end.error.startswith("Interrupted"), end
        assert "after restart" in end.error, end  # adopted, then failed at its timeout
    sink.close()
