"""Several engines in one consumer group share the clusters: each cluster lives in one."""

from __future__ import annotations

import zlib

import pytest

from collectors.replay import ReplayCollector
from collectors.replay.scenario import parse_scenario
from xdrs.bus.kafka import KafkaSink
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs

from .conftest import busy_trace, group, wait_for

pytestmark = pytest.mark.broker


def _clusters_on_every_partition(n_partitions):
    names, seen = [], set()
    i = 0
    while len(seen) < n_partitions:
        name = f"k{i}"
        part = zlib.crc32(name.encode()) % n_partitions
        if part not in seen:
            seen.add(part)
            names.append(name)
        i += 1
    return names


def test_two_engines_split_the_clusters(config, running):
    names = _clusters_on_every_partition(config.partitions)
    scenario = parse_scenario({
        "format": "xdrs-replay-scenario/1", "vms": 60, "placement": "skewed",
        "clusters": [{"name": n, "hosts": [{"count": 3, "vcpus": 8, "memory_mb": 65536}]}
                     for n in names],
        "flavors": [{"vcpus": 2, "memory_mb": 4096}],
    })  # fmt: skip
    engines = [EngineDaemon(config, Engine(EngineArgs(cooldown_s=0.5)), group=group(config, "pair"))
               for _ in range(2)]  # fmt: skip
    for e in engines:
        running.start(e.run)
    collector = ReplayCollector(scenario, busy_trace(), KafkaSink(config), speed=10.0)
    running.start(lambda stop: collector.run(stop, steps=100))

    def split():
        owned = [set(e.engine.tables) for e in engines]
        return all(owned) and not (owned[0] & owned[1]) and owned[0] | owned[1] == set(names)

    assert wait_for(split, 60), [sorted(e.engine.tables) for e in engines]
    # and each engine's share is complete: every VM of its clusters, demand for each
    assert wait_for(lambda: sum(e.engine.samples for e in engines) >= collector.samples_sent
                    - len(collector.vm_ids) * 2, 30)  # fmt: skip
    for e in engines:
        for name, table in e.engine.tables.items():
            mine = [v for v in collector.vm_ids if v.startswith(f"{name}-")]
            assert sorted(table.vm_ids) == sorted(mine)
