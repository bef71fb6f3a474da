"""``xdrs simulate`` on bad input: one ``xdrs: error:`` line and exit 2, never a traceback
and never a silent run (each case was a traceback or silently accepted before)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdrs.cli import main
from xdrs.snapshot import write_snapshot
from xdrs.synth import synth_cluster


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ok.csv").write_text("0,a,0\n300,a,0\n0,b,5\n300,b,5\n")
    (tmp_path / "nan.csv").write_text("timestamp,vm_id,cpu_pct\nnan,a,5\n")
    (tmp_path / "inf.csv").write_text("timestamp,vm_id,cpu_pct\n0,a,5\ninf,a,5\n")
    (tmp_path / "far.csv").write_text("0,a,5\n1e12,a,5\n")
    (tmp_path / "big.csv").write_text("0,a,1\n0," + "x" * 140_000 + ",5\n")
    snap = tmp_path / "snap.json"
    write_snapshot(synth_cluster(4, 10, seed=3), snap)
    doc = json.loads(snap.read_text())
    doc["hosts"].append(dict(doc["hosts"][0], uuid="h0", hostname="h0", vcpus=0))
    (tmp_path / "snap0.json").write_text(json.dumps(doc))
    return tmp_path


CASES = [
    (["--trace", "nan.csv"], "nan.csv:2: bad timestamp 'nan'"),
    (["--trace", "inf.csv"], "inf.csv:3: bad timestamp 'inf'"),
    (["--trace", "far.csv"], "far.csv: samples from 0 s to 1,000,000,000,000 s span"),
    (["--trace", "big.csv"], "big.csv:2: a field longer than 131,072 characters"),
    (["--trace", "ok.csv", "--scale-demand", "inf"], "--scale-demand: expected a finite"),
    (["--trace", "ok.csv", "--hosts", "100000000"], "--hosts: expected an integer in 1..1000000"),
    (["--trace", "ok.csv", "--hosts", "999999", "--add-hosts", "2"], "makes 1,000,001 hosts"),
    (["--snapshot", "snap.json", "--hosts", "3"], "--snapshot gives the hosts"),
    (["--snapshot", "snap.json", "--hours", "nan"], "--hours: expected a finite number > 0"),
    (["--snapshot", "snap.json", "--hours", "inf"], "--hours: expected a finite number > 0"),
    (["--snapshot", "snap.json", "--hours", "1e6"], "--hours: expected a finite number > 0"),
    (["--snapshot", "snap.json", "--hours", "0"], "--hours: expected a finite number > 0"),
    (["--snapshot", "snap.json", "--hours", "-1"], "--hours: expected a finite number > 0"),
    (["--snapshot", "snap0.json", "--hours", "1"], "snapshot: host 'h0' has no vCPUs"),
    (["--trace", "ok.csv", "--maintenance", "0-3@nan"], "--maintenance: expected HOSTS@HOUR"),
    (["--trace", "ok.csv", "--policy", "thr-mmt-inf"], "utilisation threshold in (0, 1]"),
    (["--trace", "ok.csv", "--policy", "lr-mmt-nan"], "a finite parameter > 0"),
    (["--trace", "ok.csv", "--interval", "0"], "--interval: expected a finite number >= 1"),
    (["--trace", "ok.csv", "--max-gap", "-5"], "--max-gap: expected a finite number >= 0"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_one_error_line_and_exit_2(
    files: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    policy = [] if "--policy" in args else ["--policy", "lr-mmt-1.2"]
    hosts = ["--hosts", "4"] if "--trace" in args and "--hosts" not in args else []
    code = main(["simulate", "--quiet", *hosts, *policy, *args])
    out, err = capsys.readouterr()
    assert code == 2, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xdrs: error: "), err
    assert message in lines[0]


def test_idle_vms_are_idle_not_gone_on_an_operator_trace(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    code = main(["simulate", "--quiet", "--trace", str(files / "ok.csv"), "--policy", "npa",
                 "--hosts", "2", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert "ok.csv: 2 VMs, 4 samples onto 2 slots of 300 s" in err
    doc = json.loads(out.read_text())
    assert doc["runs"][0]["vms"] == 2
    rep = doc["resampling"][str(files / "ok.csv")]
    assert (rep["vms"], rep["samples"], rep["slots"], rep["absent"]) == (2, 4, 2, 0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    option=st.sampled_from(["--scale-demand", "--interval", "--max-gap", "--hosts"]),
    value=st.one_of(
        st.floats().map(repr), st.integers(-(10**12), 10**12).map(str), st.text(max_size=8)
    ),
)
def test_numeric_options_fuzzed(
    files: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", "--quiet", "--trace", str(files / "ok.csv"), "--policy", "npa",
                 "--hosts", "2", option, value])  # fmt: skip
    _, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert err.startswith(f"xdrs: error: {option}: ") and "Traceback" not in err
