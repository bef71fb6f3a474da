"""The daemon's HTTP JSON API (described in ``docs/api/openapi.yaml``), on the standard library.

Routes (:data:`ROUTES`; a test checks them against the OpenAPI document)::

    GET  /v1/recommendations[?all=true]        pending (all: recent) recommendations
    GET  /v1/recommendations/{id}              one, with each move and its last record
    POST /v1/recommendations/{id}/approve      {"moves": [KEY...], "by": "ann"} (both optional)
    POST /v1/recommendations/{id}/reject       the same
    POST /v1/decisions                         {"decision": "approve", "recommendations": [ID...]}
                                               or {"decision": "reject", "all": true}
    GET  /v1/held-back                         awaiting approval, waiting behind a limit, skipped
    GET  /v1/automation                        the automation policy in force
    PUT  /v1/automation                        replace it ({"default": "partial", ...})

It binds 127.0.0.1 by default. With a bearer token (from a file or ``XDRS_API_TOKEN``)
every request must carry ``Authorization: Bearer TOKEN`` (compared in constant time; the
token is never logged nor shown); binding beyond loopback without one refuses to start.
Every refusal is a 4xx with ``{"error": reason}``; 503 (``Retry-After: 1``) only while the
daemon is rebuilding its state at start.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from xdrs.daemon.access import ApiConfig, ApiError, load_token
from xdrs.daemon.control import Control

__all__ = ["ROUTES", "ApiConfig", "ApiServer", "load_token"]  # the first two re-exported

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
DRAIN_MAX = 8 << 20  # an oversized body up to this is read and dropped before the 413
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
By = Annotated[str, msgspec.Meta(max_length=200)]
Ids = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=10_000)]


class DecisionBody(msgspec.Struct, forbid_unknown_fields=True):
    moves: Annotated[list[Id], msgspec.Meta(max_length=100_000)] = []
    by: By = ""


class ManyBody(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["approve", "reject"]
    recommendations: Ids | None = None
    all: bool = False
    by: By = ""


Handler = Callable[["_Request"], tuple[int, Any]]


@dataclass
class _Request:
    control: Control
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes


def _list(r: _Request) -> tuple[int, Any]:
    unknown = sorted(set(r.query) - {"all"})
    if unknown:
        raise ApiError(400, f"query: unknown parameter {unknown[0][:60]!r}")
    values = r.query.get("all", ["false"])
    if len(values) != 1 or values[0] not in ("true", "false"):
        raise ApiError(400, "query all: expected true or false")
    return 200, {"recommendations": r.control.recommendations(values[0] == "true")}


def _show(r: _Request) -> tuple[int, Any]:
    return 200, r.control.recommendation(r.params["id"])


def _decider(decision: Literal["approve", "reject"]) -> Handler:
    def handle(r: _Request) -> tuple[int, Any]:
        body = _decode(r.body, DecisionBody) if r.body else DecisionBody()
        return 200, r.control.decide(r.params["id"], decision, body.moves, body.by)

    return handle


def _many(r: _Request) -> tuple[int, Any]:
    body = _decode(r.body, ManyBody)
    if body.all == (body.recommendations is not None):
        raise ApiError(422, "body: give either recommendations (a list of ids) or all: true")
    return 200, r.control.decide_many(body.recommendations, body.decision, body.by)


def _held_back(r: _Request) -> tuple[int, Any]:
    return 200, r.control.held_back()


def _automation(r: _Request) -> tuple[int, Any]:
    return 200, r.control.automation()


def _set_automation(r: _Request) -> tuple[int, Any]:
    return 200, r.control.set_automation(_decode(r.body, Any))


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/v1/recommendations"): _list,
    ("GET", "/v1/recommendations/{id}"): _show,
    ("POST", "/v1/recommendations/{id}/approve"): _decider("approve"),
    ("POST", "/v1/recommendations/{id}/reject"): _decider("reject"),
    ("POST", "/v1/decisions"): _many,
    ("GET", "/v1/held-back"): _held_back,
    ("GET", "/v1/automation"): _automation,
    ("PUT", "/v1/automation"): _set_automation,
}
BODY_ROUTES = {"/v1/decisions", "/v1/automation"}  # a body is required


def _decode(body: bytes, kind: Any) -> Any:
    if not body:
        raise ApiError(400, "body: expected a JSON object, got nothing")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as e:
        raise ApiError(422, f"body: {str(e)[:300]}") from None
    except msgspec.DecodeError as e:
        raise ApiError(400, f"body: not valid JSON: {str(e)[:200]}") from None


def _match(path: str) -> tuple[str, dict[str, str]] | None:
    """The route template of ``path`` and its parameters."""
    parts = path.split("/")
    for _, template in ROUTES:
        want = template.split("/")
        if len(want) != len(parts):
            continue
        params: dict[str, str] = {}
        for w, p in zip(want, parts, strict=True):
            if w.startswith("{"):
                params[w[1:-1]] = unquote(p)
            elif w != p:
                break
        else:
            if all(params.values()):
                return template, params
    return None


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "xdrs-daemon"
    sys_version = ""

    def do_GET(self) -> None:  # the standard library's names
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def __getattr__(self, name: str) -> Any:
        # any other method (HEAD, OPTIONS, TRACE, made-up ones): a 405 naming the allowed
        # ones, not the standard library's 501
        if name.startswith("do_"):
            return lambda: self._serve(name[3:])
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a malformed request line, headers too long)
        as JSON like every other answer."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsed request line: answer with headers
            self.request_version = "HTTP/1.0"
        # 505 (an unknown HTTP version) is the client's mistake too: a 4xx, like the others
        self._send(400 if code >= 500 else code, {"error": message or explain or "bad request"})

    def _serve(self, method: str) -> None:
        if method not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            self.close_connection = True  # a HEAD's client reads no body: do not reuse
        try:
            status, out = self._route(method)
        except ApiError as e:
            status, out = e.status, {"error": e.reason}
        except Exception:  # a bug must answer, not drop the connection
            log.exception("API %s %s failed", method, urlsplit(self.path).path[:200])
            status, out = 500, {"error": "internal error (see the daemon's log)"}
        self._send(status, out)

    def _route(self, method: str) -> tuple[int, Any]:
        url = urlsplit(self.path)
        found = _match(url.path)
        body = self._body()
        self._authorise()
        if found is None:
            raise ApiError(404, f"no such path: {url.path[:200]}")
        template, params = found
        handler = ROUTES.get((method, template))
        if handler is None:
            allowed = ", ".join(m for m, t in ROUTES if t == template)
            raise ApiError(405, f"{method} {template}: method not allowed (allowed: {allowed})")
        if body and method == "GET":
            raise ApiError(400, "body: a GET takes none")
        try:
            query = parse_qs(url.query, keep_blank_values=True, strict_parsing=bool(url.query),
                             max_num_fields=20)  # fmt: skip
        except ValueError:
            raise ApiError(400, "query: not a valid query string") from None
        if query and method != "GET":
            raise ApiError(400, "query: this route takes no parameters")
        return handler(_Request(self.server.control, params, query, body))

    def _body(self) -> bytes:
        """The request body, always read in full (a keep-alive connection must stay in step)."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(411, "Transfer-Encoding is not supported; send Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            self.close_connection = True
            raise ApiError(400, "Content-Length: expected a number")
        n = int(length)
        if n > MAX_BODY:
            self.close_connection = True
            left = n if n <= DRAIN_MAX else 0  # read and drop it, so that the client is
            while left > 0:  # not cut off mid-send and gets the answer, not a reset
                got = len(self.rfile.read(min(1 << 16, left)))
                left = left - got if got else 0
            raise ApiError(413, f"body: larger than {MAX_BODY} bytes")
        body = self.rfile.read(n)
        ctype = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if body and ctype.lower() != "application/json":
            raise ApiError(415, f"Content-Type: expected application/json, got {ctype[:60]!r}")
        return body

    def _authorise(self) -> None:
        token = self.server.config.token
        if token is None:
            return
        got = self.headers.get("Authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ApiError(401, "missing bearer token (Authorization: Bearer TOKEN)")
        if not hmac.compare_digest(value.strip().encode("utf-8", "replace"), token.encode()):
            raise ApiError(401, "wrong bearer token")

    def _send(self, status: int, out: Any) -> None:
        data = json.dumps(out, allow_nan=False).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="xdrs"')
        if status == 503:
            self.send_header("Retry-After", "1")
        if status == 405:
            self.send_header("Allow", ", ".join(m for m, _ in ROUTES))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("API %s", format % args)  # the request line and status only, never headers


class ApiServer(ThreadingHTTPServer):
    """The API over ``control``; :meth:`start` serves on a thread, :meth:`close` stops."""

    daemon_threads = True

    def __init__(self, control: Control, config: ApiConfig) -> None:
        config.validate()
        self.control, self.config = control, config
        super().__init__((config.host, config.port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="xdrs-api", daemon=True)
        self._thread.start()
        log.info("daemon API on %s%s", self.url, " (bearer token required)"
                 if self.config.token else "")  # fmt: skip

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
        self.server_close()
