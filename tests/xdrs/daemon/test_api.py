"""The daemon's HTTP JSON API against the real server over the real Rebalancer (replay platform)."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.events import Move, Recommendation
from xdrs.daemon.api import ROUTES, ApiConfig, ApiServer, load_token
from xdrs.daemon.control import Control

from .api_support import TOKEN, Api, start_api
from .sim import spread_moves

OPENAPI = Path(__file__).parents[3] / "docs" / "api" / "openapi.yaml"


@pytest.fixture
def api():
    a = start_api()
    yield a
    a.server.close()
    a.core.close()


def test_routes_and_the_openapi_document_agree():
    doc = yaml.safe_load(OPENAPI.read_text())
    documented = {(m.upper(), path) for path, ops in doc["paths"].items()
                  for m in ops if m != "parameters"}  # fmt: skip
    assert documented == set(ROUTES)


def test_list_show_approve_and_reject(api: Api):
    status, out = api.call("GET", "/v1/recommendations")
    assert status == 200 and [r["id"] for r in out["recommendations"]] == ["r1", "r2"]
    r1 = out["recommendations"][0]
    assert r1["held"] == ["r1/0", "r1/1", "r1/2"] and r1["benefit"] == pytest.approx(0.5)
    assert r1["why"] == "awaiting approval: cluster automation is manual"
    status, out = api.call("GET", "/v1/recommendations/r1")
    assert status == 200 and [m["status"] for m in out["moves"]] == ["held"] * 3
    assert out["moves"][0]["reason"] == "imbalance" and out["moves"][0]["src"]

    status, out = api.call("POST", "/v1/recommendations/r1/approve", {"moves": ["r1/0"],
                                                                        "by": "ann"})  # fmt: skip
    assert status == 200 and [m["key"] for m in out["moves"]] == ["r1/0"]
    api.bench.run_until_idle()
    m0 = api.recs[0].moves[0]
    assert api.bench.picture.host_of("c0", m0.vm) == m0.dst  # it ran
    assert api.bench.mover.calls == ["r1/0"]  # and nothing else did
    status, out = api.call("POST", "/v1/recommendations/r1/approve", {"moves": ["r1/0"]})
    assert status == 409 and out["error"] == "move 'r1/0': not waiting for approval"

    status, out = api.call("POST", "/v1/recommendations/r1/reject", {"by": "bob"})
    assert status == 200 and [m["status"] for m in out["moves"]] == ["ok", "skipped", "skipped"]
    assert out["moves"][1]["why"] == "rejected: by bob"
    status, out = api.call("POST", "/v1/recommendations/r1/reject", {})
    assert status == 409 and "no move is waiting for approval" in out["error"]  # replayed
    status, out = api.call("GET", "/v1/recommendations")
    assert [r["id"] for r in out["recommendations"]] == ["r2"]
    status, out = api.call("GET", "/v1/recommendations?all=true")
    assert [r["id"] for r in out["recommendations"]] == ["r1", "r2"]


def test_an_approval_whose_placement_changed_is_refused_with_the_reason(api: Api):
    m = api.recs[0].moves[1]
    other = next(h.uuid for h in api.bench.collector.hosts
                 if h.cluster == "c0" and h.uuid not in (m.src, m.dst))  # fmt: skip
    api.bench.collector.move(api.recs[0], Move("x/0", m.vm, m.src, other, "imbalance"))
    status, out = api.call("POST", "/v1/recommendations/r1/approve", {})
    assert status == 409
    assert out["error"] == (f"approval refused: placement changed: VM {m.vm} is on {other}, "
                            f"not on {m.src}")  # fmt: skip
    assert api.bench.mover.calls == []


def test_many_at_once_all_or_nothing_on_unknown_ids(api: Api):
    before = api.state()
    body = {"decision": "approve", "recommendations": ["r1", "nope"]}
    status, out = api.call("POST", "/v1/decisions", body)
    assert status == 404 and out["error"] == "recommendation 'nope': not known to this daemon"
    assert api.state() == before
    status, out = api.call("POST", "/v1/decisions", {"decision": "reject", "all": True})
    assert status == 200 and [r["id"] for r in out["results"]] == ["r1", "r2"]
    assert api.core.held == {}
    assert api.core.counts.skipped_by["rejected"] == 6


@pytest.mark.parametrize(
    ("method", "path", "raw", "headers", "status", "error"),
    [
        ("GET", "/v1/nope", None, {}, 404, "no such path: /v1/nope"),
        ("GET", "/v1/recommendations/zz", None, {}, 404, "'zz': not known to this daemon"),
        ("POST", "/v1/recommendations/zz/approve", None, {}, 404, "not known"),
        ("DELETE", "/v1/automation", None, {}, 405, "method not allowed (allowed: GET, PUT)"),
        ("GET", "/v1/recommendations?all=maybe", None, {}, 400, "query all: expected true"),
        ("GET", "/v1/recommendations?x=1", None, {}, 400, "unknown parameter 'x'"),
        ("POST", "/v1/recommendations/r1/approve", b"{", {}, 400, "body: not valid JSON"),
        (
            "POST",
            "/v1/recommendations/r1/approve",
            b'{"moves": "r1/0"}',
            {},
            422,
            "Expected `array`, got `str` - at `$.moves`",
        ),
        (
            "POST",
            "/v1/recommendations/r1/approve",
            b'{"move": []}',
            {},
            422,
            "unknown field `move`",
        ),
        (
            "POST",
            "/v1/recommendations/r1/approve",
            b'{"moves": ["r2/0"]}',
            {},
            409,
            "move 'r2/0': not a move of 'r1'",
        ),
        (
            "POST",
            "/v1/recommendations/r1/approve",
            b"{}",
            {"Content-Type": "text/plain"},
            415,
            "expected application/json",
        ),
        ("POST", "/v1/decisions", None, {}, 400, "body: expected a JSON object, got nothing"),
        (
            "POST",
            "/v1/decisions",
            b'{"decision": "approve"}',
            {},
            422,
            "give either recommendations",
        ),
        ("POST", "/v1/decisions", b'{"decision": "yes", "all": true}', {}, 422, "at `$.decision`"),
        (
            "PUT",
            "/v1/automation",
            b'{"default": "auto"}',
            {},
            422,
            "body.default: expected one of manual, partial, full, got 'auto'",
        ),
        ("PUT", "/v1/automation", b'{"vms": {"v": "always"}}', {}, 422, "body.vms['v']"),
        ("GET", "/v1/held-back", b"{}", {}, 400, "a GET takes none"),
        ("POST", "/v1/decisions", b"x" * (1 << 21), {}, 413, "larger than"),
        ("POST", "/v1/decisions", b"x" * ((1 << 20) + 1), {}, 413, "larger than"),
    ],
    ids=lambda v: v if isinstance(v, str | int) and len(str(v)) < 40 else None,
)
def test_bad_requests_are_4xx_with_the_reason_and_change_nothing(
    api: Api, method, path, raw, headers, status, error
):
    before = api.state()
    got, out = api.call(method, path, raw=raw, headers=headers)
    assert (got, error in out["error"]) == (status, True), out
    assert api.state() == before


def test_the_token_is_required_compared_and_never_shown(api: Api, caplog):
    caplog.set_level(logging.DEBUG)
    assert api.call("GET", "/v1/recommendations", token=None) == (
        401, {"error": "missing bearer token (Authorization: Bearer TOKEN)"})  # fmt: skip
    assert api.call("GET", "/v1/recommendations", token=TOKEN[:-1] + "X")[0] == 401
    before = api.state()
    assert api.call("POST", "/v1/decisions", {"decision": "approve", "all": True},
                    token="wrong-token-0123456789")[0] == 401  # fmt: skip
    assert api.state() == before
    assert api.call("GET", "/v1/recommendations")[0] == 200
    assert TOKEN not in caplog.text and TOKEN not in repr(api.server.config)


def test_beyond_loopback_refuses_to_start_without_a_token():
    with pytest.raises(ValueError, match="beyond loopback needs a bearer token"):
        ApiServer(Control(lambda: None), ApiConfig(host="0.0.0.0", port=0))
    server = ApiServer(Control(lambda: None), ApiConfig(host="localhost", port=0))
    server.server_close()  # loopback: no token needed


def test_tokens_from_a_file_or_the_environment(tmp_path: Path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert load_token(f, {}) == TOKEN
    assert load_token(None, {"XDRS_API_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, {}) is None
    f.write_text("short secret")
    with pytest.raises(ValueError, match="token: expected a bearer token of 16") as e:
        load_token(f, {})
    assert "secret" not in str(e.value)


def test_automation_read_and_changed_at_run_time(api: Api):
    status, out = api.call("GET", "/v1/automation")
    assert status == 200 and out["policy"]["default"] == "manual" and out["file"] is None
    new = {"default": "partial", "clusters": {"c1": "full"}, "vms": {"vm3": "never"}}
    status, out = api.call("PUT", "/v1/automation", new)
    assert status == 200 and out["policy"] == {"format": "xdrs-automation/1", **new}
    policy = api.core.policy.current()
    assert policy.level("c1") == "full" and policy.vms == {"vm3": "never"}
    # the next recommendation of c1 runs on its own; the held ones of before still wait
    moves = spread_moves(api.bench.collector, "c1", 2, "r3")
    api.core.receive(Recommendation("r3", "c1", "imbalance", "balance", time.time() + 5, 1.0,
                                    0.5, moves))  # fmt: skip
    api.bench.run_until_idle()
    assert sorted(api.bench.mover.calls) == ["r3/0", "r3/1"]
    assert sorted(api.core.held) == ["r1"]  # r2 (c1) superseded by r3


def test_held_back_reasons(api: Api):
    status, out = api.call("GET", "/v1/held-back")
    assert status == 200 and len(out["awaiting_approval"]) == 6 and out["waiting"] == []
    assert out["awaiting_approval"][0]["why"].startswith("awaiting approval: cluster automation")
    api.call("POST", "/v1/recommendations/r2/reject", {"moves": ["r2/1"], "by": "cy"})
    out = api.call("GET", "/v1/held-back")[1]
    assert [(s["key"], s["why"]) for s in out["skipped"]] == [("r2/1", "rejected: by cy")]


bodies = st.one_of(
    st.binary(max_size=64),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                     max_size=3),
                 max_leaves=8).map(msgspec.json.encode),
)  # fmt: skip


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(path=st.sampled_from(["/v1/recommendations/r1/approve", "/v1/decisions",
                             "/v1/automation", "/v1/recommendations/r2/reject"]),
       body=bodies)  # fmt: skip
def test_parsing_random_bodies_never_fails_the_server(api: Api, path, body):
    """Any body: a 4xx, or (only a valid policy or decision) a 200; never a 5xx."""
    method = "PUT" if path == "/v1/automation" else "POST"
    before = api.state()
    status, out = api.call(method, path, raw=body)
    assert status < 500, out
    if status >= 400:
        assert api.state() == before and out["error"]


@pytest.mark.parametrize(("request_line", "status", "error"), [
    (b"FOO /v1/automation HTTP/1.1", 405, "FOO /v1/automation: method not allowed"),
    (b"OPTIONS /v1/decisions HTTP/1.1", 405, "allowed: POST"),
    (b"GET /v1/automation HTTP/9.9", 400, "Invalid HTTP version"),
    (b"\x00\x01 nonsense", 400, "Bad HTTP/0.9 request type"),
], ids=["made-up-method", "options", "version", "garbage"])  # fmt: skip
def test_odd_requests_get_json_errors(api: Api, request_line, status, error):
    url = urlsplit(api.server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(request_line + b"\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        head, _, body = s.makefile("rb").read().partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), head
    assert error in json.loads(body)["error"]
