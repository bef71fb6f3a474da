"""Record the test cloud's answers to one collection cycle, for the replayed unit tests and
the benchmark (tests/collectors/openstack/data/recorded.json).

Run from the checkout with the test cloud up (``scripts/openstack.sh start``):

    OS_CLIENT_CONFIG_FILE=/tmp/xdrs-openstack-$UID/clouds.yaml \\
        .venv/bin/python scripts/openstack/record.py tests/collectors/openstack/data/recorded.json

It boots three servers (two in an anti-affinity group, one in each zone), serves their load
with our exporter to a Prometheus started here, then records every HTTP exchange of one
``collect_inventory`` and of the three PromQL queries: method, path and query, status, the
headers a client reads, and the body. Each service's ``http://127.0.0.1:PORT`` becomes
``@PORT@`` (the replay server serves them all under one address); the token is replaced;
request bodies (the password) are not kept. The servers are deleted at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import requests
from prometheus_client import CollectorRegistry, start_http_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from collectors.openstack import CloudSpec, collect_inventory, connect  # noqa: E402
from collectors.openstack.loadexporter import LoadExporter, LoadModel  # noqa: E402
from collectors.openstack.prometheus import SeriesNames  # noqa: E402
from collectors.replay.traces import load_trace  # noqa: E402
from tests.collectors.openstack.conftest import (  # noqa: E402
    CLOUD,
    boot,
    delete_all,
    prometheus_scraping,
)

KEPT_HEADERS = ("content-type", "x-subject-token", "openstack-api-version",
                "x-openstack-nova-api-version")  # fmt: skip
TOKEN = "recorded-token"  # a placeholder for the recorded token
LOOPBACK = "http://127.0.0.1:"


def _local(url: str) -> str:
    """``http://127.0.0.1:PORT/path?q`` -> ``@PORT@/path?q``."""
    parts = urllib.parse.urlsplit(url)
    return f"@{parts.port}@{parts.path}" + (f"?{parts.query}" if parts.query else "")


def _scrub(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, TOKEN)
    out, i = [], 0
    while (j := text.find(LOOPBACK, i)) >= 0:
        k = j + len(LOOPBACK)
        port = "".join(c for c in text[k : k + 5] if c.isdigit())
        out.append(text[i:j] + f"@{port}@")
        i = k + len(port)
    return "".join(out) + text[i:]


class Recorder:
    """Keeps every exchange that goes through ``requests`` while installed."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []
        self.token: str | None = None
        self._send = requests.adapters.HTTPAdapter.send

    def __enter__(self) -> Recorder:
        recorder, send = self, self._send

        def recording(adapter: Any, request: Any, *args: Any, **kw: Any) -> Any:
            resp = send(adapter, request, *args, **kw)
            recorder.keep(request.method, request.url, resp)
            return resp

        requests.adapters.HTTPAdapter.send = recording  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        requests.adapters.HTTPAdapter.send = self._send  # type: ignore[method-assign]

    def keep(self, method: str, url: str, resp: Any) -> None:
        self.token = resp.headers.get("x-subject-token") or self.token
        headers = {k: _scrub(v, self.token) for k, v in resp.headers.items()
                   if k.lower() in KEPT_HEADERS}  # fmt: skip
        self.exchanges.append({
            "method": method, "path": _local(url), "status": resp.status_code,
            "headers": headers, "body": _scrub(resp.text, self.token),
        })  # fmt: skip


def _prometheus_answers(url: str, names: SeriesNames) -> list[dict[str, Any]]:
    out = []
    for expr in names.queries().values():
        body = urllib.parse.urlencode({"query": expr}).encode()
        with urllib.request.urlopen(f"{url}/api/v1/query", data=body, timeout=30) as r:
            text = r.read().decode()
        out.append({"method": "POST", "path": "@prometheus@/api/v1/query", "query": expr,
                    "status": 200, "headers": {"content-type": "application/json"},
                    "body": text})  # fmt: skip
    return out


def _load(conn: Any, names: SeriesNames, servers: list[Any]) -> list[dict[str, Any]]:
    model = LoadModel(load_trace("planetlab:20110303"), step_s=1.0)
    model.update(collect_inventory(conn, CLOUD))
    registry = CollectorRegistry()
    registry.register(LoadExporter(model, names))
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    target = f"127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as d, prometheus_scraping(target, Path(d)) as url:
            deadline = time.monotonic() + 60
            want = {s.id for s in servers}
            while time.monotonic() < deadline:
                answers = _prometheus_answers(url, names)
                if all(w in answers[1]["body"] for w in want):
                    return answers
                time.sleep(1)
            raise SystemExit("record.py: Prometheus never had the servers' series")
    finally:
        server.shutdown()


def main(out: Path) -> None:
    conn = connect(CloudSpec(CLOUD))
    group = conn.compute.create_server_group(name="rec-apart", policy="anti-affinity")
    hint = {"group": group.id}
    servers = [boot(conn, "rec-a1", "m1.medium", availability_zone="az1:fake-1",
                    scheduler_hints=hint),
               boot(conn, "rec-a2", "m1.small", availability_zone="az1:fake-2",
                    scheduler_hints=hint),
               boot(conn, "rec-b", "m1.tiny", availability_zone="az2:fake-3")]  # fmt: skip
    try:
        prom = _load(conn, SeriesNames(window_s=5.0), servers)
        with Recorder() as rec:  # from the first request: discovery, token and catalog
            fresh = connect(CloudSpec(CLOUD))
            collect_inventory(fresh, CLOUD)
        fresh.close()
    finally:
        delete_all(conn, servers)
        conn.compute.delete_server_group(group)
    doc = {"format": "xdrs-recorded-http/1", "cloud": CLOUD, "window_s": 5.0,
           "exchanges": rec.exchanges + prom}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(f"record.py: {len(doc['exchanges'])} exchanges -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: record.py OUT.json")
    main(Path(sys.argv[1]))
