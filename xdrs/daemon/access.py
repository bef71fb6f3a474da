"""Who may reach the daemon's HTTP API, and how it refuses: light enough for the option
parser (standard library only).

:class:`ApiConfig` is where the API listens and its bearer token (required beyond
loopback); :func:`load_token` reads the token from a file or ``$XDRS_API_TOKEN``;
:class:`ApiError` is a refused request (an HTTP status and the reason).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collectors.net import is_loopback

__all__ = ["TOKEN_ENV", "ApiConfig", "ApiError", "is_loopback", "load_token"]

TOKEN_ENV = "XDRS_API_TOKEN"


class ApiError(Exception):
    """A refused request: ``status`` (4xx) and the reason, sent as ``{"error": reason}``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class ApiConfig:
    """Where the API listens (``port`` 0: any free port) and its bearer token (``None``:
    none, allowed on loopback only). The token is left out of the repr."""

    host: str = "127.0.0.1"
    port: int = 8480
    token: str | None = field(default=None, repr=False)

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"API port: expected 0..65535, got {self.port}")
        if self.token is None and not is_loopback(self.host):
            raise ValueError(f"API on {self.host}: binding beyond loopback needs a bearer token "
                             f"(--api-token-file FILE or {TOKEN_ENV})")  # fmt: skip


def load_token(path: Path | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token from ``path`` (first line) or ``$XDRS_API_TOKEN``; ``None`` without
    either. Errors name the file or variable, never the token."""
    where = str(path) if path is not None else TOKEN_ENV
    if path is not None:
        with path.open("rb") as f:
            raw = f.read(4097)
        text = raw.decode("utf-8", "replace").strip()
    elif env.get(TOKEN_ENV):
        text = env[TOKEN_ENV].strip()
    else:
        return None
    if not 16 <= len(text) <= 4096 or not text.isascii() or not text.isprintable() or " " in text:
        raise ValueError(f"{where}: expected a bearer token of 16..4096 printable ASCII "
                         f"characters without spaces")  # fmt: skip
    return text
