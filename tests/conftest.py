"""Suite-wide test set-up.

The markers (``broker``, ``kafka``, ``vcsim``, ``prometheus``, ``openstack``) are declared
in pyproject.toml, so a developer can select by what a test needs (``-m "not broker"``).
A test gets its marker from the fixtures it uses (the broker, the vCenter simulator's
binary, Prometheus, the test cloud), and a ``kafka`` test also carries ``broker``. A test
that starts a broker of its own without carrying ``broker`` fails, naming the marker, so
a selection never starts a broker it said it would not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kafka import ApacheKafka
from xdrs.bus.broker import EmbeddedBroker

FIXTURE_MARKERS = {
    "broker": "broker",
    "vcsim_bin": "vcsim",
    "prometheus": "prometheus",
    "cloud": "openstack",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in used:
                item.add_marker(marker)
        if item.get_closest_marker("kafka") is not None:
            item.add_marker(pytest.mark.broker)


@pytest.fixture(autouse=True)
def _brokers_only_where_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("broker") is None:

        def refuse(self: Any) -> Any:
            pytest.fail(f"{type(self).__name__} started by a test not marked `broker`")

        monkeypatch.setattr(EmbeddedBroker, "start", refuse)
        monkeypatch.setattr(ApacheKafka, "start", refuse)
    yield
