"""The simulator's broker tests (the metric history on the metrics topic) use the bus
tests' real embedded broker (Tansu; Apache Kafka is exercised by the bus tests).

``aot_dir``: a directory holding the ahead-of-time kernels built from the current source
(the virtual environment's, built by scripts/venv.sh, or else built here once, ~20 s)."""

from pathlib import Path
from types import ModuleType

import pytest

from tests.xdrs.bus.conftest import broker, config  # noqa: F401 - fixtures
from xdrs.sim import aot


@pytest.fixture(scope="session")
def aot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if aot.load() is not None:
        return aot.default_dir()
    out = tmp_path_factory.mktemp("aot")
    aot.build(out)
    return out


@pytest.fixture(params=["jit", "aot"])
def compiled_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each compiled implementation in turn, as ``XDRS_SIM_KERNEL`` names it."""
    if request.param == "aot":
        monkeypatch.setenv("XDRS_SIM_AOT_DIR", str(request.getfixturevalue("aot_dir")))
    return str(request.param)


@pytest.fixture(params=["jit", "aot"])
def compiled(request: pytest.FixtureRequest) -> ModuleType:
    """Each compiled kernel module in turn: numba's JIT kernels, the ahead-of-time module."""
    if request.param == "jit":
        from xdrs.sim import kernel  # imports numba

        return kernel
    mod = aot.load(request.getfixturevalue("aot_dir"))
    assert mod is not None
    return mod
