"""The platform interface: the Protocols, the replay platform behind them, the registry."""

from __future__ import annotations

import threading

import pytest

from collectors.events import Move, Recommendation, VmEvent
from collectors.platform import Mover, Source
from collectors.replay import ReplayCollector
from tests.collectors.replay.test_collector import ListSink, scenario, small_trace
from xdrs.cli import build_parser
from xdrs.cli.platforms import PLATFORMS, Platform, add


def _collector() -> tuple[ReplayCollector, ListSink]:
    sink = ListSink()
    return ReplayCollector(scenario(vms=6), small_trace(), sink, speed=0), sink


def test_the_replay_platform_is_a_source_and_a_mover() -> None:
    c, sink = _collector()
    assert isinstance(c, Source) and isinstance(c, Mover)
    assert not isinstance(object(), Mover)
    c.run(threading.Event(), steps=2)
    assert len(sink.of("metrics")) == 2 * len(c.hosts)


def test_the_replay_mover_moves_one_vm_and_owns_its_clusters() -> None:
    c, sink = _collector()
    assert c.owns("a") and c.owns("b") and not c.owns("vc/a")
    j = next(j for j in range(len(c.vm_ids)) if c.hosts[int(c.place[j])].cluster == "a")
    src = c.hosts[int(c.place[j])].uuid
    dst = next(h.uuid for h in c.hosts if h.cluster == "a" and h.uuid != src)
    m = Move("r/0", c.vm_ids[j], src, dst, "imbalance")
    rec = Recommendation("r", "a", "imbalance", "balance", 0, 0, 0, [m])
    result = c.move(rec, m)
    assert (result.status, result.key) == ("ok", "r/0")
    assert [e.host for e in sink.of("inventory") if isinstance(e, VmEvent)] == [dst]
    assert sink.of("actions") == []  # the actuator daemon reports results, not the mover
    again = c.move(rec, m)
    assert again.status == "failed" and "not on the source" in again.error


def test_registry_refuses_a_second_platform_of_the_same_name() -> None:
    before = dict(PLATFORMS)
    with pytest.raises(ValueError, match="'vsphere' is already registered"):
        add(Platform("vsphere", "again", lambda p: None))
    assert before == PLATFORMS


def test_collect_and_actuate_commands_come_from_the_registry() -> None:
    parser = build_parser()
    vc = ["--url", "vc", "--user", "u"]
    collect_args = {"vsphere": vc, "openstack": ["--prometheus-url", "http://prom:9090"]}
    for name, platform in PLATFORMS.items():
        argv = ["collect", name, *collect_args.get(name, [])]
        assert parser.parse_args(argv).collect_platform == name
        if platform.actuate is not None:
            argv = ["actuate", name, *(vc if name == "vsphere" else [])]
            assert parser.parse_args(argv).actuate_platform == name
    assert set(PLATFORMS) == {"replay", "vsphere", "openstack"}
    assert PLATFORMS["replay"].actuate is None  # the replayed cluster lives in its collector
