"""Trace replay: a simulated platform driven by real utilisation traces.

It publishes hosts, VMs and per-host metric batches like a real collector would, at a
configurable speed-up, and applies migrations to its simulated cluster. The demo and the
load tests use it; it needs no vCenter and no OpenStack. :class:`ReplayCollector` is both
the platform's :class:`collectors.platform.Source` and its :class:`collectors.platform.Mover`
(the replayed cluster lives in the collector's process).
"""

from collectors.replay.collector import ReplayCollector
from collectors.replay.scenario import Scenario, load_scenario
from collectors.replay.traces import Trace, TraceError, load_trace

__all__ = ["ReplayCollector", "Scenario", "Trace", "TraceError", "load_scenario", "load_trace"]
