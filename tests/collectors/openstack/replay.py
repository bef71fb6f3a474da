"""The test cloud's recorded answers (``data/recorded.json``, written by
``scripts/openstack/record.py``), served again over real HTTP on loopback.

:class:`Replay` serves Keystone, Placement, Nova and Prometheus under one address
(``/PORT/...`` for the service recorded on ``PORT``, ``/prometheus/...``), so openstacksdk,
keystoneauth and the collector run unchanged with no cloud. A request that was not recorded
answers 404 naming it. :func:`scaled` grows the recording to ``hosts`` hypervisors and
``servers`` servers: every host, provider, server and series is a recorded one with a new
name and id, servers are paged 1,000 at a time with Nova's ``next`` links, server groups
(anti-affine pairs of those servers) 1,000 at a time by ``offset`` as Nova's
``/os-server-groups`` does, and the three Prometheus answers carry one sample per host or
server.
"""

from __future__ import annotations

import copy
import socket
import sys
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

__all__ = ["RECORDED", "Replay", "clouds_yaml", "keystone_port", "load", "scaled"]

RECORDED = Path(__file__).with_name("data") / "recorded.json"
PAGE = 1000
NS = uuid.UUID("6f1b3f0e-2d0c-4d5e-9a4c-000000000001")


@dataclass
class Recording:
    """Exchanges by ``(method, path)`` (Prometheus's by query) and, when scaled, the
    servers and server groups that the paged listings serve."""

    exchanges: dict[tuple[str, str], dict[str, Any]]
    servers: list[dict[str, Any]] | None = None
    servers_path: str = ""
    groups: list[dict[str, Any]] = field(default_factory=list)
    groups_path: str = ""
    requests: list[str] = field(default_factory=list)


def load(path: Path = RECORDED) -> Recording:
    doc = orjson.loads(path.read_bytes())
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for e in doc["exchanges"]:
        key = e["query"] if e["path"].startswith("@prometheus@") else e["path"]
        out[(e["method"], key)] = e
    return Recording(out)


def _find(rec: Recording, part: str) -> dict[str, Any]:
    return next(e for (m, p), e in rec.exchanges.items() if m == "GET" and part in p)


def _body(e: dict[str, Any]) -> Any:
    return orjson.loads(e["body"])


def _with_body(e: dict[str, Any], body: Any) -> dict[str, Any]:
    return {**e, "body": orjson.dumps(body).decode()}


def scaled(rec: Recording, hosts: int, servers: int, groups: int = 0) -> Recording:
    """``rec`` grown to ``hosts`` compute hosts and ``servers`` ACTIVE servers, and
    ``groups`` anti-affinity groups (servers ``2g`` and ``2g + 1``, on different hosts)."""
    ex = dict(rec.exchanges)
    providers = _body(_find(rec, "/resource_providers"))["resource_providers"]
    services = _body(_find(rec, "/os-services"))["services"]
    names = [f"h{i:05d}" for i in range(hosts)]
    zones = [services[i % len(services)]["zone"] for i in range(hosts)]
    rps = []
    base = _find(rec, "/inventories")["path"].split("/resource_providers/")[0]
    for i, n in enumerate(names):
        template = providers[i % len(providers)]
        rp = dict(copy.deepcopy(template), uuid=str(uuid.uuid5(NS, n)), name=n, links=[])
        rps.append(rp)
        for what in ("inventories", "usages"):  # the template's own, generation and all
            e = _find(rec, f"/resource_providers/{template['uuid']}/{what}")
            ex[("GET", f"{base}/resource_providers/{rp['uuid']}/{what}")] = e
    pe = _find(rec, "/resource_providers")
    ex[("GET", pe["path"])] = _with_body(pe, {"resource_providers": rps})
    _scale_hypervisors(ex, rec, rps)
    se = _find(rec, "/os-services")
    svcs = [dict(services[i % len(services)], id=str(uuid.uuid5(NS, "s" + n)), host=n,
                 zone=zones[i]) for i, n in enumerate(names)]  # fmt: skip
    ex[("GET", se["path"])] = _with_body(se, {"services": svcs})
    listed = _find(rec, "/servers/detail")
    templates = _body(listed)["servers"]
    made = []
    for j in range(servers):
        s = copy.deepcopy(templates[j % len(templates)])
        h = j % hosts
        s.update({"id": str(uuid.uuid5(NS, f"v{j}")), "name": f"vm{j:06d}", "links": [],
                  "OS-EXT-SRV-ATTR:host": names[h], "OS-EXT-AZ:availability_zone": zones[h],
                  "OS-EXT-SRV-ATTR:hypervisor_hostname": names[h],
                  "status": "ACTIVE", "OS-EXT-STS:task_state": None})  # fmt: skip
        made.append(s)
    out = Recording(ex, made, listed["path"].split("?")[0])
    _scale_prometheus(out, rec, names, [s["id"] for s in made])
    _scale_groups(out, rec, [s["id"] for s in made], groups)
    return out


def _scale_groups(out: Recording, rec: Recording, ids: list[str], groups: int) -> None:
    assert 2 * groups <= len(ids), "a group needs two servers of its own"
    listed = _find(rec, "/os-server-groups")
    template = next(g for page in (_body(e)["server_groups"] for (m, p), e in rec.exchanges.items()
                                   if "/os-server-groups" in p) for g in page)  # fmt: skip
    out.groups_path = listed["path"].split("?")[0]
    out.groups = [dict(copy.deepcopy(template), id=str(uuid.uuid5(NS, f"g{g}")), name=f"g{g:05d}",
                       policy="anti-affinity", members=ids[2 * g : 2 * g + 2])
                  for g in range(groups)]  # fmt: skip


