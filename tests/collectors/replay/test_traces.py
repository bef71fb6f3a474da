"""Trace readers (collectors.replay.traces, shared by the replay collector and the simulator):
PlanetLab folders, generic CSV, the packaged day, and errors that name the file and line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay.traces import (
    PACKAGED_DAY,
    Trace,
    TraceError,
    first_hours,
    load_trace,
    read_csv,
    read_planetlab,
    traces_root,
)


def write_day(d: Path, files: dict[str, list[str]]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (d / name).write_text("\n".join(lines) + "\n")
    return d


def test_planetlab_sorted_and_ordered(tmp_path: Path) -> None:
    d = write_day(tmp_path / "day", {"b": ["10", "20"], "a": ["0", "99"], "c d": ["5", "5"]})
    tr = read_planetlab(d)
    assert tr.vm_names == ("a", "b", "c d")
    assert tr.cpu_pct.tolist() == [[0.0, 99.0], [10.0, 20.0], [5.0, 5.0]]
    assert tr.util.tolist() == [[0.0, 0.99], [0.1, 0.2], [0.05, 0.05]]
    assert tr.step_s == 300.0 and tr.n_steps == 2 and tr.name == str(d)
    tr2 = read_planetlab(d, ["c d", "a", "b"])
    assert tr2.vm_names == ("c d", "a", "b")
    assert np.array_equal(tr2.cpu_pct[1], tr.cpu_pct[0])


def test_planetlab_accepts_decimals_and_ignores_hidden_files_and_blank_lines(
    tmp_path: Path,
) -> None:
    d = write_day(tmp_path / "day", {"a": ["12.5", "", " 7 ", "100.0"], "b": ["0", "1", "2"]})
    (d / ".DS_Store").write_bytes(b"\x00\x01Bud1\xff")  # not a VM, not even text
    (d / ".a.swp").write_text("junk\n")
    (d / "sub").mkdir()  # folders are not VMs either
    tr = read_planetlab(d)
    assert tr.vm_names == ("a", "b")
    assert tr.cpu_pct.tolist() == [[12.5, 7.0, 100.0], [0.0, 1.0, 2.0]]


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"a": ["1", "x2"]}, r"day/a:2: expected a CPU percentage, got 'x2'"),
        ({"a": ["1", "101"]}, r"day/a:2: CPU percentage 101 is outside 0..100"),
        ({"a": ["-1"]}, r"day/a:1: CPU percentage -1 is outside 0..100"),
        ({"a": ["nan"]}, r"day/a:1: CPU percentage nan is outside 0..100"),
        ({"a": ["1", "2"], "b": ["1"]}, r"day/b: 1 samples, expected 2 like a"),
        ({"a": [""]}, r"day/a: no samples"),
    ],
    ids=["not-a-number", "over-100", "negative", "nan", "short-file", "empty-file"],
)
def test_planetlab_errors_name_file_and_line(
    tmp_path: Path, files: dict[str, list[str]], match: str
) -> None:
    d = write_day(tmp_path / "day", files)
    with pytest.raises(TraceError, match=match):
        read_planetlab(d)


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    d = tmp_path / "day"
    d.mkdir()
    (d / "a").write_bytes(b"1\n2\xff\n")
    with pytest.raises(TraceError, match=r"day/a:2: expected a CPU percentage, got '2\ufffd'"):
        read_planetlab(d)


def test_planetlab_missing_and_order_mismatch(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="nope is not a directory"):
        read_planetlab(tmp_path / "nope")
    with pytest.raises(TraceError, match="no trace files"):
        read_planetlab(write_day(tmp_path / "empty", {".hidden": ["1"]}))
    d = write_day(tmp_path / "day", {"a": ["1"], "b": ["2"]})
    with pytest.raises(TraceError, match=r"does not match the folder \(missing files \['zzz'\]"):
        read_planetlab(d, ["a", "zzz"])


def test_csv_grid_carry_forward_and_memory(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        "timestamp,vm_id,cpu_pct,mem\n"
        "0,vm1,10,512\n0,vm2,50\n"
        "300,vm1,20.5,1024\n"
        "600,vm1,30\n600,vm2,70\n"
    )
    tr = read_csv(p)
    assert tr.vm_names == ("vm1", "vm2") and tr.name == str(p)
    assert tr.step_s == 300.0
    assert tr.cpu_pct.tolist() == [[10.0, 20.5, 30.0], [50.0, 50.0, 70.0]]
    assert tr.mem_mb is not None and tr.mem_mb.tolist() == [1024.0, 0.0]


def test_csv_iso_timestamps(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("2024-01-01T00:00:00,a,1\n2024-01-01T00:05:00,a,2\n")
    tr = read_csv(p)
    assert tr.step_s == 300.0 and tr.util.tolist() == [[0.01, 0.02]]
    assert tr.mem_mb is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0,a\n", r"t.csv:1: expected timestamp,vm_id,cpu_pct"),
        ("0,a,1\nyesterday,a,2\n", r"t.csv:2: bad timestamp"),
        ("inf,a,1\n", r"t.csv:1: bad timestamp"),
        ("nan,a,1\n", r"t.csv:1: bad timestamp 'nan'"),
        ("0,a,lots\n", r"t.csv:1: cpu_pct must be a number, got 'lots'"),
        ("0,a,-1\n", r"t.csv:1: cpu_pct must be a finite number in 0..inf, got -1"),
        ("0,a,nan\n", r"t.csv:1: cpu_pct must be a finite number in 0..inf, got nan"),
        ("0,a,5,1e300\n", r"t.csv:1: mem_mb must be a finite number in 0..1e\+09"),
        ("0,a,1\n1e300,a,1\n", r"t.csv:2: bad timestamp '1e300'"),
        ("0,a,1\n1e10,a,1\n", r"t.csv: samples from 0 s to 10,000,000,000 s span 115,740.7 days"),
        ("timestamp,vm,cpu_mhz\n", r"t.csv:1: cpu_mhz needs a vm_mhz column"),
        ("timestamp,vm,cpu\n", r"t.csv:1: unknown column 'cpu'"),
        ("timestamp,cpu_pct\n", r"t.csv:1: header .* needs timestamp, vm_id and cpu_pct"),
        ("timestamp,vm,cpu_mhz,vm_mhz\n0,a,5,0\n", r"t.csv:2: cpu_mhz needs a vm_mhz > 0"),
        ("0,,5\n", r"t.csv:1: empty vm_id"),
        ("timestamp,vm_id,cpu_pct\n", r"t.csv: no samples"),
    ],
    ids=[
        "columns",
        "timestamp",
        "inf-time",
        "nan-time",
        "number",
        "negative",
        "nan-cpu",
        "memory",
        "huge-time",
        "span",
        "mhz-no-size",
        "unknown-column",
        "no-vm-column",
        "zero-size",
        "vm-id",
        "empty",
    ],
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
    repo = Path(__file__).resolve().parents[3]
    assert traces_root() == repo.parent / "shared" / "traces"


def test_load_trace_specs(tmp_path: Path) -> None:
    write_day(tmp_path / "planetlab" / "d1", {"x": ["1"], "y": ["2"]})
    order = tmp_path / "order"
    order.mkdir()
    (order / "d1.txt").write_text("y\nx\n")
    assert load_trace("planetlab:d1", tmp_path).vm_names == ("x", "y")
    assert load_trace("planetlab:d1", tmp_path, order).vm_names == ("y", "x")
    assert load_trace(str(tmp_path / "planetlab" / "d1")).vm_names == ("x", "y")
    (tmp_path / "t.csv").write_text("0,a,1\n")
    assert load_trace(f"csv:{tmp_path / 't.csv'}").vm_names == ("a",)
    assert load_trace(str(tmp_path / "t.csv")).cpu_pct.tolist() == [[1.0]]
    with pytest.raises(TraceError, match="expected planetlab:<day>, csv:<file>"):
        load_trace("gwa:x", tmp_path)
    with pytest.raises(TraceError, match="d2 is not a directory"):
        load_trace("planetlab:d2", tmp_path)
    with pytest.raises(TraceError, match="'planetlab:d2': no trace directory given"):
        load_trace("planetlab:d2")


def test_packaged_day_when_the_folder_is_absent(tmp_path: Path) -> None:
    day = load_trace(f"planetlab:{PACKAGED_DAY}")
    assert day.cpu_pct.shape == (1052, 288) and day.name == f"packaged:{PACKAGED_DAY}"
    assert day.cpu_pct.min() >= 0 and day.cpu_pct.max() <= 100
    assert np.array_equal(day.cpu_pct, day.cpu_pct.round())  # the published integers
    # a trace directory without that day falls back too, in the given VM order
    order = tmp_path / "order"
    order.mkdir()
    (order / f"{PACKAGED_DAY}.txt").write_text("\n".join(reversed(day.vm_names)))
    back = load_trace(f"planetlab:{PACKAGED_DAY}", tmp_path, order)
    assert back.vm_names == day.vm_names[::-1]
    assert np.array_equal(back.cpu_pct, day.cpu_pct[::-1])
    (order / f"{PACKAGED_DAY}.txt").write_text("nobody\n")
    with pytest.raises(TraceError, match=f"packaged day {PACKAGED_DAY}: VM order file"):
        load_trace(f"planetlab:{PACKAGED_DAY}", tmp_path, order)


def test_trace_shape_is_checked() -> None:
    with pytest.raises(TraceError, match=r"shape \(2, 3\) for 1 VM names"):
        Trace("t", ("a",), np.zeros((2, 3)))
    with pytest.raises(TraceError, match=r"step 0\.0 s"):
        Trace("t", ("a",), np.zeros((1, 3)), 0.0)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=64))
def test_any_planetlab_file_loads_or_names_itself(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "day"
        d.mkdir()
        (d / "vm").write_bytes(body)
        try:
            tr = read_planetlab(d)
        except TraceError as e:
            assert str(d / "vm") in str(e)
        else:
            assert tr.cpu_pct.shape[0] == 1 and tr.cpu_pct.shape[1] > 0
            assert ((tr.cpu_pct >= 0) & (tr.cpu_pct <= 100)).all()


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="0123456789.,-:eTnaif \n", max_size=60))
def test_any_csv_loads_or_names_itself(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "t.csv"
        p.write_text(text)
        try:
            tr = read_csv(p)
        except TraceError as e:
            assert str(e).startswith(str(p))
        else:
            assert np.isfinite(tr.cpu_pct).all() and tr.step_s > 0
            assert ((tr.cpu_pct >= 0) & (tr.cpu_pct <= 100)).all()


def test_first_hours() -> None:
    tr = Trace("t", ("a",), np.arange(24.0)[None, :], present=np.ones((1, 24), bool))
    cut = first_hours(tr, 1)
    assert cut.cpu_pct.tolist() == [list(range(12))]
    assert cut.present is not None and cut.present.shape == (1, 12)
    assert first_hours(tr, 0.01).n_steps == 2 and first_hours(tr, 100).n_steps == 24
