"""The simulator's broker tests (the metric history on the metrics topic) use the bus
tests' real embedded broker (Tansu; Apache Kafka is exercised by the bus tests)."""

from tests.xdrs.bus.conftest import broker, config  # noqa: F401 - fixtures
