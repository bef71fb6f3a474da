"""What-if from the metric history on the Kafka metrics topic (the real embedded broker).

The replay collector publishes a cluster and an hour of metric batches; the simulator
reads them back as its trace, with a snapshot of the same cluster as the start.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from collectors.events import HostEvent, VmEvent
from collectors.replay.collector import ReplayCollector
from collectors.replay.traces import Trace, TraceError
from tests.xdrs.bus.conftest import small_scenario
from xdrs.bus import BusConfig
from xdrs.bus.kafka import KafkaSink
from xdrs.cli import main
from xdrs.engine.table import ClusterTable
from xdrs.sim.history import HistoryRange, read_history
from xdrs.snapshot import write_snapshot

pytestmark = pytest.mark.broker

T0 = 1_700_000_000.0
STEPS = 12  # one hour of 5-minute batches


def varied_trace(v: int = 24, t: int = STEPS) -> Trace:
    """A different CPU % for every VM and step (so a mixed-up sample shows)."""
    cpu = (5.0 + (np.arange(v)[:, None] * 3 + np.arange(t)[None, :] * 7) % 90).astype(float)
    return Trace("varied", tuple(f"vm{i}" for i in range(v)), cpu)


def publish(cfg: BusConfig, steps: range = range(STEPS)) -> ReplayCollector:
    sink = KafkaSink(cfg)
    col = ReplayCollector(small_scenario(vms=24, clusters=1), varied_trace(), sink, speed=0,
                          t0=T0)  # fmt: skip
    col.publish_inventory()
    for k in steps:
        col.publish_step(k)
    sink.flush()
    return col


def snapshot(col: ReplayCollector, path: Path) -> Path:
    table = ClusterTable(col.clusters[0])
    for _, e in col.inventory():
        if isinstance(e, HostEvent):
            table.put_host(e)
        elif isinstance(e, VmEvent):
            table.put_vm(e)
    write_snapshot(table.to_state(), path)
    return path


def test_history_is_what_the_collector_published(config: BusConfig) -> None:
    col = publish(config)
    h = read_history(config)
    tr = h.trace
    assert h.batches == STEPS * len(col.hosts) and h.duplicates == 0 and h.undecodable == 0
    assert tr.step_s == 300.0 and tr.n_steps == STEPS and sorted(tr.vm_names) == col.vm_ids
    row = {n: i for i, n in enumerate(tr.vm_names)}
    order = [row[v] for v in col.vm_ids]
    for k in range(STEPS):
        assert tr.cpu_pct[order, k].tolist() == col.cpu_pct(k).tolist()
    r = tr.resampling
    assert r is not None and r.samples == 24 * STEPS and r.filled == 0 and r.absent == 0


def test_range_duplicates_and_bad_messages(config: BusConfig) -> None:
    col = publish(config)
    sink = KafkaSink(config)
    col.seq = 3  # the collector resends step 3's batches (same hosts, same seq)
    col.sink = sink
    col.publish_step(3)
    sink.publish_raw(config.topics.metrics, b"c0/host/x", b"{not json")
    sink.flush()
    h = read_history(config, HistoryRange(since=T0 + 300 * 3, until=T0 + 300 * 5))
    assert h.trace.n_steps == 3 and h.batches == 3 * len(col.hosts)
    assert h.duplicates == len(col.hosts) and h.undecodable == 1
    with pytest.raises(TraceError, match=r"more than 1,000 bytes .* --history-max-mb"):
        read_history(config, HistoryRange(max_bytes=1000))
    with pytest.raises(TraceError, match=r"no metric batch in the range \(cluster 'nope'"):
        read_history(config, HistoryRange(cluster="nope"))


def test_vm_without_samples_in_a_gap_is_absent(config: BusConfig) -> None:
    # batches at steps 0-3 and 10-11: the 30-minute hole is longer than --max-gap 900 s
    col = publish(config, range(0, 4))
    for k in (10, 11):
        col.publish_step(k)
    col.sink.flush()
    h = read_history(config, max_gap=900.0)
    r = h.trace.resampling
    assert r is not None and r.slots == STEPS
    assert r.filled == 24 * 3 and r.absent == 24 * 3  # 3 slots carried, 3 absent per VM
    assert h.trace.present is not None and not h.trace.present[:, 7:10].any()
    assert h.batches == 6 * len(col.hosts)


def test_simulate_from_snapshot_and_history(
    config: BusConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    col = publish(config)
    snap = snapshot(col, tmp_path / "snap.json")
    out = tmp_path / "m.json"
    code = main(["simulate", "--quiet", "--snapshot", str(snap), "--trace", "bus:",
                 "--bootstrap-servers", config.bootstrap, "--topic-prefix", config.topics.prefix,
                 "--policy", "thr-mmt-0.8", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"bus:: {STEPS * len(col.hosts)} metric batches" in err
    assert f"bus:: 24 VMs, {24 * STEPS} samples onto {STEPS} slots of 300 s" in err
    doc = json.loads(out.read_text())
    assert doc["runs"][0]["vms"] == 24 and doc["runs"][0]["hosts"] == len(col.hosts)
    assert doc["resampling"]["bus:"]["samples"] == 24 * STEPS
    # the simulated demand is the published history: the trace's hour is simulated
    assert doc["series"][0]["t"][-1] == pytest.approx(300.0 * (STEPS - 1) + 0.1)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ([], r"--trace bus: needs --bootstrap-servers"),
        (["--bootstrap-servers", "127.0.0.1:1"], r"no bootstrap server reachable"),
        (["--bootstrap-servers", "127.0.0.1:1", "--since", "5", "--until", "1"],
         r"--since 5 is after --until 1"),
    ],
    ids=["no-broker", "unreachable", "range"],
)  # fmt: skip
def test_bad_history_options_are_one_error(
    extra: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", "--quiet", "--trace", "bus:", "--policy", "npa", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err
