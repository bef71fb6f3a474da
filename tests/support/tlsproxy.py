"""An HTTPS reverse proxy in front of a plain-HTTP server, and the self-signed certificates
it serves: TLS tests of clients whose real server speaks only HTTP (the test cloud's
Keystone).

The proxy ends TLS, forwards each request to the upstream with ``X-Forwarded-Proto: https``
and the client's own ``Host`` (so a server that builds links from the request, as Keystone
does, names the proxy's ``https`` URL), and records the method and path of each request it
forwarded, so a test can tell that a client really went through TLS.
"""

from __future__ import annotations

import http.client
import http.server
import ssl
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["TLSProxy", "self_signed"]

# hop-by-hop headers (RFC 9110 7.6.1) and the framing we set ourselves
_DROP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
         "upgrade", "content-length"}  # fmt: skip


def self_signed(
    d: Path, name: str = "cert", san: str = "IP:127.0.0.1,DNS:localhost"
) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM, ``d/name.pem`` and ``d/name.key``) for
    ``san``, its subject alternative names (also its common name, the first one's value)."""
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    cn = san.split(",", 1)[0].split(":", 1)[-1]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        # the handshake in the request's own thread: a client that refuses the certificate
        # (the point of the tests) fails here and holds no other connection up
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROP}
        headers["X-Forwarded-Proto"] = "https"
        self.server.seen.append((self.command, self.path))
        up = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            up.request(self.command, self.path, body=body, headers=headers)
            r = up.getresponse()
            data = r.read()
        finally:
            up.close()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in _DROP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # the standard library's names
    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.tls = upstream, tls
        self.seen: list[tuple[str, str]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes and dropped clients are what the tests provoke


class TLSProxy:
    """``https://127.0.0.1:PORT`` in front of ``upstream`` (``http://HOST:PORT``), serving
    ``cert``/``key``; a context manager that starts and stops its thread.

    ``seen`` lists the ``(method, path)`` of every request forwarded.
    """

    def __init__(self, upstream: str, cert: Path, key: Path) -> None:
        u = urlsplit(upstream)
        if u.scheme != "http" or not u.hostname or not u.port:
            raise ValueError(f"upstream: expected http://HOST:PORT, got {upstream!r}")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self._server = _Server((u.hostname, u.port), tls)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self._server.seen

    def __enter__(self) -> TLSProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
