"""Bus configuration: secrets passed through to kafka-python never show in a repr or message."""

from __future__ import annotations

import pytest

from xdrs.bus.config import BusConfig

SECRET = "hunter2-Pa55"


@pytest.mark.parametrize("key", ["sasl_plain_password", "ssl_password"])
def test_repr_hides_secret_options(key: str) -> None:
    cfg = BusConfig("127.0.0.1:9092", extra={key: SECRET, "security_protocol": "SASL_SSL"})
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    assert f"'{key}': '***'" in repr(cfg)
    assert "'security_protocol': 'SASL_SSL'" in repr(cfg)  # the rest stays visible
    assert cfg.common()[key] == SECRET  # and the client still gets it


def test_credentials_in_bootstrap_servers_are_refused_without_showing_them() -> None:
    with pytest.raises(ValueError, match="without credentials") as err:
        BusConfig(f"127.0.0.1:9092,user:{SECRET}@broker:9092")
    assert SECRET not in str(err.value)
    assert "'***@broker:9092'" in str(err.value)
