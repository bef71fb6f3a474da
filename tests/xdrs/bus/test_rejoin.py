"""An engine given no partition rejoins its group, and the group goes on (both brokers).

The fault that motivates it (kafka-python's leader assigning partitions before its
metadata holds the topics) cannot be caused at will; an engine idle by design (two
engines, one partition) is given no partition the same way, and must rejoin with growing
waits without stopping the other from absorbing every sample."""

from __future__ import annotations

import dataclasses

import pytest

from collectors.replay import ReplayCollector
from xdrs.bus.kafka import KafkaSink, create_topics
from xdrs.engine.daemon import EngineDaemon
from xdrs.engine.engine import Engine, EngineArgs
from xdrs.engine.rejoin import Rejoin

from .conftest import busy_trace, group, small_scenario, wait_for

pytestmark = pytest.mark.broker


def test_an_engine_with_no_partition_rejoins_and_the_group_goes_on(config, running):
    one = dataclasses.replace(config, topics=dataclasses.replace(
        config.topics, prefix=config.topics.prefix + "one."), partitions=1)  # fmt: skip
    create_topics(one)
    engines = [EngineDaemon(one, Engine(EngineArgs(cooldown_s=0.5)), group=group(one, "e"))
               for _ in range(2)]  # fmt: skip
    for e in engines:
        e.rejoin = Rejoin(first_s=1.0, max_s=4.0)
        running.start(e.run)
    collector = ReplayCollector(small_scenario(), busy_trace(), KafkaSink(one), speed=5.0)
    running.start(lambda stop: collector.run(stop, steps=60))
    # the engine given nothing rejoins (1 s, then 2 s, 4 s, ...): at least twice in the run
    assert wait_for(lambda: max(e.rejoin.count for e in engines) >= 2, 60)
    # and the partition is always someone's: every sample reaches an engine
    assert wait_for(lambda: collector.step_no == 60, 60)
    assert wait_for(lambda: sum(e.engine.samples for e in engines) >= collector.samples_sent, 60)
