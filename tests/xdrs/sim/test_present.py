"""What-if from the present: a drs-peer-cluster/1 snapshot simulated forward."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collectors.replay.traces import read_csv
from xdrs.cli import main
from xdrs.sim.present import world_from_snapshot
from xdrs.snapshot import read_snapshot, write_snapshot
from xdrs.synth import synth_cluster


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    p = tmp_path / "snap.json"
    write_snapshot(synth_cluster(12, 80, seed=3), p)
    return p


def test_drain_two_hosts(snap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = read_snapshot(snap)
    drained = st.host_ids[:2]
    on_them = {st.vm_ids[i] for i in np.flatnonzero(st.placement < 2)}
    out = tmp_path / "m.json"
    code = main(["simulate", "--quiet", "--snapshot", str(snap), "--policy", "thr-mmt-0.8",
                 "--hours", "1", "--maintenance", f"{drained[0]},{drained[1]}@0",
                 "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and "thr-mmt-0.8:" in text
    moves = json.loads(out.read_text())["series"][0]["moves"]
    left = {m["vm"] for m in moves if m["from"] in drained}
    assert on_them <= left  # every VM of the drained hosts moved off
    assert all(m["to"] not in drained for m in moves)


def test_trace_history_by_vm_id(snap: Path, tmp_path: Path) -> None:
    st = read_snapshot(snap)
    csv = tmp_path / "h.csv"
    vm = st.vm_ids[0]
    csv.write_text(f"0,{vm},10\n300,{vm},90\n600,{vm},50\n")
    world, placement = world_from_snapshot(st, read_csv(csv))
    assert world.samples[0].tolist() == [0.1, 0.9, 0.5, 0.5]
    now = st.demand[1, 0] / st.alloc[1, 0]
    assert world.samples[1] == pytest.approx([min(now, 1.0)] * 4)
    assert np.array_equal(placement, st.placement)
    assert world.memory_aware and not world.drop_idle


def test_unknown_vms_in_trace(
    snap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "h.csv"
    csv.write_text("0,nobody,10\n")
    code = main(["simulate", "--quiet", "--snapshot", str(snap), "--trace", str(csv),
                 "--policy", "lr-mmt-1.2"])  # fmt: skip
    assert code == 2 and "no VM of the snapshot" in capsys.readouterr().err
