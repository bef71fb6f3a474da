"""``xdrs openstack snapshot`` against the real Nova, and the errors a user sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.collectors.openstack.conftest import CLOUD, Cloud, boot, unique
from xdrs.snapshot import read_snapshot

pytestmark = pytest.mark.openstack


def _xdrs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_snapshot_then_plan(cloud: Cloud, conn: Any, tmp_path: Path) -> None:
    s = boot(conn, unique("snap"), availability_zone="az2")
    try:
        out = tmp_path / "snap.json"
        r = _xdrs(cloud.env(), "openstack", "snapshot", "--cloud", CLOUD, "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert "3 hosts" in r.stdout and "2 availability zones" in r.stdout
        state = read_snapshot(out)
        assert f"{CLOUD}/{s.id}" in state.vm_ids
        v = state.vm_ids.index(f"{CLOUD}/{s.id}")
        host = state.host_ids[int(state.placement[v])]
        assert host == f"{CLOUD}/{conn.compute.get_server(s.id).compute_host}"
        plan = tmp_path / "actions.json"
        r = _xdrs(
            cloud.env(), "plan", "--in", str(out), "--strategy", "balance", "--out", str(plan)
        )
        assert r.returncode == 0, r.stderr
        assert plan.exists()
    finally:
        conn.compute.delete_server(s)
        conn.compute.wait_for_delete(s, wait=120)


def test_wrong_password_is_one_clear_error(cloud: Cloud, tmp_path: Path) -> None:
    text = cloud.clouds_yaml.read_text()
    password = next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if "password:" in line
    )
    wrong = "not-the-password-42"
    bad = tmp_path / "clouds.yaml"
    bad.write_text(text.replace(password, wrong))
    env = dict(cloud.env(), OS_CLIENT_CONFIG_FILE=str(bad))
    r = _xdrs(env, "openstack", "snapshot", "--cloud", CLOUD, "--out", str(tmp_path / "s.json"))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines == [f"xdrs: error: cloud {CLOUD}: authentication failed "
                     "(check user, password, project)"]  # fmt: skip
    assert wrong not in r.stderr + r.stdout
    assert not (tmp_path / "s.json").exists()


def test_unknown_cloud_is_one_clear_error(cloud: Cloud, tmp_path: Path) -> None:
    r = _xdrs(cloud.env(), "openstack", "snapshot", "--cloud", "nope", "--out", str(tmp_path / "s"))
    assert r.returncode == 1
    assert r.stderr.startswith("xdrs: error: cloud nope: configuration:")
    assert "Traceback" not in r.stderr
