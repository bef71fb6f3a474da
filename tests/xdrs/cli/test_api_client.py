"""The CLI's client of the daemon's HTTP API, at its entrances: the ``--api`` URL, and any
answer a server may send (a real HTTP server on loopback serves each one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdrs.cli import parse
from xdrs.cli.api_client import DaemonApi, check_url
from xdrs.errors import CommandError, UsageError


class Canned:
    """What the server answers next: a status and a body."""

    status = 200
    body = b"{}"
    seen: ClassVar[list[dict[str, str]]] = []


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        Canned.seen.append(dict(self.headers))
        self.send_response(Canned.status)
        self.send_header("Content-Length", str(len(Canned.body)))
        self.end_headers()
        self.wfile.write(Canned.body)

    do_GET = do_POST = _answer  # noqa: N815 - the standard library's names

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


ANSWERS = st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                      max_size=4),
                 max_leaves=12).map(lambda v: __import__("json").dumps(v).encode()),
    st.just(b'{"recommendations": [{"id": 1}]}'),
    st.just(b'{"decision": "approve", "results": [{"id": "r1"}]}'),
)  # fmt: skip


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(status=st.sampled_from([200, 400, 401, 404, 409, 422, 500, 503]), body=ANSWERS)
def test_any_answer_is_a_value_or_one_clear_error(server: str, status: int, body: bytes) -> None:
    Canned.status, Canned.body = status, body
    api = DaemonApi(server, token="t0ken-t0ken-t0ken-1")
    for call in (lambda: api.recommendations(True), lambda: api.recommendation("r/1"),
                 lambda: api.decide_many(None, "approve", "ann"),
                 lambda: api.decide_one("r1", "reject", [], "ann")):  # fmt: skip
        try:
            call()
        except CommandError as e:
            text = str(e)
            assert text.startswith(f"daemon API {server}/v1/") and "\n" not in text[:200]
            assert "t0ken" not in text
            if status != 200:
                assert f": {status}: " in text
        else:
            assert status == 200


def test_the_token_goes_in_the_header_only(server: str) -> None:
    Canned.status, Canned.body, Canned.seen = 200, b'{"recommendations": []}', []
    api = DaemonApi(server, token="t0ken-t0ken-t0ken-1")
    assert api.recommendations() == []
    assert Canned.seen[-1]["Authorization"] == "Bearer t0ken-t0ken-t0ken-1"
    assert "t0ken" not in repr(api)


@settings(deadline=None)
@given(
    text=st.text(max_size=60)
    | st.from_regex(r"(https?|ftp)://[a-z0-9.:\[\]@?#/]{0,20}")
    | st.sampled_from(["http://[::1", "http://h:99999", "http://h:x", "http://h:80/"])
)
def test_api_urls_parse_or_fail_in_one_line(text: str) -> None:
    try:
        url = check_url(text)
    except ValueError as e:
        assert "\n" not in str(e)
        with pytest.raises(UsageError, match=r"^--api: expected http"):
            parse(["recommendations", "list", f"--api={text}"])
        return
    assert url.startswith(("http://", "https://")) and not url.endswith("/")
    assert parse(["recommendations", "list", f"--api={text}"]).client.url == url
