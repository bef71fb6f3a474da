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
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collectors.openstack import CloudSpec, connect

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
    return conn.compute.wait_for_server(s, wait=120, interval=0.5)


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
