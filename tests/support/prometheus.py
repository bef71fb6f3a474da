"""Debian's Prometheus server, started for real in the tests.

``scripts/prometheus.sh`` installs it once and prints the binary's path.
:func:`running_prometheus` writes the given configuration into a directory, serves on a free
loopback port (HTTPS when given a certificate and key), waits for ``/-/ready`` and stops the
server by PID on leaving. Its output is ``prometheus.log`` in that directory.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support import wait_for
from xdrs.bus.broker import free_port, stop_process

__all__ = ["PrometheusStartError", "prometheus_binary", "running_prometheus"]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0


class PrometheusStartError(RuntimeError):
    """Prometheus could not be installed or did not become ready; the message says why."""


def prometheus_binary() -> str:
    """The ``prometheus`` binary's path, from ``scripts/prometheus.sh`` (installs it once)."""
    out = subprocess.run([str(ROOT / "scripts" / "prometheus.sh")], capture_output=True,
                         text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        raise PrometheusStartError(f"scripts/prometheus.sh failed ({out.returncode}): "
                                   f"{out.stderr[-2000:]}")  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def _ready(url: str) -> bool:
    ctx = ssl.create_default_context()  # readiness only: the TLS tests' certificate is theirs
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _command(home: Path, port: int, tls: tuple[Path, Path] | None) -> list[str]:
    cmd = [prometheus_binary(), f"--config.file={home / 'prometheus.yml'}",
           f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
           "--log.level=warn"]  # fmt: skip
    if tls is not None:
        web = {"tls_server_config": {"cert_file": str(tls[0]), "key_file": str(tls[1])}}
        (home / "web.yml").write_text(yaml.safe_dump(web))
        cmd.append(f"--web.config.file={home / 'web.yml'}")
    return cmd


@contextlib.contextmanager
def running_prometheus(
    config: dict[str, Any], home: Path, tls: tuple[Path, Path] | None = None
) -> Iterator[str]:
    """A Prometheus server with ``config`` (the ``prometheus.yml`` contents), its files in
    ``home``; yields its URL once ready. With ``tls`` (certificate, key) it serves HTTPS.

    Raises
    ------
    PrometheusStartError
        Exited, or not ready within 30 s; the message holds the server's log.
    """
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    log_path = home / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(_command(home, port, tls), stdout=log, stderr=subprocess.STDOUT)
    try:
        up = wait_for(lambda: proc.poll() is not None or _ready(f"{url}/-/ready"), READY_TIMEOUT_S)
        if not up or proc.returncode is not None:
            how = "not ready" if proc.returncode is None else f"exited ({proc.returncode})"
            raise PrometheusStartError(f"Prometheus {how} at {url}:\n{log_path.read_text()}")
        yield url
    finally:
        stop_process(proc, timeout=10.0)