def _scale_hypervisors(ex: dict[tuple[str, str], Any], rec: Recording, rps: list[Any]) -> None:
    """One hypervisor per provider (its id the provider's UUID, its service the host), on
    one page: at most :data:`PAGE` hosts."""
    assert len(rps) <= PAGE, "the scaled hypervisors fit one page"
    he = _find(rec, "/os-hypervisors/detail")
    template = _body(he)["hypervisors"][0]
    hvs = [dict(copy.deepcopy(template), id=rp["uuid"], hypervisor_hostname=rp["name"],
                service=dict(template["service"], host=rp["name"])) for rp in rps]  # fmt: skip
    ex[("GET", he["path"])] = _with_body(he, {"hypervisors": hvs})


def _scale_prometheus(out: Recording, rec: Recording, hosts: list[str], ids: list[str]) -> None:
    for (method, query), e in rec.exchanges.items():
        if not e["path"].startswith("@prometheus@"):
            continue
        answer = _body(e)
        result = answer["data"]["result"]
        label, keys = ("resource", ids) if "resource" in query else ("fqdn", hosts)
        label = next(iter(result[0]["metric"])) if result else label
        samples = [{"metric": {label: k}, "value": result[i % len(result)]["value"]}
                   for i, k in enumerate(keys)]  # fmt: skip
        answer["data"]["result"] = samples
        out.exchanges[(method, query)] = _with_body(e, answer)


def keystone_port(rec: Recording) -> str:
    """The port Keystone was recorded on (its path prefix in a replay)."""
    return next(p for _, p in rec.exchanges if p.endswith("/auth/tokens")).split("@")[1]


def clouds_yaml(path: Path, cloud: str, auth_url: str) -> Path:
    path.write_text(
        f"clouds:\n  {cloud}:\n    auth:\n      auth_url: {auth_url}\n"
        "      username: admin\n      password: replayed\n      project_name: admin\n"
        "      user_domain_id: default\n      project_domain_id: default\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n"
    )
    return path


class Replay:
    """``rec`` served on ``127.0.0.1`` until :meth:`close`; ``url`` its address."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def prometheus(self) -> str:
        return f"{self.url}/prometheus"

    def clouds_yaml(self, path: Path, cloud: str) -> Path:
        """A clouds.yaml naming ``cloud`` at the replay's Keystone (any password works)."""
        return clouds_yaml(path, cloud, f"{self.url}/{keystone_port(self.rec)}/v3")

    def answer(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.rec.requests.append(f"{method} {raw_path}")
        head, _, rest = raw_path.lstrip("/").partition("/")
        if head == "prometheus":
            query = urllib.parse.parse_qs(body.decode()).get("query", [""])[0]
            e = self.rec.exchanges.get((method, query))
        elif self.rec.servers is not None and f"@{head}@/{rest}".startswith(self.rec.servers_path):
            return self._page(head, rest)
        elif self.rec.groups_path and f"@{head}@/{rest}".startswith(self.rec.groups_path):
            return self._group_page(rest)
        else:
            e = self.rec.exchanges.get((method, f"@{head}@/{rest}"))
        if e is None:
            return 404, {"Content-Type": "application/json"}, orjson.dumps(
                {"error": f"not recorded: {method} {raw_path}"})  # fmt: skip
        return e["status"], e["headers"], self._local(e["body"]).encode()

    def _local(self, text: str) -> str:
        out = text
        for port in {p for p in text.split("@")[1::2] if p.isdigit()}:
            out = out.replace(f"@{port}@", f"{self.url}/{port}")
        return out

    def _page(self, port: str, rest: str) -> tuple[int, dict[str, str], bytes]:
        assert self.rec.servers is not None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(rest).query)
        marker = query.get("marker", [None])[0]
        ids = [s["id"] for s in self.rec.servers]
        start = ids.index(marker) + 1 if marker in ids else 0
        page = self.rec.servers[start : start + PAGE]
        body: dict[str, Any] = {"servers": page}
        if start + PAGE < len(ids):
            nxt = f"{self.url}/{port}/v2.1/servers/detail?all_tenants=True&limit={PAGE}"
            body["servers_links"] = [{"rel": "next", "href": f"{nxt}&marker={page[-1]['id']}"}]
        return 200, {"Content-Type": "application/json"}, orjson.dumps(body)

    def _group_page(self, rest: str) -> tuple[int, dict[str, str], bytes]:
        """Nova's slice of the groups: ``offset`` and ``limit`` (at most :data:`PAGE`)."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(rest).query)
        offset = int(query.get("offset", ["0"])[0])
        limit = min(int(query.get("limit", [str(PAGE)])[0]) or PAGE, PAGE)
        body = {"server_groups": self.rec.groups[offset : offset + limit]}
        return 200, {"Content-Type": "application/json"}, orjson.dumps(body)


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle and delayed ACKs
            # add 40 ms to every answer
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            status, headers, body = replay.answer(self.command, self.path, self.rfile.read(n))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve  # noqa: N815 (http.server's names)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str]) -> None:
    """``python -m tests.collectors.openstack.replay HOSTS SERVERS``: serve a scaled recording
    in a process of its own (the benchmark's cloud) until stdin closes; prints its URL."""
    hosts, servers = (int(x) for x in argv)
    replay = Replay(scaled(load(), hosts, servers))
    print(replay.url, flush=True)
    sys.stdin.read()
    replay.close()


if __name__ == "__main__":
    main(sys.argv[1:])
