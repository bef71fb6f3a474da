"""The data centre from a file: xdrs-datacenter/1 JSON or a drs-peer-cluster/1 snapshot."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay.traces import read_csv
from xdrs.cli import main
from xdrs.sim.datacenter import DatacenterError, read_datacenter
from xdrs.sim.policies import PolicyError
from xdrs.sim.run import simulate
from xdrs.sim.setup import PAPER_HOSTS, Datacenter, build_world, host_layout
from xdrs.snapshot import write_snapshot
from xdrs.synth import synth_cluster

SPEC = [[0, 50.0], [50, 150.0], [100, 250.0]]


def doc(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "format": "xdrs-datacenter/1",
        "hosts": [
            {"name": "small", "count": 2, "cores": 8, "core_mhz": 2000, "memory_mb": 32768,
             "power_w": [60 + 10 * i for i in range(11)]},
            {"name": "big", "count": 3, "cores": 32, "core_mhz": 2600, "memory_mb": 262144,
             "specpower": SPEC, "network_gbps": 25},
        ],
        "vms": [{"name": "m.large", "vcpus": 2, "mhz_per_vcpu": 2600, "memory_mb": 8192}],
    }  # fmt: skip
    d.update(over)
    return d


def write(tmp_path: Path, d: object) -> Path:
    p = tmp_path / "dc.json"
    p.write_text(json.dumps(d))
    return p


def write_yaml(tmp_path: Path, d: object, name: str = "dc.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


def test_host_types_counts_and_power(tmp_path: Path) -> None:
    dc = read_datacenter(write(tmp_path, doc()))
    assert dc.n_hosts == 5 and dc.host_counts == (2, 3) and dc.memory_aware
    assert host_layout(dc).tolist() == [0, 0, 1, 1, 1]
    big = dc.host_types[1]
    assert big.power == (50.0, 70.0, 90.0, 110.0, 130.0, 150.0, 170.0, 190.0, 210.0, 230.0, 250.0)
    assert big.bw == 25_000_000.0 and big.cores * big.core_mips == 83_200.0
    assert dc.vm_types[0].mips == 5200.0 and dc.vm_types[0].ram_mb == 8192.0
    # fewer or more hosts cut or repeat the pattern
    assert host_layout(Datacenter(7, dc.host_types, (2, 3))).tolist() == [0, 0, 1, 1, 1, 0, 0]


def test_real_memory_sizes_fit_a_described_data_centre(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    rows = [f"{t},db{i},{20 + 10 * i},8,20800,65536" for t in range(0, 3600, 300) for i in range(4)]
    csv.write_text("timestamp,vm_id,cpu_pct,vcpus,vm_mhz,mem_mb\n" + "\n".join(rows) + "\n")
    tr = read_csv(csv)
    with pytest.raises(PolicyError, match="no host can take it"):  # the paper's 4 GiB hosts
        simulate(tr, "lr-mmt-1.2")
    dc = read_datacenter(write(tmp_path, doc()))
    r = simulate(tr, "lr-mmt-1.2", dc)
    assert r.vms == 4 and r.hosts == 5 and r.energy_kwh > 0
    w = build_world(dc, tr)
    assert w.vm_ram.tolist() == [65536.0] * 4 and w.host_ram.max() == 262144.0
    # a 64 GiB VM fits only the three "big" hosts (the small ones have 32 GiB)
    assert 0 < r.mean_active_hosts <= 3


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"format": "x/1"}, r'expected "format": "xdrs-datacenter/1"'),
        ({"hosts": []}, r"\$\.hosts"),
        ({"hosts": [{**doc()["hosts"][0], "count": 0}]}, r"\$\.hosts\[0\]\.count"),
        ({"hosts": [{**doc()["hosts"][0], "cores": "8"}]}, r"\$\.hosts\[0\]\.cores"),
        ({"hosts": [{**doc()["hosts"][0], "core_mhz": -1}]}, r"\$\.hosts\[0\]\.core_mhz"),
        ({"hosts": [{**doc()["hosts"][0], "colour": "red"}]}, r"unknown field `colour`"),
        ({"hosts": [{**doc()["hosts"][0], "power_w": [1, 2]}]}, r"\$\.hosts\[0\]\.power_w"),
        ({"hosts": [{**doc()["hosts"][1], "power_w": [1] * 11}]}, r"one of power_w .*specpower"),
        ({"hosts": [{**doc()["hosts"][1], "specpower": [[0, 1], [50, 2]]}]}, r"from 0 to 100 %"),
        ({"hosts": [{**doc()["hosts"][0], "count": 600_000}] * 2}, r"1,200,000 hosts; at most"),
        ({"vms": [{"name": "v", "vcpus": 0, "mhz_per_vcpu": 1, "memory_mb": 1}]}, r"vcpus"),
    ],
    ids=["format", "no-hosts", "count", "type", "negative", "unknown", "short-curve",
         "two-curves", "spec-range", "too-many", "vm-vcpus"],
)  # fmt: skip
def test_errors_name_file_and_field(tmp_path: Path, over: dict[str, Any], match: str) -> None:
    with pytest.raises(DatacenterError, match=match) as e:
        read_datacenter(write(tmp_path, doc(**over)))
    assert str(e.value).startswith(str(tmp_path / "dc.json"))


def test_not_json(tmp_path: Path) -> None:
    p = tmp_path / "dc.json"
    p.write_text("{oops")
    with pytest.raises(DatacenterError, match="not JSON"):
        read_datacenter(p)
    with pytest.raises(DatacenterError, match="cannot read"):
        read_datacenter(tmp_path / "missing.json")


def test_hosts_of_a_snapshot(tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    write_snapshot(synth_cluster(4, 10, seed=3), snap)
    dc = read_datacenter(snap, core_mhz=2000)
    cores = [h["vcpus"] for h in json.loads(snap.read_text())["hosts"]]
    assert [t.cores for t in dc.host_types] == cores and dc.n_hosts == 4
    assert all(t.core_mips == 2000 and t.power == PAPER_HOSTS[1].power for t in dc.host_types)
    assert host_layout(dc).tolist() == [0, 1, 2, 3]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("0,a,50,65536\n300,a,60,65536\n600,a,70,65536\n")
    dc = write(tmp_path, doc())
    out = tmp_path / "m.json"
    code = main(["simulate", "--quiet", "--trace", str(csv), "--datacenter", str(dc),
                 "--policy", "lr-mmt-1.2", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["runs"][0]["hosts"] == 5
    code = main(["simulate", "--quiet", "--trace", str(csv), "--datacenter", str(dc),
                 "--hosts", "3", "--policy", "npa"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--hosts: --datacenter gives the host counts" in err


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**7), 10**7) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@pytest.mark.parametrize("writer", [write, write_yaml], ids=["json", "yaml"])
@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(["name", "count", "cores", "core_mhz", "memory_mb", "power_w",
                           "specpower", "network_gbps", "extra"]),
    value=JSON,
)  # fmt: skip
def test_any_host_field_loads_or_names_the_file(
    writer: Callable[[Path, object], Path], field: str, value: object
) -> None:
    d = doc()
    d["hosts"][0][field] = value
    with tempfile.TemporaryDirectory() as tmp:
        p = writer(Path(tmp), d)
        try:
            dc = read_datacenter(p)
        except DatacenterError as e:
            assert str(e).startswith(str(p))
        else:
            assert dc.n_hosts >= 1 and all(len(t.power) == 11 for t in dc.host_types)


# -- YAML -------------------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "datacenter.yaml"


def test_yaml_is_the_same_data_centre_as_json(tmp_path: Path) -> None:
    from_json = read_datacenter(write(tmp_path, doc()))
    assert read_datacenter(write_yaml(tmp_path, doc())) == from_json
    assert read_datacenter(write_yaml(tmp_path, doc(), "dc.YML")) == from_json


def test_the_example_file_loads() -> None:
    dc = read_datacenter(EXAMPLE)
    assert dc.n_hosts == 48 and dc.host_counts == (40, 8)
    assert [t.name for t in dc.host_types] == ["R640", "R630"]
    assert dc.host_types[0].power[0] == 55.0 and dc.host_types[0].power[-1] == 290.0
    assert [v.mips for v in dc.vm_types] == [4800.0, 9600.0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("format: xdrs-datacenter/1\nhosts: [\n", r"not YAML"),
        ("- 1\n- 2\n", r'expected "format"'),
        ("format: xdrs-datacenter/1\nhosts:\n  - &h {name: a}\n  - *h\n", r"aliases"),
        ("format: drs-peer-cluster/1\nhosts: []\n", r"snapshot is JSON"),
        (
            "format: xdrs-datacenter/1\nhosts:\n  - {name: a, count: 1, cores: 2, core_mhz: .nan,"
            " memory_mb: 1, power_w: [1,1,1,1,1,1,1,1,1,1,1]}\n",
            r"\$\.hosts\[0\]\.core_mhz",
        ),
        (
            "format: xdrs-datacenter/1\nhosts:\n  - {name: 2024-01-01, count: 1, cores: 2, "
            "core_mhz: 1, memory_mb: 1, power_w: [1,1,1,1,1,1,1,1,1,1,1]}\n",
            r"\$\.hosts\[0\]\.name",
        ),
        ("format: xdrs-datacenter/1\nhosts: " + "[" * 99_999 + "]" * 99_999, r"deeper than 32"),
    ],
    ids=["syntax", "not-a-mapping", "alias", "snapshot", "nan", "date-name", "deep"],
)
def test_yaml_errors_name_file_and_field(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "dc.yaml"
    p.write_text(text)
    with pytest.raises(DatacenterError, match=match) as e:
        read_datacenter(p)
    assert str(e.value).startswith(str(p))


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an installation without the sim extra: the import of yaml fails
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(DatacenterError, match=r"YAML needs the pyyaml package .*xdrs\[sim\]"):
        read_datacenter(write_yaml(tmp_path, doc()))


def test_yaml_bad_file_is_one_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("0,a,50,65536\n300,a,60,65536\n600,a,70,65536\n")
    bad = write_yaml(tmp_path, doc(hosts=[{**doc()["hosts"][0], "cores": -4}]))
    code = main(["simulate", "--quiet", "--trace", str(csv), "--datacenter", str(bad),
                 "--policy", "npa"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{bad}: " in err and "cores" in err
    assert "Traceback" not in err


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_yaml_text_loads_or_names_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "dc.yml"
        p.write_text("format: xdrs-datacenter/1\n" + text, encoding="utf-8", errors="replace")
        try:
            read_datacenter(p)
        except DatacenterError as e:
            assert str(e).startswith(str(p))
