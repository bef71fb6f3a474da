"""Authentication, TLS and transport failures against the real simulator."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from collectors.vsphere import (
    AuthError,
    Change,
    CollectorOptions,
    Connection,
    ConnectionSpec,
    Inventory,
    MetricSample,
    VSphereCollector,
    VSphereError,
)
from tests.collectors.vsphere.conftest import Vcsim, start_vcsim
from tests.support import wait_for
from xdrs.cli import main

pytestmark = pytest.mark.vcsim

SECRET = "s3cret-Pa55"
DEADLINE_S = 30.0  # waiting timeouts, not speed assertions


def _snapshot_cmd(sim: Vcsim, out: Path, pw: Path, *extra: str) -> list[str]:
    return ["vsphere", "snapshot", "--url", sim.url, "--user", "admin", "--password-file",
            str(pw), "--out", str(out), *extra]  # fmt: skip


def test_wrong_password_clear_error(
    vcsim_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = vcsim_factory("-hosts", "4", "-vms", "8", "-clusters", "1",
                        "-user", "admin", "-password", SECRET)  # fmt: skip
    wrong, right = tmp_path / "wrong", tmp_path / "right"
    wrong.write_text("not-the-password-xyz\n")
    right.write_text(SECRET + "\n")
    out = tmp_path / "snap.json"
    assert main(_snapshot_cmd(sim, out, wrong)) == 1
    captured = capsys.readouterr()
    assert "login refused for user 'admin'" in captured.err
    assert "Traceback" not in captured.err
    assert "not-the-password-xyz" not in captured.err + captured.out
    assert not out.exists()
    assert main(_snapshot_cmd(sim, out, right)) == 0
    assert SECRET not in capsys.readouterr().out
    assert out.exists()


def test_password_never_in_repr() -> None:
    spec = ConnectionSpec("https://vc.example", "admin", SECRET)
    assert SECRET not in repr(spec) and SECRET not in str(spec)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://vc.example.com/sdk", "plain http is only allowed to a loopback address"),
        ("ftp://127.0.0.1/sdk", "expected https://HOST"),
        ("https://127.0.0.1:99999/sdk", "invalid port"),
        ("https://admin:pw@vc.example.com/sdk", "must not carry credentials"),
    ],
    ids=["http-remote", "bad-scheme", "bad-port", "credentials"],
)
def test_bad_url_rejected_before_connecting(
    url: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["vsphere", "snapshot", "--url", url, "--user", "u",
                   "--out", str(tmp_path / "s.json")])  # fmt: skip
    assert status == 2
    assert message in capsys.readouterr().err


def test_missing_password_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pw, out = str(tmp_path / "nope"), str(tmp_path / "s")
    status = main(["vsphere", "snapshot", "--url", "https://127.0.0.1/sdk", "--user", "u",
                   "--password-file", pw, "--out", out])  # fmt: skip
    assert status == 2
    assert "cannot read password file" in capsys.readouterr().err


def _cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_verified_by_default(
    vcsim_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = _cert(tmp_path)
    sim = vcsim_factory("-hosts", "4", "-vms", "8", "-clusters", "1",
                        "-cert", str(cert), "-key", str(key))  # fmt: skip
    assert sim.url.startswith("https://")
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    out = tmp_path / "snap.json"
    assert main(_snapshot_cmd(sim, out, pw)) == 1
    assert "TLS certificate not trusted" in capsys.readouterr().err
    assert not out.exists()
    assert main(_snapshot_cmd(sim, out, pw, "--ca-bundle", str(cert))) == 0
    out.unlink()
    assert main(_snapshot_cmd(sim, out, pw, "--insecure")) == 0


class _Recorder:
    def __init__(self) -> None:
        self.inventories: list[Inventory] = []
        self.metrics = 0
        self.changes: list[Change] = []

    def on_inventory(self, inv: Inventory) -> None:
        self.inventories.append(inv)

    def on_metrics(self, samples: Sequence[MetricSample]) -> None:
        self.metrics += 1

    def on_changes(self, changes: Sequence[Change]) -> None:
        self.changes.extend(changes)


def test_collector_survives_simulator_restart(vcsim_bin: Path, tmp_path: Path) -> None:
    args = ("-hosts", "8", "-vms", "40", "-clusters", "2")
    sim = start_vcsim(vcsim_bin, tmp_path / "a", *args)
    conn = Connection(ConnectionSpec(sim.url, "u", "p"), retries=3, backoff_s=0.2)
    rec = _Recorder()
    col = VSphereCollector(conn, rec, CollectorOptions(interval_s=0.5, backoff_s=0.2,
                                                       backoff_max_s=1.0))  # fmt: skip
    stop = threading.Event()
    worker = threading.Thread(target=col.run, args=(stop,), daemon=True)
    worker.start()
    try:
        assert wait_for(lambda: col.cycles >= 2, DEADLINE_S)
        sim.stop(signal.SIGKILL)  # mid-collection: the loop is cycling every 0.5 s
        cycles_down = col.cycles
        time.sleep(1.5)
        assert worker.is_alive(), "collector died with the simulator"
        sim = start_vcsim(vcsim_bin, tmp_path / "b", *args, "-listen", f"127.0.0.1:{sim.port}")
        assert wait_for(lambda: col.reconnects >= 1 and col.cycles >= cycles_down + 2, DEADLINE_S)
    finally:
        stop.set()
        worker.join(10)
        sim.stop()
        conn.close()
    assert not worker.is_alive()
    assert len(rec.inventories) == 1, "the same inventory is not emitted twice"
    assert len(rec.inventories[0].vms) == 40
    assert rec.metrics == col.cycles


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_login_backs_off_then_gives_up() -> None:
    """Nothing listens on the port: three attempts, delays doubling, then a clear error."""
    slept: list[float] = []
    spec = ConnectionSpec(f"http://127.0.0.1:{_closed_port()}/sdk", "u", "p")
    conn = Connection(spec, retries=3, backoff_s=0.5, sleep=slept.append)
    with pytest.raises(VSphereError, match="cannot connect"):
        _ = conn.si
    assert slept == [0.5, 1.0]


def test_wrong_password_not_retried(vcsim_factory: Any) -> None:
    sim = vcsim_factory("-hosts", "4", "-vms", "8", "-clusters", "1",
                        "-user", "admin", "-password", SECRET)  # fmt: skip
    slept: list[float] = []
    conn = Connection(ConnectionSpec(sim.url, "admin", "nope"), retries=5, sleep=slept.append)
    with pytest.raises(AuthError):
        _ = conn.si
    assert slept == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[{", "invalid JSON at line 1"),
        (b'{"action": "migrate"}', "expected an action list"),
        (b'[{"action": "migrate", "vm": "vm-1", "source": 3}]', "actions[0].source"),
    ],
    ids=["not-json", "not-a-list", "bad-source"],
)
def test_bad_action_list_rejected(
    body: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "actions.json"
    path.write_bytes(body)
    status = main(["vsphere", "apply", "--url", "http://127.0.0.1:9/sdk", "--user", "u",
                   "--actions", str(path)])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err


def test_unreachable_vcenter_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    status = main(["vsphere", "snapshot", "--url", f"http://127.0.0.1:{_closed_port()}/sdk",
                   "--user", "u", "--out", str(out)])  # fmt: skip
    assert status == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err and "Traceback" not in err
    assert not out.exists()
