"""Small hand-made ``drs-peer-cluster/1`` documents for the xdrs tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson


def host(i: int, **kw: Any) -> dict[str, Any]:
    return {"uuid": f"h{i}", "hostname": f"host{i}", "vcpus": 16, "memory_mb": 65536,
            "disk_gb": 1000, "vcpu_ratio": 2.0} | kw  # fmt: skip


def vm(i: int, on: int, **kw: Any) -> dict[str, Any]:
    return {"uuid": f"v{i}", "vcpus": 4, "memory_mb": 8192, "disk_gb": 40,
            "cpu_util_pct": 50, "ram_usage_mb": 4096, "host": on} | kw  # fmt: skip


def doc(**top: Any) -> dict[str, Any]:
    """4 hosts, 8 VMs all crowded on h0 and h1: balance has work to do."""
    return {
        "format": "drs-peer-cluster/1",
        "hosts": [host(i) for i in range(4)],
        "vms": [vm(i, i % 2, cpu_util_pct=25 + 10 * i) for i in range(8)],
    } | top


def rich_doc() -> dict[str, Any]:
    """doc() with every xdrs extension key used."""
    d = copy.deepcopy(doc())
    d["hosts"][3] |= {"maintenance": True, "domain": "a"}
    d["hosts"][2] |= {"disabled": True, "domain": "a"}
    for i, h in enumerate(d["hosts"]):
        h["power_w"] = [100 + 10 * k + i for k in range(11)]
        h["memory_mb_reserved"] = 2048
    d["vms"][1]["pinned"] = True
    d["vms"][7]["host"] = 3
    d["rules"] = [
        {"name": "apart", "type": "anti_affinity", "vms": ["v0", "v2"]},
        {"name": "together", "type": "affinity", "vms": ["v3", "v5"]},
        {"name": "not-h1", "type": "vm_host", "kind": "must_not", "vms": ["v4"], "hosts": ["h1"]},
        {"name": "pref", "type": "vm_host", "kind": "should", "vms": ["v6"], "hosts": ["h0"]},
    ]
    return d


def dump(path: Path, d: object) -> Path:
    path.write_bytes(orjson.dumps(d))
    return path
