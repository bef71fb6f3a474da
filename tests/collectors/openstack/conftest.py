"""The OpenStack test cloud (scripts/openstack.sh), started once per test session.

Real Nova (Debian's packages) with the fake virt driver on three hosts, ``fake-1`` and
``fake-2`` in ``az1`` and ``fake-3`` in ``az2``; nothing here is mocked. The script keeps its
state (generated password, clouds.yaml) outside the checkout; the cloud is stopped by PID at
the end of the session unless ``XDRS_OPENSTACK_KEEP=1`` (handy while developing: the next
session's ``start`` then returns at once).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from collectors.openstack import CloudSpec, collect_inventory, connect
from collectors.openstack.loadexporter import LoadExporter, LoadModel, follow
from collectors.openstack.prometheus import PromClient, PromSpec, SeriesNames
from collectors.replay.traces import load_trace
from tests.support.prometheus import running_prometheus

# the real Kafka-protocol broker of the bus tests (Tansu), for the bus tests of this folder
from tests.xdrs.bus.conftest import broker, config  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "openstack.sh"
CLOUD = "xdrs-test"
ZONES = {"fake-1": "az1", "fake-2": "az1", "fake-3": "az2"}


@dataclass(frozen=True)
class Cloud:
    state: Path

    @property
    def clouds_yaml(self) -> Path:
        return self.state / "clouds.yaml"

    def env(self) -> dict[str, str]:
        return dict(os.environ, OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml))

    def connect(self) -> Any:
        return connect(CloudSpec(CLOUD))


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    out = subprocess.run(
        [str(SCRIPT), "start"], capture_output=True, text=True, timeout=900, check=False
    )
    if out.returncode != 0:
        subprocess.run([str(SCRIPT), "stop"], check=False, timeout=120)
        pytest.fail(f"openstack.sh start failed:\n{out.stderr[-4000:]}")
    c = Cloud(Path(out.stdout.strip().splitlines()[-1]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OS_CLIENT_CONFIG_FILE", str(c.clouds_yaml))
        yield c
    if os.environ.get("XDRS_OPENSTACK_KEEP") != "1":
        subprocess.run([str(SCRIPT), "stop"], check=True, timeout=120)


@pytest.fixture(scope="session")
def conn(cloud: Cloud) -> Iterator[Any]:
    c = cloud.connect()
    yield c
    c.close()


def boot(conn: Any, name: str, flavor: str = "m1.small", **kw: Any) -> Any:
    """Boot a server with no network (the Neutron stand-in has none) and wait for ACTIVE."""
    image = next(i for i in conn.image.images() if i.name == "xdrs-test")
    fl = conn.compute.find_flavor(flavor, ignore_missing=False)
    s = conn.compute.create_server(
        name=name, image_id=image.id, flavor_id=fl.id, networks="none", **kw
    )
    try:
        return conn.compute.wait_for_server(s, wait=120, interval=0.5)
    except Exception:
        conn.compute.delete_server(s)  # one that never became ACTIVE is not left behind
        raise


def delete_all(conn: Any, servers: list[Any]) -> None:
    """Delete ``servers`` and wait until each is gone."""
    for s in servers:
        conn.compute.delete_server(s)
    for s in servers:
        conn.compute.wait_for_delete(s, wait=120)


def nova(action: str, service: str) -> None:
    """``scripts/openstack.sh stop-nova|start-nova SERVICE`` (fault tests)."""
    subprocess.run([str(SCRIPT), f"{action}-nova", service], check=True, timeout=120)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_host(conn: Any, server_id: str, host: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        s = conn.compute.get_server(server_id)
        if s.compute_host == host and s.task_state is None:
            return s
        assert time.monotonic() < deadline, f"{server_id} not on {host}: {s.compute_host}"
        time.sleep(0.5)


# ---- load: our exporter, scraped by a real Prometheus ---------------------------------------

SCRAPE_S = 1
WINDOW_S = 5.0  # the collector's rate window: five scrapes


@dataclass
class Load:
    """The load exporter (in this process, so tests steer it) and the Prometheus scraping it."""

    model: LoadModel
    exporter_port: int
    url: str  # Prometheus
    names: SeriesNames

    def client(self) -> PromClient:
        return PromClient(PromSpec(self.url))

    def refresh(self, conn: Any) -> None:
        """Read where the servers run now (the exporter also does so every second)."""
        self.model.update(collect_inventory(conn, CLOUD))


def prometheus_scraping(
    target: str, d: Path, tls: tuple[Path, Path] | None = None
) -> AbstractContextManager[str]:
    """Debian's Prometheus scraping ``target`` every second (job ``load``), its files in
    ``d``; its URL. With ``tls`` (certificate, key) it serves HTTPS."""
    settings = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "scrape_configs": [{"job_name": "load", "static_configs": [{"targets": [target]}]}],
    }
    return running_prometheus(settings, d, tls)


@pytest.fixture(scope="session")
def load(cloud: Cloud, conn: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    """The load exporter over the test cloud (the packaged PlanetLab day, one step a
    second) and a Prometheus scraping it every second."""
    model = LoadModel(load_trace("planetlab:20110303"), step_s=1.0)
    names = SeriesNames(window_s=WINDOW_S)
    registry = CollectorRegistry()
    registry.register(LoadExporter(model, names))
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    follower = threading.Thread(
        target=follow, args=(model, lambda: collect_inventory(conn, CLOUD), 1.0, stop),
        daemon=True,
    )  # fmt: skip
    follower.start()
    port = server.server_address[1]
    try:
        with prometheus_scraping(f"127.0.0.1:{port}", tmp_path_factory.mktemp("prometheus")) as url:
            yield Load(model, port, url, names)
    finally:
        stop.set()
        server.shutdown()
        follower.join(10)


class ListSink:
    """A :class:`collectors.events.Sink` that keeps what it is given (for cycle tests)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []
        self.flushes = 0

    def publish(self, kind: str, key: str, event: Any) -> None:
        self.items.append((kind, key, event))

    def flush(self) -> None:
        self.flushes += 1

    def take(self) -> list[tuple[str, str, Any]]:
        out, self.items = self.items, []
        return out
