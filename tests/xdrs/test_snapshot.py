"""Reading, writing and replaying ``drs-peer-cluster/1`` files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from placement import ClusterState, run
from placement.rules import MUST_NOT, SHOULD
from tests.xdrs.snapshots import doc, dump, rich_doc
from xdrs.snapshot import (
    SnapshotError,
    action_list,
    parse_snapshot,
    read_snapshot,
    replay_actions,
    write_actions,
    write_snapshot,
)

ARRAYS = ("phys", "alloc_cap", "alloc", "demand", "placement", "domain", "maintenance",
          "disabled", "pinned", "power")  # fmt: skip
RULE_ARRAYS = ("vv_vm", "vv_group", "vv_anti", "vh_vm", "vh_rule", "vh_hosts", "vh_kind")


def assert_same(a: ClusterState, b: ClusterState) -> None:
    assert a.host_ids == b.host_ids and a.vm_ids == b.vm_ids
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in RULE_ARRAYS:
        np.testing.assert_array_equal(getattr(a.rules, name), getattr(b.rules, name), name)
    assert (a.rules.vv_names, a.rules.vh_names) == (b.rules.vv_names, b.rules.vh_names)


def test_reads_sizes_capacity_and_demand() -> None:
    d = doc()
    d["hosts"][0] |= {"vcpu_reserved": 2, "memory_ratio": 1.5}
    st = parse_snapshot(d)
    np.testing.assert_array_equal(st.phys[0], [16, 65536, 1000])
    np.testing.assert_array_equal(st.alloc_cap[0], [28, 98304, 1000])
    np.testing.assert_array_equal(st.alloc[0], [4, 8192, 40])
    np.testing.assert_array_equal(st.demand[0], [1.0, 4096, 40])
    assert st.power is None and st.rules.is_empty and not st.domain.any()


def test_reads_extension() -> None:
    st = parse_snapshot(rich_doc())
    np.testing.assert_array_equal(st.domain, [1, 1, 0, 0])
    np.testing.assert_array_equal(st.maintenance, [False, False, False, True])
    np.testing.assert_array_equal(st.disabled, [False, False, True, False])
    assert st.pinned.tolist() == [False, True] + [False] * 6
    assert st.power is not None and st.power[1, 10] == 201
    assert st.alloc_cap[0, 1] == 65536 - 2048
    assert st.rules.vv_names == ("apart", "together")
    assert st.rules.vv_anti.tolist() == [True, False]
    assert st.rules.vh_kind.tolist() == [MUST_NOT, SHOULD]
    assert st.rules.vh_hosts[0].tolist() == [False, True, False, False]


@pytest.mark.parametrize("make", [doc, rich_doc], ids=["plain", "extension"])
def test_round_trip(tmp_path: Path, make: Callable[[], dict[str, Any]]) -> None:
    st = read_snapshot(dump(tmp_path / "in.json", make()))
    write_snapshot(st, tmp_path / "out.json")
    assert_same(st, read_snapshot(tmp_path / "out.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "out.json"]


def test_round_trip_with_new_placement(tmp_path: Path) -> None:
    st = parse_snapshot(doc())
    place = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    write_snapshot(st, tmp_path / "out.json", placement=place)
    np.testing.assert_array_equal(read_snapshot(tmp_path / "out.json").placement, place)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Mutator setting ``a.b.0.c`` style paths; value ``...`` deletes the key."""

    def mutate(d: dict[str, Any]) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = d
        for k in parents:
            node = node[k]
        if value is ...:
            del node[last]
        else:
            node[last] = value

    return mutate


