"""Every numeric option is checked when it is parsed: finite, in range, one error line."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.replay.mover import LinkModel
from placement.order import OrderArgs
from xdrs.cli import main, parse
from xdrs.errors import UsageError

# Values a user might type: integers of any sign and size, floats with nan and inf, text.
VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0", "-0", "1.5", "", " ", "x", "0x10"]),
)

PLAN = ["--max-moves", "--per-host", "--per-cluster", "--link-gbps", "--seed", "--threshold"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(PLAN), value=VALUES)
def test_plan_option_values_run_or_fail_in_one_line(option: str, value: str) -> None:
    argv = ["plan", "--generate", "6/30", "--strategy", "balance", f"{option}={value}"]
    status, out, err = _run(argv)
    assert status in (0, 2)
    if status == 2:
        assert err.startswith(f"xdrs: error: {option}: ") and err.count("\n") == 1, err
        assert out == ""
    else:
        assert err == "" and "moves" in out
        assert "nan" not in out.split("planning time")[0]  # no nan duration or load


# Options of the long-running commands: parsing never starts anything, so every value is
# tried; a value that parses is checked against the argument dataclass of the command.
LONG = {
    ("engine",): ["--max-moves", "--period", "--threshold", "--partitions", "--demand-window"],
    ("demo",): ["--duration", "--speed", "--threshold", "--metrics-port", "--partitions"],
    ("replay",): ["--speed", "--steps", "--partitions"],
    ("collect", "replay"): ["--speed", "--steps"],
    ("collect", "vsphere", "--url", "vc", "--user", "u"): [
        "--interval", "--cycles", "--cpu-ratio", "--mem-ratio", "--inventory-every", "--timeout",
    ],
    ("actuate", "vsphere", "--url", "vc", "--user", "u"): [
        "--task-timeout", "--max-age", "--metric-age", "--per-host", "--rate", "--timeout",
        "--vmotion-gbps",
    ],
    ("actuate", "openstack"): [
        "--migration-timeout", "--max-age", "--metric-age", "--per-host", "--rate", "--timeout",
    ],
    ("vsphere", "snapshot", "--url", "vc", "--user", "u", "--out", "x.json"): [
        "--cpu-ratio", "--mem-ratio", "--timeout",
    ],
    ("simulate", "--policy", "npa"): [
        "--hosts", "--hours", "--seed", "--remove-hosts", "--add-hosts", "--scale-demand",
    ],
}  # fmt: skip
CASES = [(cmd, opt) for cmd, opts in LONG.items() for opt in opts]


@settings(max_examples=150, deadline=None)
@given(case=st.sampled_from(CASES), value=VALUES)
def test_long_running_option_values_parse_or_fail_in_one_line(
    case: tuple[tuple[str, ...], str], value: str
) -> None:
    command, option = case
    try:
        args = parse([*command, f"{option}={value}"])
    except UsageError as e:
        assert str(e).startswith(f"{option}: ") and "\n" not in str(e)
        return
    parsed = getattr(args, option.lstrip("-").replace("-", "_"))
    assert isinstance(parsed, int) or math.isfinite(parsed)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["engine", "--max-moves", "-5"], "--max-moves: expected an integer >= 0, got '-5'"),
        (["engine", "--period", "nan"], "--period: expected a finite number >= 0"),
        (["engine", "--demand-window", "5000"], "--demand-window: expected 0..2016 samples"),
        (["engine", "--demand-q", "1.5"], "--demand-q: expected a number in (0, 1]"),
        (["demo", "--duration", "0"], "--duration: expected a finite number > 0"),
        (["demo", "--speed", "-1"], "--speed: expected a finite number >= 0"),
        (["replay", "--partitions", "0"], "--partitions: expected an integer in 1..10000"),
        (["simulate", "--policy", "npa", "--scale-demand", "inf"], "--scale-demand: expected"),
        (["simulate", "--policy", "npa", "--maintenance", "0@nan"], "--maintenance: expected"),
        (["engine", "--kafka-option", "linger_ms"], "--kafka-option: expected KEY=VALUE"),
        (["collect", "vsphere", "--url", "vc", "--user", "u", "--cycles", "-1"], "--cycles:"),
    ],
)
def test_bad_options_stop_before_anything_runs(argv: list[str], message: str) -> None:
    status, out, err = _run(argv)
    assert status == 2
    assert err.startswith("xdrs: error: ") and err.count("\n") == 1 and message in err, err
    assert out == ""


def test_engine_options_reach_the_engine_arguments() -> None:
    args = parse(["engine", "--max-moves", "0", "--period", "0", "--threshold", "5"])
    assert (args.engine_args.max_moves, args.engine_args.period_s) == (0, 0.0)
    assert args.engine_args.threshold == 5


def test_link_gbps_is_declared_once_with_each_models_default():
    plan = parse(["plan", "--generate", "4/8", "--strategy", "balance"])
    replay = parse(["demo"])  # the replay platform's timed mover
    assert plan.link_gbps == OrderArgs().link_gbps == replay.link_gbps == LinkModel().link_gbps
