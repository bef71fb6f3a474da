"""The broker process shared by Tansu and the tests' Apache Kafka: start, readiness, stop by
PID (real processes, no broker fixture: these start their own)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xdrs.bus.broker import BrokerError, EmbeddedBroker, stop_process

IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)"
)


def _started(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_a_process_deaf_to_sigterm_is_killed_after_the_timeout() -> None:
    proc = _started(IGNORES_TERM)
    stop_process(proc, timeout=0.5)
    assert proc.returncode == -signal.SIGKILL
    stop_process(proc)  # exited: nothing to do
    stop_process(None)


def test_a_stopped_process_is_continued_so_it_acts_on_sigterm() -> None:
    proc = _started("import time; print('ready', flush=True); time.sleep(120)")
    proc.send_signal(signal.SIGSTOP)
    stop_process(proc, timeout=30)
    assert proc.returncode == -signal.SIGTERM


@pytest.mark.broker
def test_embedded_broker_starts_stops_and_names_its_state(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    with pytest.raises(BrokerError, match=r"^embedded broker is not running$"):
        _ = broker.pid
    with broker:
        assert broker.bootstrap == f"127.0.0.1:{broker.port}" and broker.pid > 0
        assert broker._listening()
    with pytest.raises(BrokerError, match="not running"):
        _ = broker.pid
    broker.stop()  # twice is harmless
    assert not broker._listening()


@pytest.mark.broker
def test_a_broker_that_exits_at_once_names_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'no such option' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("XDRS_TANSU_BIN", str(fake))
    log = tmp_path / "tansu.log"
    with pytest.raises(BrokerError, match=rf"exited with status 3 \(log: {re.escape(str(log))}\)"):
        EmbeddedBroker(log_path=log).start()
    assert "no such option" in log.read_text()
