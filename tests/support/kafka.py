"""Apache Kafka, the production broker, started for real in the tests.

``scripts/kafka.sh`` fetches the broker's jars once (Maven, cached on its pom's hash) and
prints their directory. :class:`ApacheKafka` formats a single-node KRaft log dir (combined
broker and controller), starts ``kafka.Kafka`` on free loopback ports, waits until the broker
answers a metadata request unfenced, and stops it by PID. It can be stopped (SIGTERM or
SIGKILL) and started again on the same log dir and ports: what the broker acknowledged is
still there, which is what the durability tests need. Nothing here knows xdrs beyond the
generic broker process of :mod:`xdrs.bus.broker` (its port, readiness wait and stop by PID).
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Self

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from xdrs.bus.broker import BrokerError, BrokerProcess, free_port

__all__ = ["ApacheKafka", "KafkaStartError", "kafka_jars"]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180.0  # a cold JVM on a busy 2-core machine
JVM_OPTS = (
    "-Xms64m",
    "-XX:+UseSerialGC",  # one GC thread: the tests' broker holds little and shares 2 cores
    "-XX:TieredStopAtLevel=1",  # C1 only: faster start, throughput is not the point here
    "-Djava.awt.headless=true",
)


class KafkaStartError(BrokerError):
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


class ApacheKafka(BrokerProcess):
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

    what = "Apache Kafka"
    error = KafkaStartError
    stop_timeout_s = 60.0

    def __init__(self, home: Path, jars: Path | None = None, heap_mb: int = 512) -> None:
        self.home = home
        self.jars = jars if jars is not None else kafka_jars()
        self.heap_mb = heap_mb
        self.port = free_port()
        self.controller_port = free_port()
        self.started_in_s = 0.0  # of the last start: JVM launch until the broker answers
        self._proc = None
        atexit.register(self.stop, signal.SIGKILL)  # a test process that exits early

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

    def start(self) -> Self:
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
        self._wait_ready(self.answers, READY_TIMEOUT_S, 0.2, self.log_path)
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
