"""Trace readers: PlanetLab folders, generic CSV, and the errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xdrs.sim.traces import TraceError, load_trace, read_csv, read_planetlab, traces_root


def write_day(d: Path, files: dict[str, list[str]]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (d / name).write_text("\n".join(lines) + "\n")
    return d


def test_planetlab_sorted_and_ordered(tmp_path: Path) -> None:
    d = write_day(tmp_path / "day", {"b": ["10", "20"], "a": ["0", "99"], "c d": ["5", "5"]})
    tr = read_planetlab(d)
    assert tr.names == ("a", "b", "c d")
    assert tr.util.tolist() == [[0.0, 0.99], [0.1, 0.2], [0.05, 0.05]]
    assert tr.interval == 300.0
    tr2 = read_planetlab(d, ["c d", "a", "b"])
    assert tr2.names == ("c d", "a", "b")
    assert np.array_equal(tr2.util[1], tr.util[0])


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"a": ["1", "x2"]}, r"a:2: expected an integer CPU %, got 'x2'"),
        ({"a": ["1", "101"]}, r"a:2: CPU % must be in 0..100, got 101"),
        ({"a": ["1", "2"], "b": ["1"]}, r"b: 1 samples, expected 2"),
        ({"a": ["-1"]}, r"a:1: CPU % must be in 0..100"),
    ],
    ids=["not-int", "over-100", "short-file", "negative"],
)
def test_planetlab_errors_name_file_and_line(
    tmp_path: Path, files: dict[str, list[str]], match: str
) -> None:
    d = write_day(tmp_path / "day", files)
    with pytest.raises(TraceError, match=match):
        read_planetlab(d)


def test_planetlab_missing_and_order_mismatch(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="not a directory"):
        read_planetlab(tmp_path / "nope")
    d = write_day(tmp_path / "day", {"a": ["1"], "b": ["2"]})
    with pytest.raises(TraceError, match="does not match"):
        read_planetlab(d, ["a", "zzz"])


def test_csv_grid_carry_forward_and_memory(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        "timestamp,vm_id,cpu_pct,mem\n"
        "0,vm1,10,512\n0,vm2,50\n"
        "300,vm1,20,1024\n"
        "600,vm1,30\n600,vm2,70\n"
    )
    tr = read_csv(p)
    assert tr.names == ("vm1", "vm2")
    assert tr.interval == 300.0
    assert tr.util.tolist() == [[0.1, 0.2, 0.3], [0.5, 0.5, 0.7]]
    assert tr.mem_mb is not None and tr.mem_mb.tolist() == [1024.0, 0.0]


def test_csv_iso_timestamps(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("2024-01-01T00:00:00,a,1\n2024-01-01T00:05:00,a,2\n")
    tr = read_csv(p)
    assert tr.interval == 300.0 and tr.util.tolist() == [[0.01, 0.02]]
    assert tr.mem_mb is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0,a\n", r"t.csv:1: expected timestamp,vm_id,cpu_pct"),
        ("0,a,1\nyesterday,a,2\n", r"t.csv:2: bad timestamp"),
        ("0,a,lots\n", r"t.csv:1: cpu_pct/mem_mb must be numbers"),
        ("0,a,150\n", r"t.csv:1: cpu_pct must be in 0..100"),
        ("0,,5\n", r"t.csv:1: empty vm_id"),
        ("timestamp,vm_id,cpu_pct\n", r"t.csv: no samples"),
    ],
    ids=["columns", "timestamp", "number", "range", "vm-id", "empty"],
)
def test_csv_errors(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(TraceError, match=match):
        read_csv(p)


def test_traces_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDRS_TRACES", str(tmp_path / "env"))
    assert traces_root(tmp_path / "flag") == tmp_path / "flag"
    assert traces_root() == tmp_path / "env"
    monkeypatch.delenv("XDRS_TRACES")
    repo = Path(__file__).resolve().parents[2]
    assert traces_root() == repo.parent / "shared" / "traces"


def test_load_trace_specs(tmp_path: Path) -> None:
    write_day(tmp_path / "planetlab" / "d1", {"x": ["1"], "y": ["2"]})
    order = tmp_path / "order"
    order.mkdir()
    (order / "d1.txt").write_text("y\nx\n")
    assert load_trace("planetlab:d1", tmp_path).names == ("x", "y")
    assert load_trace("planetlab:d1", tmp_path, order).names == ("y", "x")
    assert load_trace(str(tmp_path / "planetlab" / "d1"), tmp_path).names == ("x", "y")
    with pytest.raises(TraceError, match="expected planetlab:<day>"):
        load_trace("weird", tmp_path)
