"""Apache Kafka, the production broker, started for real in the tests.

``scripts/kafka.sh`` fetches the broker's jars once (Maven, cached on its pom's hash) and
prints their directory. :class:`ApacheKafka` formats a single-node KRaft log dir (combined
broker and controller), starts ``kafka.Kafka`` on free loopback ports, waits until the broker
answers a metadata request unfenced, and stops it by PID. It can be stopped (SIGTERM or
SIGKILL) and started again on the same log dir and ports: what the broker acknowledged is
still there, which is what the durability tests need. Nothing here knows xdrs.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

__all__ = ["ApacheKafka", "KafkaStartError", "kafka_jars"]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180.0  # a cold JVM on a busy 2-core machine
JVM_OPTS = (
    "-Xms64m",
    "-XX:+UseSerialGC",  # one GC thread: the tests' broker holds little and shares 2 cores
    "-XX:TieredStopAtLevel=1",  # C1 only: faster start, throughput is not the point here
    "-Djava.awt.headless=true",
)


class KafkaStartError(RuntimeError):
    """The broker could not be fetched, formatted or started; the message says where to look."""


def kafka_jars() -> Path:
    """The directory of the broker's jars: ``$XDRS_KAFKA_LIB``, else ``scripts/kafka.sh``."""
    override = os.environ.get("XDRS_KAFKA_LIB")
    if override:
        return Path(override)
    out = subprocess.run([str(ROOT / "scripts" / "kafka.sh")], capture_output=True, text=True,
                         check=False)  # fmt: skip
    if out.returncode != 0:
        raise KafkaStartError(f"scripts/kafka.sh failed ({out.returncode}): {out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cluster_id() -> str:
    """A random Kafka cluster id (16 bytes, URL-safe base64, as ``StorageTool random-uuid``)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka's own generator avoids these
            return text


def _die_with_parent() -> list[str]:
    """A command prefix that SIGKILLs the broker when the thread that started it dies, even
    by SIGKILL (util-linux ``setpriv``; a ``preexec_fn`` is unsafe with the tests' threads).
    Without ``setpriv`` the fixture's finaliser and ``atexit`` stop it."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


class ApacheKafka:
    """One Apache Kafka broker (KRaft, combined mode) on loopback; a context manager.

    Parameters
    ----------
    home : Path
        Holds ``server.properties``, the log dir ``data/`` and the broker's output
        ``broker.log``; kept across :meth:`stop` and :meth:`start`.
    jars : Path, optional
        The class-path directory (default: :func:`kafka_jars`).
    heap_mb : int
        The JVM's maximum heap.
    """

    def __init__(self, home: Path, jars: Path | None = None, heap_mb: int = 512) -> None:
        self.home = home
        self.jars = jars if jars is not None else kafka_jars()
        self.heap_mb = heap_mb
        self.port = _free_port()
        self.controller_port = _free_port()
        self.started_in_s = 0.0  # of the last start: JVM launch until the broker answers
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop, signal.SIGKILL)  # a test process that exits early

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise KafkaStartError("Apache Kafka is not running")
        return self._proc.pid

    @property
    def log_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "broker.log"

    def properties(self) -> dict[str, str]:
        """``server.properties`` of a single node that is its own controller."""
        controller = f"127.0.0.1:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.quorum.bootstrap.servers": controller,
            "log.dirs": str(self.log_dir),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # a killed broker's registration expires sooner, so its restart is not held up
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "1000",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
        }

    def start(self) -> ApacheKafka:
        """Format the log dir (first start only), launch the JVM, wait until it answers."""
        if self._proc is not None and self._proc.poll() is None:
            raise KafkaStartError(f"Apache Kafka already runs as PID {self._proc.pid}")
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        if not (self.log_dir / "meta.properties").exists():
            self._format(config)
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [*_die_with_parent(), *self._java(), "kafka.Kafka", str(config)], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._wait_ready()
        self.started_in_s = time.monotonic() - t0
        return self

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError("java not found on PATH (scripts/kafka.sh installs Java 17)")
        return [java, f"-Xmx{self.heap_mb}m", *JVM_OPTS, "-cp", f"{self.jars}/*"]

    def _format(self, config: Path) -> None:
        cmd = [*self._java(), "kafka.tools.StorageTool", "format", "--standalone",
               "-t", _cluster_id(), "-c", str(config)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise KafkaStartError(f"formatting {self.log_dir} failed: {out.stdout[-1500:]}"
                                  f"{out.stderr[-1500:]}")  # fmt: skip

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise KafkaStartError(f"Apache Kafka exited with status {self._proc.returncode}"
                                      f" (log: {self.log_path})")  # fmt: skip
            if self.answers():
                return
            time.sleep(0.2)
        self.stop(signal.SIGKILL)
        raise KafkaStartError(f"Apache Kafka not ready on {self.bootstrap} after "
                              f"{READY_TIMEOUT_S:.0f} s (log: {self.log_path})")  # fmt: skip

    def answers(self) -> bool:
        """Whether the broker answers a metadata request and is registered, not fenced."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000,
                                     client_id="xdrs-tests-ready")  # fmt: skip
        except (OSError, KafkaError):
            return False
        try:
            brokers = admin.describe_cluster()["brokers"]
        except KafkaError:
            return False
        finally:
            admin.close()
        return any(not b.get("is_fenced", False) for b in brokers)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Send ``sig`` (SIGTERM: a controlled shutdown) and wait; SIGKILL after ``timeout``.
        Safe to call twice; the log dir stays for the next :meth:`start`."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a frozen broker cannot act on SIGTERM
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
