"""The daemon's shared options on every platform's actuator, checked when parsed: OpenStack
takes the same ones as vSphere (with Nova's per-host default), vSphere's per-host limit
follows the vMotion link, and ``--metrics-addr`` is declared wherever a daemon runs."""

from __future__ import annotations

import socket

import pytest

from xdrs.cli import main, parse
from xdrs.cli.daemon import daemon_metrics
from xdrs.errors import UsageError

VS = ["actuate", "vsphere", "--url", "https://vc.example/sdk", "--user", "u"]
OS = ["actuate", "openstack", "--cloud", "test"]


@pytest.mark.parametrize(("argv", "per_host"), [
    ([], 8), (["--vmotion-gbps", "10"], 8), (["--vmotion-gbps", "25"], 8),
    (["--vmotion-gbps", "1"], 4), (["--vmotion-gbps", "2.5"], 4),
    (["--vmotion-gbps", "1", "--per-host", "2"], 2), (["--per-host", "6"], 6),
], ids=["default-10g", "10g", "25g", "1g", "2.5g", "1g-given", "given"])  # fmt: skip
def test_vsphere_per_host_limit_follows_the_vmotion_link(argv, per_host):
    assert parse([*VS, *argv]).limits.per_host == per_host


def test_openstack_takes_the_shared_daemon_options(monkeypatch):
    monkeypatch.setenv("XDRS_API_TOKEN", "t" * 20)
    args = parse([*OS, "--dry-run", "--api", "[::1]:0", "--rate", "0.5", "--max-age", "30",
                  "--metrics-addr", "9465", "--migration-timeout", "100"])  # fmt: skip
    lim = args.limits
    assert (lim.per_host, lim.rate_per_s, lim.max_age_s, lim.timeout_s) == (1, 0.5, 30, 160)
    assert args.dry_run and args.api_config.host == "::1" and args.api_config.token == "t" * 20
    assert args.metrics_addr == ("127.0.0.1", 9465)  # loopback unless a host is given


def test_anti_flapping_settings_reach_the_limits():
    lim = parse([*VS, "--min-benefit", "0.2", "--vm-cooldown", "900", "--host-hold", "0"]).limits
    assert (lim.min_benefit, lim.vm_cooldown_s, lim.host_hold_s) == (0.2, 900, 0)
    base = parse(OS).limits
    assert (base.min_benefit, base.vm_cooldown_s) == (0.05, 600)


def test_openstack_keeps_novas_default_of_one_migration_per_host():
    args = parse(OS)
    assert (args.limits.per_host, args.dry_run, args.api_config, args.metrics_addr) == (
        1, False, None, None)  # fmt: skip
    assert parse([*OS, "--per-host", "3"]).limits.per_host == 3


@pytest.mark.parametrize("command", [VS, OS, ["replay", "--apply"]], ids=["vsphere", "openstack",
                                                                          "replay"])  # fmt: skip
def test_metrics_addr_is_a_daemon_option_everywhere(command):
    assert parse([*command, "--metrics-addr", "0.0.0.0:9465"]).metrics_addr == ("0.0.0.0", 9465)


@pytest.mark.parametrize(("argv", "message"), [
    ([*OS, "--per-host", "0"], "--per-host: expected an integer"),
    ([*OS, "--rate", "-1"], "--rate:"),
    ([*OS, "--max-age", "0"], "--max-age:"),
    ([*OS, "--api", "0.0.0.0:8480"], "--api: API on 0.0.0.0: binding beyond loopback needs a "
                                     "bearer token"),
    ([*OS, "--api-token-file", "/t"], "--api-token-file: needs --api"),
    ([*OS, "--automation", "/nonexistent.json"], "--automation: /nonexistent.json"),
    ([*OS, "--metrics-addr", "http"], "--metrics-addr: expected [HOST:]PORT, got 'http'"),
    ([*VS, "--vmotion-gbps", "0"], "--vmotion-gbps: expected"),
    ([*VS, "--metrics-addr", "99999"], "--metrics-addr: expected [HOST:]PORT"),
    (["replay", "--metrics-addr", "9465"], "--metrics-addr: needs --apply"),
    (["demo", "--metrics-addr", "9465"], "unrecognized arguments: --metrics-addr"),
    ([*OS, "--min-benefit", "2"], "--min-benefit: expected a number 0..1, got 2.0"),
    ([*VS, "--vm-cooldown", "-1"], "--vm-cooldown: expected a finite number >= 0"),
    (["replay", "--apply", "--host-hold", "nan"], "--host-hold: expected a finite number"),
], ids=["per-host", "rate", "max-age", "api-beyond-loopback", "token-without-api",
        "automation", "os-metrics-addr", "vmotion-gbps", "vs-metrics-addr", "replay-needs-apply",
        "demo-has-metrics-port", "min-benefit", "vm-cooldown", "host-hold"])  # fmt: skip
def test_bad_daemon_options_are_one_clear_error(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("XDRS_API_TOKEN", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdrs: error: ") and message in err and "Traceback" not in err


def test_a_taken_metrics_port_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        args = parse(["replay", "--apply", "--metrics-addr", str(port)])
        taken = pytest.raises(UsageError, match=r"^--metrics-addr: Address already in use$")
        with taken, daemon_metrics(args):
            pass
