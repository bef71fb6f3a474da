"""tests.support.prometheus: a real Prometheus serving its configuration, a bad one named."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.support.prometheus import PrometheusStartError, running_prometheus

pytestmark = pytest.mark.prometheus


def test_serves_the_given_configuration_and_stops(tmp_path: Path) -> None:
    config = {"global": {"scrape_interval": "7s"}, "scrape_configs": []}
    with running_prometheus(config, tmp_path) as url:
        with urllib.request.urlopen(f"{url}/api/v1/status/config", timeout=10) as r:
            answer = orjson.loads(r.read())
        assert answer["status"] == "success" and "scrape_interval: 7s" in answer["data"]["yaml"]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/-/ready", timeout=2)


def test_a_bad_configuration_is_an_error_holding_the_log(tmp_path: Path) -> None:
    with (
        pytest.raises(PrometheusStartError, match=r"Prometheus exited \(\d+\) at http://") as e,
        running_prometheus({"global": {"scrape_interval": "often"}}, tmp_path),
    ):
        pytest.fail("a bad configuration started")
    assert "often" in str(e.value)
