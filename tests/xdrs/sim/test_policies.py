"""Policy names."""

from __future__ import annotations

import pytest

from xdrs.sim.policies import PolicyError, parse_policy


@pytest.mark.parametrize(
    ("name", "kind", "detector", "selection", "param"),
    [
        ("npa", "npa", "", "", 0.0),
        ("DVFS", "dvfs", "", "", 0.0),
        ("lr-mmt-1.2", "migration", "lr", "mmt", 1.2),
        ("iqr-rs-1.5", "migration", "iqr", "rs", 1.5),
        ("thr-mu-0.8", "migration", "thr", "mu", 0.8),
        ("xdrs-consolidate", "xdrs", "", "", 0.0),
    ],
)
def test_parse(name: str, kind: str, detector: str, selection: str, param: float) -> None:
    p = parse_policy(name)
    assert (p.kind, p.detector, p.selection, p.param) == (kind, detector, selection, param)


@pytest.mark.parametrize("name", ["lr-mmt", "foo-mmt-1", "lr-xx-1", "lr-mmt-0", "lr-mmt-x"])
def test_bad_names(name: str) -> None:
    with pytest.raises(PolicyError, match="expected npa, dvfs"):
        parse_policy(name)


@pytest.mark.parametrize("name", ["lr-mmt-inf", "mad-mc-nan", "iqr-rs-1e999", "lr-mmt--1"])
def test_parameter_must_be_finite_and_positive(name: str) -> None:
    with pytest.raises(PolicyError, match="a finite parameter > 0"):
        parse_policy(name)


@pytest.mark.parametrize("name", ["thr-mmt-inf", "thr-mmt-nan", "thr-mmt-1.5", "thr-mmt-0"])
def test_thr_is_a_threshold(name: str) -> None:
    with pytest.raises(PolicyError, match=r"utilisation threshold in \(0, 1\]"):
        parse_policy(name)
