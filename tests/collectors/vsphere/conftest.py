"""The vCenter simulator (our Go main on govmomi's simulator package), started for real.

``scripts/vcsim.sh`` builds the binary once (cached on its source hash); every simulator
gets its own TMPDIR (a killed simulator leaves files behind) and is stopped with SIGTERM.
Nothing here is mocked: the tests talk SOAP to the simulator through pyvmomi.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collectors.vsphere import Connection, ConnectionSpec

# the real Kafka-protocol broker of the bus tests, for the pipeline tests of this folder
from tests.xdrs.bus.conftest import broker, config  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 120.0


@dataclass
class Vcsim:
    """A running simulator."""

    proc: subprocess.Popen[str]
    url: str
    tmpdir: Path
    args: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def connect(self, user: str = "user", password: str = "pass", **kw: Any) -> Connection:
        return Connection(ConnectionSpec(self.url, user, password, **kw), retries=2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_vcsim(binary: Path, tmpdir: Path, *args: str) -> Vcsim:
    """Start ``binary`` with ``args`` and wait for the URL it prints."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmpdir))
    proc = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not line or not line[0].startswith("URL "):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""  # type: ignore[union-attr]
        raise RuntimeError(f"vcsim did not start: {line} {err[-2000:]}")
    return Vcsim(proc, line[0].split()[1], tmpdir, list(args))


@pytest.fixture(scope="session")
def vcsim_bin() -> Path:
    out = subprocess.run([str(ROOT / "scripts" / "vcsim.sh")], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def vcsim_big(vcsim_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    """64 hosts, 1,000 VMs, 4 clusters: read-only tests only (shared by the session)."""
    sim = start_vcsim(vcsim_bin, tmp_path_factory.mktemp("vcsim-big"),
                      "-hosts", "64", "-vms", "1000", "-clusters", "4")  # fmt: skip
    yield sim
    sim.stop()


@pytest.fixture
def vcsim_factory(vcsim_bin: Path, tmp_path: Path) -> Iterator[Any]:
    """Start simulators private to one test: ``vcsim_factory("-hosts", "16", ...)``."""
    sims: list[Vcsim] = []

    def start(*args: str) -> Vcsim:
        sim = start_vcsim(vcsim_bin, tmp_path / f"vcsim-{len(sims)}", *args)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


@pytest.fixture
def vcsim_small(vcsim_factory: Any) -> Vcsim:
    """16 hosts, 200 VMs, 2 clusters, private to the test (tests may change it)."""
    sim: Vcsim = vcsim_factory("-hosts", "16", "-vms", "200", "-clusters", "2")
    return sim