def _dup_vm(d: dict[str, Any]) -> None:
    d["vms"][3]["uuid"] = "v1"


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "format-wrong",
        _set("format", "drs/2"),
        "format: expected 'drs-peer-cluster/1', got \"drs/2\"",
    ),
    ("format-missing", _set("format", ...), "format: expected"),
    ("hosts-not-list", _set("hosts", {}), "hosts: expected an array"),
    ("hosts-empty", _set("hosts", []), "hosts: expected at least one host"),
    (
        "size-missing",
        _set("vms.2.memory_mb", ...),
        "vms[2] (uuid 'v2').memory_mb: expected a number in 0..67108864 (64 TiB in MiB), "
        "got nothing",
    ),
    (
        "size-negative",
        _set("vms.2.memory_mb", -5),
        "vms[2] (uuid 'v2').memory_mb: expected a number in 0..67108864 (64 TiB in MiB), got -5",
    ),
    (
        "size-nan",
        _set("hosts.1.vcpus", float("nan")),
        "hosts[1] (uuid 'h1').vcpus: expected a number in 0..4096 (4096 cores or vCPUs), got nan",
    ),
    (
        "size-string",
        _set("hosts.1.disk_gb", "1000"),
        "hosts[1] (uuid 'h1').disk_gb: expected a number in 0..67108864 (64 PiB in GiB), "
        'got "1000"',
    ),
    (
        "size-bool",
        _set("vms.0.vcpus", True),
        "vms[0] (uuid 'v0').vcpus: expected a number in 0..4096 (4096 cores or vCPUs), got true",
    ),
    (
        "util-above-100",
        _set("vms.0.cpu_util_pct", 120),
        "vms[0] (uuid 'v0').cpu_util_pct: expected a number in 0..100",
    ),
    (
        "reserved-above-size",
        _set("hosts.0.vcpu_reserved", 20),
        "hosts[0] (uuid 'h0').vcpu_reserved: expected a number <= vcpus (16)",
    ),
    ("ratio-negative", _set("hosts.0.disk_ratio", -1), "hosts[0] (uuid 'h0').disk_ratio"),
    # sizes near the float limit passed and made inf/nan loads: bounded to physical values
    (
        "host-memory-1e308",
        _set("hosts.1.memory_mb", 1e308),
        "hosts[1] (uuid 'h1').memory_mb: expected a number in 0..67108864 (64 TiB in MiB), "
        "got 1e+308",
    ),
    (
        "vm-vcpus-over-4096",
        _set("vms.3.vcpus", 4097),
        "vms[3] (uuid 'v3').vcpus: expected a number in 0..4096 (4096 cores or vCPUs), got 4097",
    ),
    (
        "vm-disk-huge-int",
        _set("vms.3.disk_gb", 10**400),
        "vms[3] (uuid 'v3').disk_gb: expected a number in 0..67108864 (64 PiB in GiB)",
    ),
    (
        "ram-usage-huge",
        _set("vms.6.ram_usage_mb", 1.5e308),
        "vms[6] (uuid 'v6').ram_usage_mb: expected a number in 0..67108864 (64 TiB in MiB)",
    ),
    (
        "ratio-huge",
        _set("hosts.2.memory_ratio", 1e300),
        "hosts[2] (uuid 'h2').memory_ratio: expected a number in 0..1000 (over-commit ratio), "
        "got 1e+300",
    ),
    (
        "reserved-huge",
        _set("hosts.2.vcpu_reserved", 1e308),
        "hosts[2] (uuid 'h2').vcpu_reserved: expected a number in 0..4096",
    ),
    (
        "power-huge",
        _set("hosts.0.power_w", [1e308] * 11),
        "hosts[0] (uuid 'h0').power_w: expected an array of 11 numbers in 0..100000",
    ),
    (
        "host-index",
        _set("vms.5.host", 9),
        "vms[5] (uuid 'v5').host: expected a host index 0..3, got 9",
    ),
    ("host-index-float", _set("vms.5.host", 1.0), "vms[5] (uuid 'v5').host: expected a host index"),
    ("uuid-missing", _set("hosts.2.uuid", ...), "hosts[2].uuid: expected a non-empty string"),
    ("uuid-duplicate", _dup_vm, "vms[3] (uuid 'v1').uuid: duplicate of vms[1]"),
    (
        "vm-too-big",
        _set("vms.4.memory_mb", 70000),
        "vms[4] (uuid 'v4').memory_mb: 70000 exceeds the allocation capacity of every host",
    ),
    (
        "flag-not-bool",
        _set("hosts.0.maintenance", 1),
        "hosts[0] (uuid 'h0').maintenance: expected true or false, got 1",
    ),
    (
        "domain-not-string",
        _set("hosts.0.domain", 3),
        "hosts[0] (uuid 'h0').domain: expected a non-empty string",
    ),
    (
        "power-short",
        _set("hosts.0.power_w", [1, 2]),
        "hosts[0] (uuid 'h0').power_w: expected an array of 11 numbers",
    ),
    ("rules-not-list", _set("rules", {}), "rules: expected an array"),
    (
        "rule-type",
        _set("rules", [{"name": "x", "type": "near", "vms": []}]),
        "rules[0] (name 'x').type: expected one of affinity, anti_affinity, vm_host, got \"near\"",
    ),
    (
        "rule-unknown-vm",
        _set("rules", [{"name": "x", "type": "affinity", "vms": ["v1", "zz"]}]),
        "rules[0] (name 'x').vms[1]: unknown VM uuid \"zz\"",
    ),
    (
        "rule-unknown-host",
        _set(
            "rules",
            [{"name": "x", "type": "vm_host", "kind": "must", "vms": ["v1"], "hosts": ["nope"]}],
        ),
        "rules[0] (name 'x').hosts[0]: unknown host uuid \"nope\"",
    ),
    (
        "rule-kind",
        _set("rules", [{"name": "x", "type": "vm_host", "kind": "may", "vms": [], "hosts": []}]),
        "rules[0] (name 'x').kind: expected one of must, must_not",
    ),
    (
        "rule-vm-twice",
        _set("rules", [{"name": "apart", "type": "anti_affinity", "vms": ["v0", "v2", "v0"]}]),
        "rules[0] (name 'apart').vms[2]: VM uuid 'v0' is listed twice (also at vms[0])",
    ),
    (
        "rule-host-twice",
        _set(
            "rules",
            [
                {
                    "name": "x",
                    "type": "vm_host",
                    "kind": "must",
                    "vms": ["v1"],
                    "hosts": ["h2", "h2"],
                }
            ],
        ),
        "rules[0] (name 'x').hosts[1]: host uuid 'h2' is listed twice (also at hosts[0])",
    ),
    (
        "rule-no-name",
        _set("rules", [{"type": "affinity", "vms": []}]),
        "rules[0].name: expected a non-empty string",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    d = copy.deepcopy(doc())
    mutate(d)
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(d)
    assert message in str(err.value)


def test_vm_too_big_in_its_domain_only() -> None:
    d = doc()
    d["hosts"][3] |= {"memory_mb": 200000, "domain": "big"}
    d["vms"][4]["memory_mb"] = 100000
    with pytest.raises(
        SnapshotError, match=r"vms\[4\] \(uuid 'v4'\).memory_mb: .* domain 'default'"
    ):
        parse_snapshot(d)
    d["vms"][4]["host"] = 3
    assert parse_snapshot(d).alloc[4, 1] == 100000


def test_vm_fitting_no_host_jointly() -> None:
    d = doc()
    d["hosts"][0] |= {"vcpus": 64}
    d["hosts"][1] |= {"memory_mb": 200000}
    d["hosts"] = d["hosts"][:2]
    d["vms"][0] |= {"vcpus": 40, "memory_mb": 100000}
    with pytest.raises(SnapshotError, match=r"vms\[0\] \(uuid 'v0'\) in migration domain"):
        parse_snapshot(d)


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "drs-peer-cluster/1",\n  "hosts": [,]\n}')
    with pytest.raises(SnapshotError, match=r"broken.json: invalid JSON at line 3 column 13"):
        read_snapshot(path)


