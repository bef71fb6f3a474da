"""``xdrs demo`` with the daemon's options (failures, a policy file, bad values, why a cluster
missed its target) and ``xdrs recommendations`` deciding several at once."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass

import msgspec
import pytest

from collectors.events import Approval, Recommendation, inventory_key
from collectors.replay import ReplayCollector
from tests.support import wait_for
from xdrs.bus.config import BusConfig
from xdrs.bus.kafka import KafkaSink
from xdrs.cli import main, parse
from xdrs.daemon.api import ApiConfig, ApiServer
from xdrs.daemon.approvals import read_topic
from xdrs.daemon.limits import Limits
from xdrs.daemon.policy import Policy, PolicyFile
from xdrs.daemon.service import DaemonOptions, RebalanceDaemon
from xdrs.demo import why_not

from .sim import feed, scenario, spread_moves, steady_trace


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
    # why the clusters missed their targets: their moves wait for an operator
    why = re.findall(r"^(replay-\w) missed its target \(sd ([\d.]+) > ([\d.]+)\): (.*)$", out,
                     re.M)  # fmt: skip
    assert why, out
    for _, sd, target, text in why:
        assert float(sd) > float(target)
        assert re.search(r"held back now: approval [1-9]", text), text
        assert "failed" not in text


@pytest.mark.broker
def test_demo_says_why_when_every_migration_fails(capsys):
    argv = ["demo", "--duration", "8", "--speed", "8", "--quiet", "--fail-rate", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"moves applied 0, refused [1-9]", out), out
    why = re.findall(r"^replay-\w missed its target .*: (\d+) recommendation\(s\) acted on; "
                     r"(.*)$", out, re.M)  # fmt: skip
    assert why, out
    failed = sum(int(re.search(r"failed (\d+) \(platform \1\)", text).group(1))
                 for _, text in why)  # fmt: skip
    refused = int(re.search(r"refused (\d+)", out).group(1))
    assert failed == refused  # every failure is counted under the missed clusters


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


# ---- xdrs recommendations: several ids, --all, the cost, through the bus or the API ---------


@dataclass
class Manual:
    """A daemon at ``manual`` on the bus over a replayed data centre (instant moves), its
    HTTP API on a free port (with ``token`` if given)."""

    config: BusConfig
    dc: ReplayCollector
    sink: KafkaSink
    api: ApiServer

    def recommend(self, rid: str, cluster: str, n: int = 2) -> Recommendation:
        moves = [msgspec.structs.replace(m, cost_mib=4096.0)
                 for m in spread_moves(self.dc, cluster, n, rid)]  # fmt: skip
        rec = Recommendation(rid, cluster, "imbalance", "balance", time.time(), 1.0, 0.5, moves)
        self.sink.publish("recommendations", inventory_key(cluster, "recommendation", rid), rec)
        self.sink.flush()
        return rec

    def where(self, vm: str) -> str:
        return self.dc.hosts[int(self.dc.place[self.dc.vm_index[vm]])].uuid


def _manual(config: BusConfig, running, token: str | None = None) -> Manual:
    sink = KafkaSink(config)
    dc = ReplayCollector(scenario(clusters=3), steady_trace(), sink, speed=0, inventory_every=0)
    feed(running, dc)
    opts = DaemonOptions(limits=Limits(vm_cooldown_s=0, host_hold_s=0),
                         policy=PolicyFile(policy=Policy(default="manual")))  # fmt: skip
    daemon = RebalanceDaemon(config, dc, opts)
    api = ApiServer(daemon.control(), ApiConfig(port=0, token=token))
    api.start()
    running.start(daemon.run)
    running.start(lambda stop: (stop.wait(), api.close(), sink.close()))
    assert daemon.ready.wait(60)
    return Manual(config, dc, sink, api)


def _recs(m: Manual, capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["recommendations", *argv, "--bootstrap-servers", m.config.bootstrap,
                   "--topic-prefix", m.config.topics.prefix])  # fmt: skip
    out, err = capsys.readouterr()
    return status, out, err


def _listed(m: Manual, capsys, ids: set[str], *api: str) -> str:
    """``list``'s output once it shows every id in ``ids``."""
    out = ""

    def shows() -> bool:
        nonlocal out
        out = _recs(m, capsys, "list", *api)[1]
        return all(re.search(rf"^{i} ", out, re.M) for i in ids)

    assert wait_for(shows, 30, every=0.3), out
    return out


@pytest.mark.broker
def test_approve_several_and_reject_all_through_the_bus(config, running, capsys):
    m = _manual(config, running)
    r1, r2 = m.recommend("r1", "c0"), m.recommend("r2", "c1", 3)
    out = _listed(m, capsys, {"r1", "r2"})
    assert "copy GiB" in out and re.search(r"^r2 .* 3 +3 +1\.000->0\.500 +12\.0 ", out, re.M)
    assert "2 recommendation(s), 5 move(s), 5 held, 20.0 GiB to copy" in out
    # an unknown id refuses the whole command before anything is decided
    status, _, err = _recs(m, capsys, "approve", "r1", "nope")
    assert status == 1 and "recommendation 'nope': not on the recommendations topic" in err
    assert all(m.where(x.vm) == x.src for x in r1.moves)
    status, out, _ = _recs(m, capsys, "approve", "r1", "r2", "--by", "ann")
    assert status == 0 and out.count("move(s) answered by the daemon") == 2
    assert wait_for(lambda: all(m.where(x.vm) == x.dst for x in r1.moves + r2.moves), 30)
    r3, r4 = m.recommend("r3", "c2"), m.recommend("r4", "c0")
    _listed(m, capsys, {"r3", "r4"})
    status, out, _ = _recs(m, capsys, "reject", "--all", "--by", "bob")
    assert status == 0 and out.count("skipped: rejected: by bob") == len(r3.moves + r4.moves)
    assert all(m.where(x.vm) == x.src for x in r3.moves + r4.moves)
    status, out, _ = _recs(m, capsys, "approve", "--all")
    assert status == 0 and "no recommendation is waiting for approval" in out


