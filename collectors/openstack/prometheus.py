"""Host and server load from the deployment's Prometheus: one PromQL query per metric.

OpenStack deployments expose host load through node_exporter and instance load through
Ceilometer's Prometheus exporter (``../shared/reference/openstack.md``). A cycle asks
Prometheus's HTTP API (``/api/v1/query``) three instant queries, whatever the number of
servers (Watcher asks one per server and metric):

- host CPU busy ratio: ``1 - avg by (fqdn) (rate(node_cpu_seconds_total{mode="idle"}[W]))``
- server CPU, ns of CPU time per second: ``sum by (resource) (rate(ceilometer_cpu[W]))``
- server memory, MB: ``max by (resource) (ceilometer_memory_usage)``

Metric and label names are :class:`SeriesNames` fields. A series is *fresh* when it is in
the answer: a rate needs two samples inside the window ``W`` and a gauge that stopped being
scraped is marked stale by Prometheus, so a host or server whose exporter went quiet drops
out of the answer. TLS is verified by default (system CAs or ``ca_bundle``).
"""

from __future__ import annotations

import math
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import msgspec

__all__ = ["Load", "PromClient", "PromError", "PromSpec", "SeriesNames", "query_load"]

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class PromError(Exception):
    """Prometheus unreachable, refusing, or answering something that is not a vector."""


@dataclass(frozen=True)
class SeriesNames:
    """The series a deployment exposes (defaults: node_exporter and Ceilometer, as Watcher)."""

    host_cpu: str = "node_cpu_seconds_total"
    host_label: str = "fqdn"
    idle_mode: str = "idle"
    server_cpu: str = "ceilometer_cpu"
    server_memory: str = "ceilometer_memory_usage"
    server_label: str = "resource"
    window_s: float = 60.0

    def validate(self) -> None:
        for name in ("host_cpu", "server_cpu", "server_memory"):
            if not _NAME.match(getattr(self, name)):
                raise ValueError(f"{name}: not a Prometheus metric name: {getattr(self, name)!r}")
        for name in ("host_label", "server_label"):
            if not _LABEL.match(getattr(self, name)):
                raise ValueError(f"{name}: not a Prometheus label name: {getattr(self, name)!r}")
        if not _LABEL.match(self.idle_mode.replace("-", "_")) or '"' in self.idle_mode:
            raise ValueError(f"idle_mode: expected a plain word, got {self.idle_mode!r}")
        if not 1.0 <= self.window_s <= 86_400.0:
            raise ValueError(f"window_s: expected 1..86400 seconds, got {self.window_s!r}")

    def queries(self) -> dict[str, str]:
        """The cycle's PromQL, by what it measures."""
        w = f"[{int(self.window_s)}s]"
        return {
            "host_cpu": f"1 - avg by ({self.host_label}) "
            f'(rate({self.host_cpu}{{mode="{self.idle_mode}"}}{w}))',
            "server_cpu": f"sum by ({self.server_label}) (rate({self.server_cpu}{w}))",
            "server_memory": f"max by ({self.server_label}) ({self.server_memory})",
        }


@dataclass(frozen=True)
class PromSpec:
    """Where Prometheus is: ``url`` (http or https), TLS as every platform connection."""

    url: str
    ca_bundle: str | None = None
    insecure: bool = False
    timeout_s: float = 30.0

    def validate(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url: expected http(s)://HOST:PORT, got {self.url!r}")
        if self.insecure and self.ca_bundle:
            raise ValueError("ca_bundle and insecure: choose one")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s: expected a number > 0, got {self.timeout_s!r}")


class _Sample(msgspec.Struct):
    metric: dict[str, str]
    value: tuple[float, str]


class _Data(msgspec.Struct):
    resultType: str  # noqa: N815 (Prometheus's field name)
    result: list[_Sample]


class _Answer(msgspec.Struct):
    status: str
    data: _Data | None = None
    error: str = ""


_DECODER = msgspec.json.Decoder(_Answer)


class PromClient:
    """Instant queries against one Prometheus; ``queries`` counts them (for the exporter)."""

    def __init__(self, spec: PromSpec) -> None:
        spec.validate()
        self.spec = spec
        self.queries = 0
        self._ctx: ssl.SSLContext | None = None
        if spec.url.startswith("https"):
            self._ctx = ssl.create_default_context(cafile=spec.ca_bundle)
            if spec.insecure:
                self._ctx.check_hostname = False
                self._ctx.verify_mode = ssl.CERT_NONE

    def query(self, expr: str, label: str) -> tuple[float, dict[str, float]]:
        """``(evaluation time, {value of label: value})`` of an instant vector query."""
        url = f"{self.spec.url.rstrip('/')}/api/v1/query"
        body = urllib.parse.urlencode({"query": expr}).encode()
        self.queries += 1
        try:
            with urllib.request.urlopen(
                url, data=body, timeout=self.spec.timeout_s, context=self._ctx
            ) as r:
                raw = r.read(64 << 20)
        except urllib.error.HTTPError as e:
            raw = e.read(1 << 16)
            if e.code not in (400, 422):
                raise PromError(f"Prometheus at {self.spec.url}: HTTP {e.code}") from None
        except (OSError, ssl.SSLError) as e:
            raise PromError(f"Prometheus at {self.spec.url}: {_reason(e)}") from None
        return _vector(raw, self.spec.url, expr, label)


def _reason(e: BaseException) -> str:
    inner = getattr(e, "reason", None)
    return str(inner if inner is not None else e).splitlines()[0][:300]


def _vector(raw: bytes, url: str, expr: str, label: str) -> tuple[float, dict[str, float]]:
    try:
        answer = _DECODER.decode(raw)
    except msgspec.DecodeError as e:
        raise PromError(f"Prometheus at {url}: not a query answer ({str(e)[:200]})") from None
    if answer.status != "success" or answer.data is None:
        raise PromError(f"Prometheus at {url}: query {expr!r} failed: {answer.error[:300]}")
    if answer.data.resultType != "vector":
        raise PromError(f"Prometheus at {url}: {expr!r} gave a {answer.data.resultType}")
    out: dict[str, float] = {}
    at = time.time()
    for s in answer.data.result:
        key = s.metric.get(label)
        if not key:
            continue
        at = s.value[0]
        try:
            v = float(s.value[1])
        except ValueError:
            continue
        if math.isfinite(v):  # NaN and inf are no measurement
            out[key] = v
    return at, out


@dataclass
class Load:
    """One cycle's answers: host busy ratio (0..1) by host label, server CPU (ns/s) and
    memory (MB) by server label, the evaluation time (epoch s)."""

    ts: float
    host_busy: dict[str, float] = field(default_factory=dict)
    server_cpu_ns: dict[str, float] = field(default_factory=dict)
    server_mem_mb: dict[str, float] = field(default_factory=dict)


def query_load(client: PromClient, names: SeriesNames) -> Load:
    """The three queries of one cycle."""
    q = names.queries()
    ts, host = client.query(q["host_cpu"], names.host_label)
    _, cpu = client.query(q["server_cpu"], names.server_label)
    _, mem = client.query(q["server_memory"], names.server_label)
    return Load(ts, host, cpu, mem)