def test_every_file_error_names_the_file_and_the_field(tmp_path: Path) -> None:
    d = doc()
    d["hosts"][2]["memory_ratio"] = 1e300  # was: "alloc_cap[2, 1]: ... got inf"
    path = dump(tmp_path / "cluster.json", d)
    with pytest.raises(SnapshotError) as err:
        read_snapshot(path)
    assert str(err.value).startswith(f"{path}: hosts[2] (uuid 'h2').memory_ratio: expected")


def test_input_size_is_capped(tmp_path: Path) -> None:
    path = dump(tmp_path / "cluster.json", doc())
    size = path.stat().st_size
    assert read_snapshot(path, max_bytes=size).n_vms == 8
    with pytest.raises(SnapshotError, match="larger than the input limit"):
        read_snapshot(path, max_bytes=size - 1)
    with pytest.raises(SnapshotError, match=r"^/dev/zero: not a text file"):
        read_snapshot("/dev/zero")


def _plan_state() -> ClusterState:
    return parse_snapshot(doc())


def test_actions_replay_to_final_placement(tmp_path: Path) -> None:
    st = _plan_state()
    plan = run("balance", st)
    assert plan.n_moves > 0
    write_actions(plan, st, tmp_path / "actions.json")
    actions = orjson.loads((tmp_path / "actions.json").read_bytes())
    assert actions == action_list(plan, st)
    assert {a["reason"] for a in actions} <= {"imbalance", "overload", "capacity"}
    final = replay_actions(st, actions, check_capacity=True)
    np.testing.assert_array_equal(final, plan.final_placement(st.placement))


BAD_ACTIONS: list[tuple[str, list[Any], str]] = [
    ("not-list", {}, "actions: expected an array"),  # type: ignore[list-item]
    (
        "wrong-source",
        [{"action": "migrate", "vm": "v0", "source": "h1", "destination": "h2"}],
        "actions[0] (vm 'v0').source: expected 'h0' (the VM's current host), got 'h1'",
    ),
    (
        "unknown-vm",
        [{"action": "migrate", "vm": "zz", "source": "h0", "destination": "h2"}],
        'actions[0].vm: expected a known VM uuid, got "zz"',
    ),
    (
        "unknown-action",
        [{"action": "reboot", "host": "h0"}],
        "actions[0].action: expected one of migrate",
    ),
    (
        "disable-busy",
        [{"action": "disable_host", "host": "h0"}],
        "disable_host of 'h0', which still runs 4 VMs",
    ),
    (
        "over-capacity",
        [
            {"action": "migrate", "vm": f"v{i}", "source": f"h{i % 2}", "destination": "h3"}
            for i in range(3)
        ],
        "exceeds its allocation capacity",
    ),
]


@pytest.mark.parametrize(
    ("actions", "message"), [b[1:] for b in BAD_ACTIONS], ids=[b[0] for b in BAD_ACTIONS]
)
def test_replay_rejects(actions: list[Any], message: str) -> None:
    d = doc()
    d["hosts"][3]["memory_mb"] = 20000  # room for two of the 8 GiB VMs
    with pytest.raises(SnapshotError) as err:
        replay_actions(parse_snapshot(d), actions, check_capacity=True)
    assert message in str(err.value)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    st = _plan_state()
    st.alloc_cap[0, 0] = 5.0  # cannot be written: capacity with size 0 is refused below
    st.phys[0, 0] = 0.0
    with pytest.raises(ValueError, match="size 0"):
        write_snapshot(st, tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []
