"""``xdrs demo`` with the daemon's options: failures, a policy file, and bad values."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.support import wait_for
from xdrs.cli import main, parse


@pytest.mark.broker  # the embedded broker
def test_demo_converges_with_ten_percent_failures(capsys):
    argv = ["demo", "--duration", "16", "--speed", "8", "--quiet", "--fail-rate", "0.1",
            "--dirty-rate", "100"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    applied, refused = map(int, re.search(r"moves applied (\d+), refused (\d+)", out).groups())
    assert applied > 0 and refused > 0  # failures happen, and are counted
    rows = re.findall(r"^(replay-\w)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
    assert len(rows) == 2
    for _, first, now, target in rows:
        assert float(first) > 0.2 and float(now) <= float(target)


@pytest.mark.broker
def test_demo_at_manual_moves_nothing(tmp_path, capsys):
    policy = tmp_path / "automation.json"
    policy.write_text('{"format": "xdrs-automation/1", "default": "manual"}')
    argv = ["demo", "--duration", "6", "--speed", "8", "--quiet", "--automation", str(policy)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"moves applied 0, refused 0", out)
    assert int(re.search(r"recommendations (\d+) published", out).group(1)) > 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--fail-rate", "2"], "--fail-rate: expected a number in [0, 1]"),
    (["--link-gbps", "0"], "--link-gbps"),
    (["--dirty-rate", "-1"], "--dirty-rate"),
    (["--automation", "/nonexistent.json"], "--automation: /nonexistent.json"),
], ids=["fail-rate", "link", "dirty", "automation-missing"])  # fmt: skip
def test_bad_daemon_options_are_one_clear_error(argv, message, capsys):
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdrs: error: ") and message in err and "Traceback" not in err


def test_a_bad_automation_file_names_file_and_field(tmp_path, capsys):
    policy = tmp_path / "a.yaml"
    policy.write_text("default: full\nvms: {vm-1: sometimes}\n")
    assert main(["demo", "--automation", str(policy)]) == 2
    err = capsys.readouterr().err
    assert f"--automation: {policy}.vms['vm-1']: expected one of never, ask" in err


VS = ["actuate", "vsphere", "--url", "https://vc.example/sdk", "--user", "u"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--api", "0.0.0.0:8480"], "--api: API on 0.0.0.0: binding beyond loopback needs a bearer "
                                "token (--api-token-file FILE or XDRS_API_TOKEN)"),
    (["--api", "http"], "--api: expected [HOST:]PORT, got 'http'"),
    (["--api-token-file", "/t"], "--api-token-file: needs --api"),
    (["--api", "8480", "--api-token-file", "/nonexistent"],
     "--api-token-file: /nonexistent: No such file or directory"),
    (["--per-host", "0"], "--per-host"),
    (["--metric-age", "0"], "--metric-age"),
    (["--automation", "/nonexistent.json"], "--automation: /nonexistent.json"),
], ids=["beyond-loopback", "bad-addr", "token-without-api", "token-missing", "per-host",
        "metric-age", "automation"])  # fmt: skip
def test_actuate_daemon_options_are_checked_when_parsed(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("XDRS_API_TOKEN", raising=False)
    assert main([*VS, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdrs: error: ") and message in err and "Traceback" not in err


def test_a_short_token_is_refused_without_showing_it(tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text("hunter2\n")
    assert main([*VS, "--api", "0.0.0.0:1", "--api-token-file", str(token)]) == 2
    err = capsys.readouterr().err
    assert f"--api-token-file: {token}: expected a bearer token of 16..4096" in err
    assert "hunter2" not in err


def test_actuate_parses_the_daemon_options(tmp_path, monkeypatch):
    monkeypatch.setenv("XDRS_API_TOKEN", "x" * 20)
    args = parse([*VS, "--api", "[::1]:0", "--per-host", "4", "--rate", "0.5", "--dry-run",
                  "--task-timeout", "100"])  # fmt: skip
    assert (args.limits.per_host, args.limits.rate_per_s, args.limits.timeout_s) == (4, 0.5, 160)
    assert args.dry_run and args.api_config.host == "::1" and args.api_config.token == "x" * 20
    assert "x" * 20 not in repr(args.api_config)


def test_replay_daemon_options_need_apply(capsys):
    assert main(["replay", "--api", "8480"]) == 2
    assert "xdrs: error: --api: needs --apply" in capsys.readouterr().err


@pytest.mark.broker  # the embedded broker, in the command's process
def test_replay_apply_serves_the_api_with_the_automation_file(tmp_path):
    policy = tmp_path / "automation.json"
    policy.write_text('{"format": "xdrs-automation/1", "default": "manual"}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
           "replay", "--apply", "--speed", "2", "--automation", str(policy),
           "--api", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1/automation"

    def answer():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None  # not listening yet, or still rebuilding (503)

    try:
        assert wait_for(answer, 60, every=0.2), proc.stderr
        assert answer()["policy"]["default"] == "manual"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
