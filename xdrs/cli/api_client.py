"""The CLI's client of a rebalancing daemon's HTTP JSON API (``docs/api/openapi.yaml``).

``xdrs recommendations --api URL`` reads and decides through the daemon itself instead of
the bus: :class:`DaemonApi` sends the requests (the bearer token, if any, in the
``Authorization`` header, never in a message) and decodes each answer into the types
below, so a daemon's refusal is one :class:`~xdrs.errors.CommandError` with its reason and
an answer of the wrong shape is one too, never a traceback. Standard library and msgspec
only.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from xdrs.daemon.access import load_token
from xdrs.errors import CommandError, UsageError

__all__ = ["DaemonApi", "Decided", "MoveView", "Summary", "api_token", "check_url"]

T = TypeVar("T")
MAX_ANSWER = 64 << 20


class Summary(msgspec.Struct):
    """A recommendation as ``GET /v1/recommendations`` lists it."""

    id: str
    cluster: str
    trigger: str
    ts: float
    objective_before: float
    objective_after: float
    cost_mib: float
    n_moves: int
    held: list[str]
    why: str = ""


class MoveView(msgspec.Struct):
    key: str
    vm: str
    src: str
    dst: str
    reason: str
    gain: float
    cost_mib: float
    wave: int
    status: str
    why: str = ""


class Shown(Summary):
    strategy: str = ""
    moves: list[MoveView] = []


class _Listing(msgspec.Struct):
    recommendations: list[Summary]


class Decided(msgspec.Struct):
    """One recommendation's answer in ``POST /v1/decisions``."""

    id: str
    moves: list[str]
    refused: str = ""


class _Many(msgspec.Struct):
    decision: str
    results: list[Decided]


class _One(msgspec.Struct):
    id: str
    decision: str
    moves: list[MoveView]


class _Refusal(msgspec.Struct):
    error: str


def check_url(text: str) -> str:
    """``http(s)://HOST[:PORT]``, without a trailing slash; ``ValueError`` otherwise."""
    expected = f"expected http(s)://HOST:PORT, got {text[:80]!r}"
    if not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError(expected)
    try:
        parts = urllib.parse.urlsplit(text)
        _ = parts.port  # a port out of range or not a number
    except ValueError:  # also a bracketed host left open
        raise ValueError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(expected)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("expected http(s)://HOST:PORT with no query, fragment or user")
    return text.rstrip("/")


class DaemonApi:
    """The daemon's API at ``url`` (``check_url``), with ``token`` if given."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url, self._token, self.timeout_s = url, token, timeout_s

    def __repr__(self) -> str:
        return f"DaemonApi({self.url!r})"  # never the token

    def recommendations(self, everything: bool = False) -> list[Summary]:
        path = "/v1/recommendations" + ("?all=true" if everything else "")
        return self._call("GET", path, None, _Listing).recommendations

    def recommendation(self, rec_id: str) -> Shown:
        return self._call("GET", f"/v1/recommendations/{_quote(rec_id)}", None, Shown)

    def decide_one(self, rec_id: str, decision: str, moves: list[str],
                   by: str) -> list[MoveView]:  # fmt: skip
        """``POST /v1/recommendations/{id}/{decision}``: the chosen moves, as decided."""
        path = f"/v1/recommendations/{_quote(rec_id)}/{decision}"
        return self._call("POST", path, {"moves": moves, "by": by}, _One).moves

    def decide_many(self, rec_ids: list[str] | None, decision: str, by: str) -> list[Decided]:
        """``POST /v1/decisions`` on ``rec_ids`` (``None``: every pending one)."""
        body: dict[str, Any] = {"decision": decision, "by": by}
        body |= {"all": True} if rec_ids is None else {"recommendations": rec_ids}
        return self._call("POST", "/v1/decisions", body, _Many).results

    def _call(self, method: str, path: str, body: Any, kind: type[T]) -> T:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        where = f"daemon API {self.url}{path.split('?', maxsplit=1)[0]}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                raw = r.read(MAX_ANSWER)
        except urllib.error.HTTPError as e:
            raise CommandError(f"{where}: {e.code}: {_reason(e)}") from None
        except (urllib.error.URLError, OSError) as e:
            why = getattr(e, "reason", None) or e
            raise CommandError(f"{where}: {why}") from None
        try:
            return msgspec.json.decode(raw, type=kind)
        except msgspec.ValidationError as e:
            raise CommandError(f"{where}: unexpected answer: {e}") from None
        except msgspec.DecodeError:
            raise CommandError(f"{where}: the answer is not JSON") from None


def _reason(e: urllib.error.HTTPError) -> str:
    try:
        return msgspec.json.decode(e.read(1 << 16), type=_Refusal).error[:500]
    except (msgspec.DecodeError, OSError):
        return str(e.reason)


def _quote(rec_id: str) -> str:
    return urllib.parse.quote(rec_id, safe="")


def api_token(path: Path | None) -> str | None:
    """The HTTP API's bearer token: the first line of ``path``, else ``$XDRS_API_TOKEN``,
    else ``None``; a file missing or unreadable, or a token too short, is a usage error
    naming ``--api-token-file``."""
    try:
        return load_token(path, os.environ)
    except OSError as e:
        raise UsageError(f"--api-token-file: {e.filename}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"--api-token-file: {e}") from None
