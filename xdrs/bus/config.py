"""Bus configuration: topic names, client settings, and the kafka-python client factories."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["BusConfig", "Topics", "cluster_partition"]

# The client settings a user may pass through (SASL/SSL and friends), never reimplemented.
PASSTHROUGH = frozenset({
    "security_protocol", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password",
    "ssl_check_hostname", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    "sasl_kerberos_service_name", "sasl_oauth_token_provider", "request_timeout_ms",
    "api_version", "compression_type", "linger_ms", "batch_size", "fetch_max_wait_ms",
})  # fmt: skip
PRODUCER_ONLY = frozenset({"compression_type", "linger_ms", "batch_size"})
SECRET_WORDS = ("password", "token", "secret")  # an extra whose key holds one is never shown


def _shown(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` as a repr may show it: secret values replaced by ``'***'``."""
    return {k: "***" if any(w in k for w in SECRET_WORDS) else v for k, v in extra.items()}


@dataclass(frozen=True)
class Topics:
    """Topic names; ``prefix`` lets several deployments (or tests) share one broker."""

    prefix: str = "xdrs."

    @property
    def inventory(self) -> str:
        return self.prefix + "inventory"

    @property
    def metrics(self) -> str:
        return self.prefix + "metrics"

    @property
    def recommendations(self) -> str:
        return self.prefix + "recommendations"

    @property
    def actions(self) -> str:
        return self.prefix + "actions"

    @property
    def dead_letter(self) -> str:
        return self.prefix + "dead-letter"

    def all(self) -> tuple[str, ...]:
        return (self.inventory, self.metrics, self.recommendations, self.actions,
                self.dead_letter)  # fmt: skip


@dataclass(frozen=True)
class BusConfig:
    """Where the broker is and how to talk to it.

    Parameters
    ----------
    bootstrap : str
        ``host:port[,host:port...]``.
    client_id : str
    topics : Topics
    partitions : int
        Partitions of the inventory and metrics topics (the unit of engine scale-out).
    fast_groups : bool
        Short consumer-group timeouts (the embedded broker and tests); production keeps
        kafka-python's defaults.
    extra : mapping
        kafka-python settings passed through as given (security, SASL, timeouts); the values
        of secret keys (``sasl_plain_password``, ``ssl_password``, ...) are hidden from the
        ``repr``.
    """

    bootstrap: str
    client_id: str = "xdrs"
    topics: Topics = field(default_factory=Topics)
    partitions: int = 4
    fast_groups: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.extra) - PASSTHROUGH)
        if unknown:
            raise ValueError(f"kafka option {unknown[0]!r}: not one of {sorted(PASSTHROUGH)}")
        for server in self.bootstrap.split(","):
            if "@" in server:  # user:password@host is not a Kafka address; never echo it
                raise ValueError(
                    "bootstrap servers: expected host:port[,...] without credentials, got "
                    f"{'***' + server[server.rindex('@') :]!r}; the SASL password goes in "
                    "$XDRS_KAFKA_SASL_PASSWORD"
                )
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"bootstrap servers: expected host:port[,...] with a port 1..65535, "
                    f"got {server!r}"
                )

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)} | {
            "extra": _shown(self.extra)
        }
        return f"BusConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def common(self, producer: bool = False) -> dict[str, Any]:
        """Client settings; producer-only options are left out for consumers and admins."""
        extra = {k: v for k, v in self.extra.items() if producer or k not in PRODUCER_ONLY}
        return {"bootstrap_servers": self.bootstrap.split(","), "client_id": self.client_id,
                **extra}  # fmt: skip

    def group_timeouts(self) -> dict[str, Any]:
        if not self.fast_groups:
            return {}
        # Tansu waits for the whole rebalance timeout (max_poll_interval_ms) on a join.
        return {"max_poll_interval_ms": 4000, "session_timeout_ms": 4000,
                "heartbeat_interval_ms": 1000}  # fmt: skip


def cluster_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of a key: by its cluster part (``cluster\x1f...``).

    Inventory keys name one object (so compaction keeps the latest description of each),
    yet every event of one cluster must land on one partition to stay ordered; the
    cluster's partition is the same in every topic with the same partition count.
    """
    cluster = key.split(b"\x1f", 1)[0]
    return sorted(partitions)[zlib.crc32(cluster) % len(partitions)]
