"""Trace file layouts: generic CSV with sizes, Bitbrains GWA-T-12, Azure vm_cpu_readings.

The public data is not shipped; each test writes a small file in the published layout."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay.formats import MAX_FIELD, FormatError, read_azure, read_bitbrains
from collectors.replay.traces import TraceError, load_trace, read_csv

GWA_HEADER = (
    "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\t"
    "CPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\t"
    "Disk read throughput [KB/s];\tDisk write throughput [KB/s];\t"
    "Network received throughput [KB/s];\tNetwork transmitted throughput [KB/s]"
)


def gwa_row(ts: int, cores: int, cap: float, pct: float, mem_kb: int) -> str:
    use = cap * pct / 100
    return f"{ts};\t{cores};\t{cap};\t{use};\t{pct};\t{mem_kb};\t{mem_kb // 2};\t0;\t1.5;\t0;\t0"


def test_csv_with_named_columns_and_sizes(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        "ts,vm,cpu_mhz,vm_mhz,vcpus,mem_mb\n"
        "1700000000,web,1300,5200,2,4096\n"
        "1700000060,web,2600,5200,2,4096\n"
        "1700000000,db,10400,10400,4,16384\n"
        "1700000300,db,6000,5000,4,16384\n"  # above 100 %: clipped, counted
    )
    tr = read_csv(p)
    assert tr.vm_names == ("web", "db") and tr.step_s == 300.0 and not tr.paper
    assert tr.cpu_pct.tolist() == [[37.5, 37.5], [100.0, 100.0]]
    assert tr.vcpus is not None and tr.vcpus.tolist() == [2.0, 4.0]
    assert tr.vm_mhz is not None and tr.vm_mhz.tolist() == [5200.0, 10400.0]
    assert tr.mem_mb is not None and tr.mem_mb.tolist() == [4096.0, 16384.0]
    assert tr.resampling is not None
    assert (tr.resampling.merged, tr.resampling.filled, tr.resampling.clipped) == (1, 1, 1)


def test_csv_header_in_any_order(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("VM_ID,CPU_PCT,Timestamp\nx,10,2024-01-01T00:00:00\nx,30,2024-01-01T00:10:00\n")
    tr = read_csv(p)
    assert tr.vm_names == ("x",) and tr.cpu_pct.tolist() == [[10.0, 10.0, 30.0]]


def test_csv_interval_and_gap_from_load_trace(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("0,a,10\n60,a,20\n600,a,30\n")
    tr = load_trace(f"csv:{p}", interval=60, max_gap=120)
    assert tr.step_s == 60 and tr.n_steps == 11
    assert tr.present is not None and tr.present[0].tolist() == [True] * 4 + [False] * 6 + [True]


def test_field_over_the_limit_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("0,a,1\n300," + "v" * (MAX_FIELD + 1) + ",5\n")
    with pytest.raises(TraceError, match=r"t.csv:2: a field longer than 131,072 characters"):
        read_csv(p)


def write_gwa(d: Path, vms: dict[str, list[str]]) -> Path:
    d.mkdir(parents=True)
    for name, rows in vms.items():
        (d / f"{name}.csv").write_text("\n".join([GWA_HEADER, *rows]) + "\n")
    return d


def test_bitbrains_folder(tmp_path: Path) -> None:
    d = write_gwa(
        tmp_path / "fastStorage",
        {
            "1": [
                gwa_row(1376314846, 4, 11703.9, 10.5, 8388608),
                gwa_row(1376315146, 4, 11703.9, 104.3, 8388608),
            ],
            "2": [gwa_row(1376314846, 1, 2925.9, 0.0, 1048576)],
        },
    )
    (d / "README").write_text("not a VM\n")
    tr = load_trace(f"bitbrains:{d}")
    assert tr.vm_names == ("1", "2") and not tr.paper
    assert tr.cpu_pct.tolist() == [[10.5, 100.0], [0.0, 0.0]]  # 104.3 % clipped; VM 2 idle
    assert tr.present is not None and tr.present.all()  # VM 2 carried forward one slot
    assert tr.vcpus is not None and tr.vcpus.tolist() == [4.0, 1.0]
    assert tr.vm_mhz is not None and tr.vm_mhz.tolist() == [11703.9, 2925.9]
    assert tr.mem_mb is not None and tr.mem_mb.tolist() == [8192.0, 1024.0]
    assert tr.resampling is not None and tr.resampling.clipped == 1


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("1;2;3", r"1.csv:2: expected 11 ';'-separated fields, got 3"),
        (gwa_row(1376314846, 4, 100.0, -1.0, 8), r"1.csv:2: CPU usage \[%\] must be a finite"),
        ("nan" + gwa_row(0, 4, 100.0, 1.0, 8)[1:], r"1.csv:2: bad timestamp 'nan'"),
    ],
    ids=["fields", "negative", "nan-time"],
)
def test_bitbrains_errors(tmp_path: Path, row: str, match: str) -> None:
    d = write_gwa(tmp_path / "gwa", {"1": [row]})
    with pytest.raises(FormatError, match=match):
        read_bitbrains(d)


def test_bitbrains_needs_a_folder_of_csv(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a directory of Bitbrains"):
        read_bitbrains(tmp_path / "nope")
    with pytest.raises(FormatError, match=r"no \.csv files"):
        read_bitbrains(tmp_path)


def test_azure_readings_gzip(tmp_path: Path) -> None:
    p = tmp_path / "vm_cpu_readings-file-1-of-195.csv.gz"
    rows = [
        "0,yNf/R3X8fyRkPFmNjpTaVHzTTCqIqpEVRnv3NeXBpw3WIbiyE6M3fjMTzB9LPCm+,6.5,17.9,10.2",
        "300,yNf/R3X8fyRkPFmNjpTaVHzTTCqIqpEVRnv3NeXBpw3WIbiyE6M3fjMTzB9LPCm+,5.1,12.0,8.0",
        "300,Bo1iDMk4uDsGoPrmYJUHaDHB/4Mr34u3B5Hy3O8axkV0XlbQAU3U7nNy/ZlOdKUs,0,0,0",
    ]
    with gzip.open(p, "wt") as f:
        f.write("\n".join(rows) + "\n")
    tr = load_trace(f"azure:{p}")
    assert len(tr.vm_names) == 2 and tr.cpu_pct.tolist() == [[10.2, 8.0], [0.0, 0.0]]
    assert tr.present is not None and tr.present.tolist() == [[True, True], [False, True]]
    assert tr.vcpus is None and tr.mem_mb is None


def test_azure_errors(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("0,vm,1,2\n")
    with pytest.raises(FormatError, match=r"a.csv:1: expected timestamp,vm_id,min_cpu"):
        read_azure(p)
    p.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(FormatError, match="cannot read"):
        read_azure(tmp_path / "missing.csv.gz")


@settings(max_examples=200, deadline=None)
@given(
    header=st.sampled_from(["", "timestamp,vm_id,cpu_pct\n", "ts,vm,cpu_mhz,vm_mhz,vcpus\n"]),
    text=st.text(alphabet='0123456789.,-:eTnaif \n"', max_size=80),
)
def test_any_table_loads_or_names_itself(header: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "t.csv"
        p.write_text(header + text)
        try:
            tr = read_csv(p)
        except TraceError as e:
            assert str(e).startswith(str(p))
        else:
            assert np.isfinite(tr.cpu_pct).all() and tr.step_s > 0
            assert ((tr.cpu_pct >= 0) & (tr.cpu_pct <= 100)).all()
            assert tr.resampling is not None and tr.resampling.vms == len(tr.vm_names)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=120))
def test_any_bitbrains_file_loads_or_names_itself(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "gwa"
        d.mkdir()
        (d / "7.csv").write_bytes(GWA_HEADER.encode() + b"\n" + body)
        try:
            s = read_bitbrains(d)
        except FormatError as e:
            assert str(e).startswith(str(d / "7.csv")) or str(e) == f"{d}: no samples"
        else:
            assert ((s.cpu_pct >= 0) & (s.cpu_pct <= 100)).all() and np.isfinite(s.ts).all()


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="0123456789.,-eTnaif/+ab \n", max_size=80))
def test_any_azure_file_loads_or_names_itself(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "vm_cpu_readings.csv"
        p.write_text(text)
        try:
            s = read_azure(p)
        except FormatError as e:
            assert str(e).startswith(str(p))
        else:
            assert ((s.cpu_pct >= 0) & (s.cpu_pct <= 100)).all() and np.isfinite(s.ts).all()
