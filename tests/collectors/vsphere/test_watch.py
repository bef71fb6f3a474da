"""Changes made by a second session reach the update watcher within seconds."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from collectors.vsphere import Change, CollectorOptions, UpdateWatcher, VSphereCollector
from tests.collectors.vsphere import helpers
from tests.collectors.vsphere.conftest import Vcsim
from tests.support import wait_for
from xdrs.cli import main

pytestmark = pytest.mark.vcsim

DEADLINE_S = 10.0  # a timeout for waiting, not a speed assertion


def _collect_until(w: UpdateWatcher, want: set[tuple[str, str]]) -> list[Change]:
    seen: list[Change] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and not want <= {(c.id, c.field) for c in seen}:
        seen += w.poll(1.0)
    return seen


def test_power_off_relocate_rename_seen(vcsim_small: Vcsim) -> None:
    inv = helpers.inventory(vcsim_small)
    on = [v for v in inv.vms if v.powered_on]
    a, b, c = on[0], on[1], on[2]
    other = next(h.id for h in inv.hosts if h.cluster == inv.hosts[0].cluster and h.id != b.host)
    with vcsim_small.connect() as conn, vcsim_small.connect() as admin:
        w = UpdateWatcher(conn.content)
        baseline = w.start()
        assert baseline[("vm", b.id)]["host"] == b.host
        assert len([k for k in baseline if k[0] == "vm"]) == len(inv.vms)
        assert w.poll(0) == [], "nothing changed yet"
        helpers.wait_task(helpers.vm(admin, a.id).PowerOffVM_Task())
        helpers.wait_task(helpers.vm(admin, b.id).RelocateVM_Task(
            helpers.vim.vm.RelocateSpec(host=helpers.host(admin, other))))  # fmt: skip
        helpers.wait_task(helpers.vm(admin, c.id).Rename_Task("renamed-by-test"))
        seen = _collect_until(w, {(a.id, "power_state"), (b.id, "host"), (c.id, "name")})
        w.stop()
    values = {(ch.id, ch.field): ch.value for ch in seen}
    assert values[(a.id, "power_state")] == "poweredOff"
    assert values[(b.id, "host")] == other
    assert values[(c.id, "name")] == "renamed-by-test"
    assert {ch.id for ch in seen} == {a.id, b.id, c.id}, "no change reported for other VMs"


def test_collect_command_prints_json_lines(
    vcsim_small: Vcsim, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDRS_VSPHERE_PASSWORD", "pass")
    argv = ["vsphere", "collect", "--url", vcsim_small.url, "--user", "user", "--cycles", "2",
            "--interval", "0.2"]  # fmt: skip
    assert main(argv) == 0
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    kinds = [x["type"] for x in lines]
    assert kinds == ["inventory", "metrics", "metrics"], "unchanged inventory sent once"
    inv = lines[0]["body"]
    assert len(inv["hosts"]) == 16 and len(inv["vms"]) == 200
    metrics = lines[1]["body"]
    assert {m["source"] for m in metrics} == {"quickstats", "perf"}


class _Changes:
    def __init__(self) -> None:
        self.seen: list[Change] = []
        self.inventories = 0

    def on_inventory(self, inv: object) -> None:
        self.inventories += 1

    def on_metrics(self, samples: object) -> None:
        pass

    def on_changes(self, changes: list[Change]) -> None:
        self.seen.extend(changes)


def test_collector_forwards_changes_between_cycles(vcsim_small: Vcsim) -> None:
    sink = _Changes()
    inv = helpers.inventory(vcsim_small)
    target = next(v for v in inv.vms if v.powered_on)
    with vcsim_small.connect() as conn, vcsim_small.connect() as admin:
        col = VSphereCollector(conn, sink, CollectorOptions(interval_s=60, perf=False))
        stop = threading.Event()
        worker = threading.Thread(target=col.run, args=(stop,), daemon=True)
        worker.start()
        try:
            assert wait_for(lambda: col.cycles >= 1, DEADLINE_S)
            helpers.wait_task(helpers.vm(admin, target.id).PowerOffVM_Task())
            assert wait_for(lambda: bool(sink.seen), DEADLINE_S)
        finally:
            stop.set()
            worker.join(10)
    assert [(c.id, c.field, c.value) for c in sink.seen] == [
        (target.id, "power_state", "poweredOff")
    ]
    assert col.cycles == 1 and sink.inventories == 1, "the change arrived before the next poll"