@pytest.mark.broker
def test_approve_several_and_reject_all_through_the_api(config, running, capsys, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token-0123456789\n")
    m = _manual(config, running, token="s3cret-token-0123456789")
    api = ["--api", m.api.url, "--api-token-file", str(token)]
    r1, r2 = m.recommend("r1", "c0"), m.recommend("r2", "c1")
    out = _listed(m, capsys, {"r1", "r2"}, *api)
    assert "2 recommendation(s), 4 move(s), 4 held, 16.0 GiB to copy" in out
    status, _, err = _recs(m, capsys, "list", "--api", m.api.url)  # no token
    assert status == 1 and f"daemon API {m.api.url}/v1/recommendations: 401" in err
    status, out, err = _recs(m, capsys, "show", "r1", *api)
    assert status == 0 and "2 move(s), 8.0 GiB to copy" in out and "r1/1" in out
    status, out, err = _recs(m, capsys, "approve", "r1", "r2", "nope", *api)
    assert status == 1 and "recommendation 'nope': not known to this daemon" in err
    status, out, err = _recs(m, capsys, "approve", "r1", "r2", "--by", "dee", *api)
    assert status == 0, err
    assert "r1: 2 move(s) approved" in out and "r2: 2 move(s) approved" in out  # /v1/decisions
    assert wait_for(lambda: all(m.where(x.vm) == x.dst for x in r1.moves + r2.moves), 30)
    r3 = m.recommend("r3", "c2")
    _listed(m, capsys, {"r3"}, *api)
    status, out, _ = _recs(m, capsys, "reject", "--all", *api)
    assert status == 0 and "r3: 2 move(s) rejected" in out
    assert "1 recommendation(s)" in out and all(m.where(x.vm) == x.src for x in r3.moves)
    decided = [(e.recommendation, e.decision, e.by) for e in read_topic(config,
               config.topics.recommendations) if isinstance(e, Approval)]  # fmt: skip
    assert sorted(decided)[:2] == [("r1", "approve", "dee"), ("r2", "approve", "dee")]
    assert ("r3", "reject") in {d[:2] for d in decided}
    assert "s3cret" not in out + err


@pytest.mark.parametrize(("argv", "message"), [
    (["approve", "--bootstrap-servers", "k:9092"], "approve: give recommendation ids or --all"),
    (["reject", "r1", "--all", "--bootstrap-servers", "k:9092"], "give recommendation ids or"),
    (["approve", "r1", "r2", "--move", "r1/0", "--bootstrap-servers", "k:9092"],
     "--move: needs exactly one recommendation id"),
    (["list"], "--bootstrap-servers: required (the daemon's bus), or --api URL"),
    (["list", "--api", "ftp://x"], "--api: expected http(s)://HOST:PORT, got 'ftp://x'"),
    (["list", "--api-token-file", "/t", "--bootstrap-servers", "k:9092"],
     "--api-token-file: needs --api"),
    (["show", "r1", "--api", "http://127.0.0.1:1", "--api-token-file", "/nonexistent"],
     "--api-token-file: /nonexistent: No such file or directory"),
], ids=["no-ids", "ids-and-all", "move-with-several", "no-bus", "bad-url", "token-without-api",
        "token-missing"])  # fmt: skip
def test_recommendations_options_are_one_clear_error(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("XDRS_API_TOKEN", raising=False)
    assert main(["recommendations", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdrs: error: ") and message in err and "Traceback" not in err


def test_an_unreachable_api_is_one_clear_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        assert main(["recommendations", "list", "--api", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"xdrs: error: daemon API {url}/v1/recommendations: ")
    assert "Traceback" not in err


def test_why_not_names_counts_by_reason_and_what_holds_moves_back():
    reasons = Counter({"skipped:old_metrics": 3, "skipped:held": 1, "failed:platform": 2})
    line = why_not("c0", 0.1234, 0.08, 2, reasons, {"approval": 0, "per_host": 4, "rate": 1})
    assert line == ("c0 missed its target (sd 0.123 > 0.080): 2 recommendation(s) acted on; "
                    "skipped 4 (old_metrics 3, held 1); failed 2 (platform 2); "
                    "held back now: per_host 4, rate 1")  # fmt: skip
    line = why_not("c1", 0.2, 0.1, 0, Counter(), {"approval": 0})
    assert line.endswith("no recommendation acted on (the engine found no move worth its "
                         "margin, or the daemon ran none); held back now: nothing")  # fmt: skip
