"""A Neutron stand-in for the test cloud: every collection is empty, every item is absent.

Nova asks Neutron for its extensions (conductor, compute start) and for a server's ports
(boot, live migration). Servers booted with ``networks="none"`` have no port, so empty
lists are the true answers. Run under Debian's python3: ``neutron_stub.py PORT``.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        if not parts:
            version = {"id": "v2.0", "status": "CURRENT", "links": []}
            self._send(200, {"versions": [version]})
        elif len(parts) == 1:
            self._send(200, {"resources": []})
        elif len(parts) == 2:
            self._send(200, {parts[1].removesuffix(".json"): []})
        else:
            error = {"type": "NotFound", "message": f"{self.path} not found", "detail": ""}
            self._send(404, {"NeutronError": error})

    def _absent(self) -> None:
        self._send(404, {"NeutronError": {"type": "NotFound", "message": "", "detail": ""}})

    def do_DELETE(self) -> None:
        self._absent()

    def do_POST(self) -> None:
        self._absent()

    def do_PUT(self) -> None:
        self._absent()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.command} {self.path}\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
