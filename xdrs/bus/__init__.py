"""Kafka I/O: the embedded broker and kafka-python producers and consumers.

Only this package (and the collectors' own adapters) import kafka-python; the placement core
and the event schema never do.
"""

from xdrs.bus.broker import BrokerError, EmbeddedBroker
from xdrs.bus.config import BusConfig, Topics

__all__ = ["BrokerError", "BusConfig", "EmbeddedBroker", "Topics"]
