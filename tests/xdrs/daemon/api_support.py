"""A running daemon API over the replay platform (no Kafka): the real HTTP server, the real
:class:`Rebalancer` at ``manual``, and two recommendations waiting for approval."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from collectors.events import Recommendation
from xdrs.daemon.api import ApiConfig, ApiServer
from xdrs.daemon.control import Control
from xdrs.daemon.core import Rebalancer
from xdrs.daemon.policy import Policy, policy_object

from .sim import Bench, spread_moves

TOKEN = "test-token-0123456789abcdef"


@dataclass
class Api:
    bench: Bench
    server: ApiServer
    recs: list[Recommendation]

    @property
    def core(self) -> Rebalancer:
        return self.bench.daemon

    def call(self, method: str, path: str, body: Any = None, token: str | None = TOKEN,
             raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
        url = urlsplit(self.server.url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.getheader("Content-Type") == "application/json"
            return resp.status, json.loads(payload)
        finally:
            conn.close()

    def state(self) -> Any:
        """Everything a request could change: held moves, the policy, the records."""
        c = self.core
        with c.lock:
            held = sorted((k, sorted(keys)) for k, (_, keys) in c.held.items())
            return held, policy_object(c.policy.current()), len(c.records), len(c.executor.runs)


def start_api(token: str | None = TOKEN) -> Api:
    bench = Bench(policy=Policy(default="manual"))
    recs = []
    for i, cluster in enumerate(("c0", "c1")):
        moves = spread_moves(bench.collector, cluster, 3, f"r{i + 1}")
        rec = Recommendation(f"r{i + 1}", cluster, "imbalance", "balance", time.time() + i,
                             1.0, 0.5, moves)  # fmt: skip
        bench.daemon.receive(rec)
        recs.append(rec)
    server = ApiServer(Control(lambda: bench.daemon), ApiConfig(port=0, token=token))
    server.start()
    return Api(bench, server, recs)
