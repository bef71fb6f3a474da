"""The ``xdrs plan`` command, end to end on small files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from placement import BalanceArgs, metrics, run
from tests.xdrs.snapshots import doc, dump
from xdrs.cli import main
from xdrs.snapshot import read_snapshot, replay_actions


def _bad_size(d: dict[str, Any]) -> dict[str, Any]:
    d["vms"][2]["memory_mb"] = -5
    return d


@pytest.mark.parametrize("strategy", ["balance", "consolidate", "evacuate"])
def test_plan_writes_replayable_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], strategy: str
) -> None:
    snap = dump(tmp_path / "in.json", doc())
    out = tmp_path / "actions.json"
    assert main(["plan", "--in", str(snap), "--strategy", strategy, "--out", str(out)]) == 0
    state = read_snapshot(snap)
    final = replay_actions(state, orjson.loads(out.read_bytes()), check_capacity=True)
    expected = run(strategy, state, seed=0).final_placement(state.placement)
    np.testing.assert_array_equal(final, expected)
    assert metrics(state, final).capacity_violations == 0
    text = capsys.readouterr().out
    assert "capacity_violations" in text and "moves by reason" in text


def test_balance_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = dump(tmp_path / "in.json", doc())
    assert main(["plan", "--in", str(snap), "--strategy", "balance", "--threshold", "5"]) == 0
    state = read_snapshot(snap)
    plan = run("balance", state, BalanceArgs(threshold=5))
    lines = capsys.readouterr().out.splitlines()
    row = {ln.split()[0]: ln.split()[1:] for ln in lines if 2 <= len(ln.split()) <= 3}
    after = metrics(state, plan.final_placement(state.placement))
    assert row["moves"] == [str(plan.n_moves)]
    assert row["hosts_empty"] == ["2", str(after.hosts_empty)]
    assert row["capacity_violations"] == ["0", "0"]
    assert "unresolved VMs: none" in lines


def test_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = doc()
    d["hosts"][3]["maintenance"] = True
    d["rules"] = [{"name": "apart", "type": "anti_affinity", "vms": ["v0", "v1"]}]
    snap = dump(tmp_path / "in.json", d)
    argv = ["plan", "--in", str(snap), "--strategy", "evacuate", "--explain", "v0"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    block = text[text.index("explain v0") :].splitlines()
    assert block[0].startswith("explain v0: on h0 after the plan; moves: none")
    assert block[1:] == [
        f"  {'h0':<24} current host",
        f"  {'h1':<24} anti-affinity",
        f"  {'h2':<24} ok",
        f"  {'h3':<24} host in maintenance",
    ]


def test_generate_and_save_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved, out = tmp_path / "snap.json", tmp_path / "actions.json"
    argv = [
        "plan",
        "--generate",
        "20/150",
        "--strategy",
        "balance",
        "--threshold",
        "5",
        "--save-snapshot",
        str(saved),
        "--out",
        str(out),
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    state = read_snapshot(saved)
    assert (state.n_hosts, state.n_vms) == (20, 150)
    final = replay_actions(state, orjson.loads(out.read_bytes()), check_capacity=True)
    assert metrics(state, final).capacity_violations == 0
    assert "on 20 hosts, 150 VMs" in capsys.readouterr().out


def _snapshot_args(tmp_path: Path, d: object) -> list[str]:
    return ["--in", str(dump(tmp_path / "in.json", d)), "--strategy", "balance"]


ERRORS: list[tuple[str, Any, list[str], str]] = [
    (
        "negative-size",
        _bad_size(doc()),
        [],
        "vms[2] (uuid 'v2').memory_mb: expected a number in 0..67108864 (64 TiB in MiB), got -5",
    ),
    ("wrong-format", doc(format="other/1"), [], "format: expected 'drs-peer-cluster/1'"),
    ("invalid-json", b'{"format": ', [], "in.json: invalid JSON at line 1 column"),
    ("threshold-range", doc(), ["--threshold", "9"], "--threshold: expected an integer in 1..5"),
    (
        "max-moves-negative",
        doc(),
        ["--max-moves", "-1"],
        "--max-moves: expected an integer >= 0, got '-1'",
    ),
    ("link-zero", doc(), ["--link-gbps", "0"], "--link-gbps: expected a finite number > 0"),
    ("link-nan", doc(), ["--link-gbps", "nan"], "--link-gbps: expected a finite number > 0"),
    ("link-inf", doc(), ["--link-gbps", "inf"], "--link-gbps: expected a finite number > 0"),
    ("link-tiny", doc(), ["--link-gbps", "1e-300"], "--link-gbps: expected 0.001..10000"),
    ("seed-negative", doc(), ["--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
    ("per-host-zero", doc(), ["--per-host", "0"], "--per-host: expected an integer >= 1"),
    ("explain-unknown", doc(), ["--explain", "nope"], "--explain: unknown VM uuid 'nope'"),
]


@pytest.mark.parametrize(
    ("d", "extra", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], d: Any, extra: list[str], message: str
) -> None:
    if isinstance(d, bytes):
        (tmp_path / "in.json").write_bytes(d)
        args = ["--in", str(tmp_path / "in.json"), "--strategy", "balance"]
    else:
        args = _snapshot_args(tmp_path, d)
    out = tmp_path / "actions.json"
    assert main(["plan", *args, *extra, "--out", str(out)]) == 2
    _assert_one_line_error(capsys, message)
    assert not out.exists()


USAGE: list[tuple[str, list[str], str]] = [
    ("no-command", [], "the following arguments are required: command"),
    (
        "no-input",
        ["plan", "--strategy", "balance"],
        "one of the arguments --in --generate is required",
    ),
    (
        "bad-strategy",
        ["plan", "--generate", "4/8", "--strategy", "magic"],
        "--strategy: invalid choice",
    ),
    (
        "bad-generate",
        ["plan", "--generate", "4x8", "--strategy", "balance"],
        "--generate: expected HOSTS/VMS",
    ),
    (
        "threshold-not-balance",
        ["plan", "--generate", "4/8", "--strategy", "consolidate", "--threshold", "2"],
        "--threshold: only applies to --strategy balance",
    ),
    (
        "max-moves-evacuate",
        ["plan", "--generate", "4/8", "--strategy", "evacuate", "--max-moves", "2"],
        "--max-moves: does not apply",
    ),
    (
        "missing-file",
        ["plan", "--in", "/nonexistent/in.json", "--strategy", "balance"],
        "/nonexistent/in.json: No such file or directory",
    ),
]


@pytest.mark.parametrize(("argv", "message"), [u[1:] for u in USAGE], ids=[u[0] for u in USAGE])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    _assert_one_line_error(capsys, message)


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing-dir" / "actions.json"
    assert main(["plan", *_snapshot_args(tmp_path, doc()), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdrs: error: ") and "No such file or directory" in err
    assert not out.parent.exists()


def _assert_one_line_error(capsys: pytest.CaptureFixture[str], message: str) -> None:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("xdrs: error: ")
    assert message in captured.err
    assert captured.out == ""


def test_per_cluster_limits_the_waves(tmp_path: Path) -> None:
    def max_wave_size(extra: list[str]) -> int:
        out = tmp_path / f"a{len(extra)}.json"
        argv = ["plan", "--generate", "40/400", "--strategy", "balance", "--threshold", "5"]
        assert main([*argv, "--out", str(out), *extra]) == 0
        waves = [a["wave"] for a in orjson.loads(out.read_bytes()) if a["action"] == "migrate"]
        return max(waves.count(w) for w in set(waves))

    assert max_wave_size([]) > 3
    assert max_wave_size(["--per-cluster", "3"]) == 3


def test_nothing_is_written_when_one_output_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = tmp_path / "snap.json"
    out = tmp_path / "missing-dir" / "actions.json"
    argv = ["plan", "--generate", "6/30", "--strategy", "balance"]
    assert main([*argv, "--save-snapshot", str(snap), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"xdrs: error: {out}: No such file or directory\n"  # the user's file
    assert not snap.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left
    assert main([*argv, "--save-snapshot", str(snap), "--out", str(tmp_path)]) == 2
    assert f"xdrs: error: {tmp_path}: Is a directory" in capsys.readouterr().err
    assert not snap.exists()
    assert main([*argv, "--save-snapshot", str(snap), "--out", str(tmp_path / "a.json")]) == 0
    assert read_snapshot(snap).n_vms == 30
    assert (tmp_path / "a.json").exists()
