"""``xdrs simulate`` end to end on small trace folders written by the tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from xdrs.cli import main


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    day = tmp_path / "traces" / "planetlab" / "d1"
    day.mkdir(parents=True)
    for i, (u0, u1) in enumerate([(20, 30), (10, 10), (50, 40), (5, 0)]):
        (day / f"vm{i}").write_text("\n".join([str(u0), str(u1)] * 6) + "\n")
    return tmp_path / "traces"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["simulate", "--quiet", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_batch_table_json_and_report(
    traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "m.json"
    code, out, _ = run(
        ["--traces-dir", str(traces), "--trace", "planetlab:all", "--policy", "npa",
         "--policy", "lr-mmt-1.2", "--hosts", "4", "--out", str(out_json),
         "--report", str(tmp_path / "rep")],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert "npa" in out and "lr-mmt-1.2" in out and "energy kWh" in out
    doc = json.loads(out_json.read_text())
    assert doc["format"] == "xdrs-sim-metrics/1"
    runs = {r["policy"]: r for r in doc["runs"]}
    # NPA: 4 hosts, 2 x G4 + 2 x G5 at full power over 11 intervals of 300 s
    assert runs["npa"]["energy_kwh"] == pytest.approx(2 * (117 + 135) * 3300 / 3.6e6)
    assert runs["lr-mmt-1.2"]["vms"] == 4
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        "active_hosts.png", "energy.png", "policies.png", "sla_violation.png", "tradeoff.png",
    ]  # fmt: skip


def test_csv_out(traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv = tmp_path / "m.csv"
    code, _, _ = run(
        ["--traces-dir", str(traces), "--trace", "planetlab:d1", "--policy", "dvfs",
         "--hosts", "4", "--out", str(out_csv)], capsys,
    )  # fmt: skip
    assert code == 0
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("trace,policy,") and len(lines) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trace", "planetlab:nope", "--policy", "npa"], "not a directory"),
        (["--trace", "planetlab:d1", "--policy", "lr-zz-1"], "policy 'lr-zz-1'"),
        (["--trace", "planetlab:d1", "--policy", "npa", "--hosts", "0"], "--hosts"),
        (["--trace", "planetlab:d1", "--policy", "lr-mmt-1.2", "--maintenance", "x@y"],
         "--maintenance"),
        (["--trace", "planetlab:d1", "--policy", "dvfs", "--maintenance", "0@1"],
         "never migrates"),
    ],
    ids=["missing-day", "bad-policy", "no-hosts", "bad-maintenance", "no-migrations"],
)  # fmt: skip
def test_errors_exit_2(
    traces: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["--traces-dir", str(traces), "--hosts", "4", *extra], capsys)
    assert code == 2
    assert err.startswith("xdrs: error:") and message in err
    assert "Traceback" not in err


def test_malformed_trace_names_file_and_line(
    traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (traces / "planetlab" / "d1" / "vm2").write_text("1\n2\noops\n")
    out = tmp_path / "m.json"
    code, _, err = run(
        ["--traces-dir", str(traces), "--trace", "planetlab:d1", "--policy", "npa",
         "--out", str(out)], capsys,
    )  # fmt: skip
    assert code == 2 and "vm2:3: expected a CPU percentage, got 'oops'" in err
    assert not out.exists()


def test_report_without_matplotlib(
    traces: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails like when not installed
    code, out, err = run(
        ["--traces-dir", str(traces), "--trace", "planetlab:d1", "--policy", "npa",
         "--report", str(tmp_path / "rep")], capsys,
    )  # fmt: skip
    assert code == 2 and "pip install 'xdrs[sim]'" in err and out == ""
