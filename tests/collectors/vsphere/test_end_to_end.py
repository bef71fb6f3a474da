"""Snapshot -> placement core -> actuator against the simulator, rules and maintenance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import orjson
import pytest

from placement import BalanceArgs, ClusterState, Plan, Rules, host_loads, metrics, run
from tests.collectors.vsphere import helpers
from tests.collectors.vsphere.conftest import Vcsim
from xdrs.cli import main
from xdrs.snapshot import read_snapshot, write_actions

pytestmark = pytest.mark.vcsim


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDRS_VSPHERE_PASSWORD", "pass")


def _args(sim: Vcsim) -> list[str]:
    return ["--url", sim.url, "--user", "user"]


def _snapshot(sim: Vcsim, tmp_path: Path, *extra: str) -> ClusterState:
    out = tmp_path / "snapshot.json"
    assert main(["vsphere", "snapshot", *_args(sim), "--out", str(out), *extra]) == 0
    return read_snapshot(out)


def _apply(sim: Vcsim, tmp_path: Path, plan: object, st: ClusterState) -> list[dict[str, object]]:
    acts, res = tmp_path / "actions.json", tmp_path / "results.json"
    write_actions(plan, st, acts)  # type: ignore[arg-type]
    status = main(["vsphere", "apply", *_args(sim), "--actions", str(acts), "--results", str(res)])
    results: list[dict[str, object]] = orjson.loads(res.read_bytes())
    assert status == (0 if all(r["ok"] for r in results) else 1)
    return results


def _check_final(sim: Vcsim, st: ClusterState, final: np.ndarray) -> dict[str, str | None]:
    now = helpers.hosts_of(sim)
    for i, v in enumerate(st.vm_ids):
        assert now[v] == st.host_ids[final[i]], v
    return now


def test_snapshot_names_hosts_vms_and_clusters(vcsim_small: Vcsim, tmp_path: Path) -> None:
    st = _snapshot(vcsim_small, tmp_path)
    doc = orjson.loads((tmp_path / "snapshot.json").read_bytes())
    inv = helpers.inventory(vcsim_small)
    hosts = {h.id: h for h in inv.hosts}
    clusters = {c.id: c.name for c in inv.clusters}
    assert [h["hostname"] for h in doc["hosts"]] == [hosts[u].name for u in st.host_ids]
    assert [h["domain"] for h in doc["hosts"]] == [clusters[hosts[u].cluster] for u in st.host_ids]
    assert {v["name"] for v in doc["vms"]} == {v.name for v in inv.vms if v.powered_on}
    assert doc["generator"]["source"] == vcsim_small.url
    assert len(set(st.domain.tolist())) == 2


def test_balance_end_to_end(vcsim_small: Vcsim, tmp_path: Path) -> None:
    st = _snapshot(vcsim_small, tmp_path)
    before = helpers.state(vcsim_small)
    assert host_loads(before)[:, 0].max() > 1.0, "fixture has overloaded hosts"
    plan = run("balance", st, BalanceArgs(), seed=0)
    assert plan.n_moves > 0
    results = _apply(vcsim_small, tmp_path, plan, st)
    assert len(results) == plan.n_moves and all(r["ok"] for r in results)
    _check_final(vcsim_small, st, plan.final_placement(st.placement))
    after = helpers.state(vcsim_small)  # recomputed from the simulator
    assert metrics(after).cpu_load_sd < metrics(before).cpu_load_sd
    assert metrics(after).cpu_load_max < metrics(before).cpu_load_max


def _members(st: ClusterState) -> list[str]:
    """One VM on each of the two hottest and three coldest hosts of domain 0."""
    loads = host_loads(st)[:, 0]
    hosts = np.flatnonzero(st.domain == 0)
    order = hosts[np.argsort(loads[hosts])]
    picks = [*order[-2:], *order[:3]]
    out = []
    for h in picks:
        on_h = np.flatnonzero(st.placement == h)
        out.append(st.vm_ids[on_h[np.argmax(st.demand[on_h, 0])]])
    return out


def _steps_sharing(plan: Plan, st: ClusterState, idx: list[int]) -> int:
    """Steps of the plan after which two of the VMs ``idx`` share a host."""
    place, bad = st.placement.copy(), 0
    for v, d in zip(plan.vm.tolist(), plan.dst.tolist(), strict=True):
        place[v] = d
        bad += len(set(place[idx].tolist())) < len(idx)
    return bad


def test_anti_affinity_rule_never_violated(vcsim_small: Vcsim, tmp_path: Path) -> None:
    inv = helpers.inventory(vcsim_small)
    members = _members(helpers.state(vcsim_small))
    with vcsim_small.connect() as admin:
        helpers.add_anti_affinity(admin, inv.clusters[0].id, "keep-apart", members)
    st = _snapshot(vcsim_small, tmp_path)
    assert len(st.rules.vv_names) == 1 and bool(st.rules.vv_anti[0])
    idx = [st.vm_ids.index(v) for v in members]
    assert sorted(st.rules.vv_vm.tolist()) == sorted(idx)
    # not vacuous: without the rule, the same balancing pass does put members together
    free = run("balance", dataclasses.replace(st, rules=Rules.empty(st.n_hosts)),
               BalanceArgs(threshold=5), seed=0)  # fmt: skip
    assert _steps_sharing(free, st, idx) > 0
    plan = run("balance", st, BalanceArgs(threshold=5), seed=0)
    assert plan.n_moves > 0
    assert _steps_sharing(plan, st, idx) == 0, "members share a host"
    _apply(vcsim_small, tmp_path, plan, st)
    now = helpers.hosts_of(vcsim_small)
    assert len({now[v] for v in members}) == len(members)


def test_vm_host_must_rule_mapped_and_kept(vcsim_small: Vcsim, tmp_path: Path) -> None:
    inv = helpers.inventory(vcsim_small)
    c0 = inv.clusters[0]
    c0_hosts = [h.id for h in inv.hosts if h.cluster == c0.id]
    vms = [v.id for v in inv.vms if v.powered_on and v.host in c0_hosts[:2]][:4]
    allowed = c0_hosts[:4]
    with vcsim_small.connect() as admin:
        helpers.add_vm_host_rule(admin, c0.id, "pin-to-4", vms, allowed, mandatory=True)
    st = _snapshot(vcsim_small, tmp_path)
    assert st.rules.vh_names == (f"{c0.name}/pin-to-4",)
    assert st.rules.vh_kind.tolist() == [0]  # MUST
    assert sorted(st.rules.vh_vm.tolist()) == sorted(st.vm_ids.index(v) for v in vms)
    assert [st.host_ids[h] for h in np.flatnonzero(st.rules.vh_hosts[0])] == allowed
    plan = run("balance", st, BalanceArgs(threshold=5), seed=0)
    final = plan.final_placement(st.placement)
    for v in vms:
        assert st.host_ids[final[st.vm_ids.index(v)]] in allowed


def test_host_in_maintenance_is_evacuated(vcsim_small: Vcsim, tmp_path: Path) -> None:
    inv = helpers.inventory(vcsim_small)
    target = inv.hosts[3]
    running = [v.id for v in inv.vms if v.powered_on and v.host == target.id]
    assert running
    with vcsim_small.connect() as admin:
        helpers.wait_task(helpers.host(admin, target.id).EnterMaintenanceMode_Task(timeout=0))
    st = _snapshot(vcsim_small, tmp_path)
    assert st.maintenance.tolist().count(True) == 1
    assert st.maintenance[st.host_ids.index(target.id)]
    plan = run("evacuate", st, seed=0)
    assert plan.unresolved.size == 0
    _apply(vcsim_small, tmp_path, plan, st)
    now = helpers.hosts_of(vcsim_small)
    assert [v for v in running if now[v] == target.id] == []
    same_cluster = {h.id for h in inv.hosts if h.cluster == target.cluster}
    assert all(now[v] in same_cluster for v in running), "moved within the cluster"


def test_failed_relocate_reported_others_applied(vcsim_small: Vcsim, tmp_path: Path) -> None:
    inv = helpers.inventory(vcsim_small)
    on = [v for v in inv.vms if v.powered_on]
    gone, good = on[0], on[1]
    dst_gone = next(
        h.id for h in inv.hosts if h.cluster == inv.hosts[0].cluster and h.id != gone.host
    )
    dst_good = next(h.id for h in inv.hosts if h.id not in (good.host,) and h.cluster
                    == next(x.cluster for x in inv.hosts if x.id == good.host))  # fmt: skip
    with vcsim_small.connect() as admin:
        obj = helpers.vm(admin, gone.id)
        helpers.wait_task(obj.PowerOffVM_Task())
        helpers.wait_task(obj.Destroy_Task())
    acts = [
        {"action": "migrate", "vm": gone.id, "source": gone.host, "destination": dst_gone},
        {"action": "migrate", "vm": good.id, "source": good.host, "destination": dst_good},
    ]
    path, res = tmp_path / "actions.json", tmp_path / "results.json"
    path.write_bytes(orjson.dumps(acts))
    status = main(["vsphere", "apply", *_args(vcsim_small), "--actions", str(path),
                   "--results", str(res)])  # fmt: skip
    assert status == 1
    r = orjson.loads(res.read_bytes())
    assert [x["ok"] for x in r] == [False, True]
    assert r[0]["fault"] == "ManagedObjectNotFound"
    now = helpers.hosts_of(vcsim_small)
    assert gone.id not in now
    assert now[good.id] == dst_good
    untouched = {v.id: v.host for v in inv.vms if v.id not in (gone.id, good.id)}
    assert {v: now[v] for v in untouched} == untouched


def test_stale_source_not_moved(vcsim_small: Vcsim, tmp_path: Path) -> None:
    inv = helpers.inventory(vcsim_small)
    v = next(x for x in inv.vms if x.powered_on)
    others = [h.id for h in inv.hosts if h.cluster == inv.hosts[0].cluster and h.id != v.host]
    acts = [{"action": "migrate", "vm": v.id, "source": others[0], "destination": others[1]}]
    path = tmp_path / "actions.json"
    path.write_bytes(orjson.dumps(acts))
    assert main(["vsphere", "apply", *_args(vcsim_small), "--actions", str(path)]) == 1
    assert helpers.hosts_of(vcsim_small)[v.id] == v.host
