"""The daemon's broker tests run on both real brokers, with the bus tests' fixtures."""

from tests.xdrs.bus.conftest import (  # noqa: F401 - fixtures and the parametrising hook
    apache_kafka,
    broker,
    config,
    pytest_generate_tests,
    running,
)
