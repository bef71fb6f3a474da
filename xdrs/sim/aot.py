"""The compiled kernels ahead of time: one extension module, loaded without importing numba.

A fresh process that JIT-loads the kernels pays for importing numba and loading each cached
kernel (~0.3-0.5 s, more than half of a simulated day). ``python -m xdrs.sim.aot build``
(run by ``scripts/venv.sh`` when numba is installed) compiles the functions of
:mod:`xdrs.sim.kernel` named in :data:`SIGNATURES` with ``numba.pycc`` into one extension
module; :func:`load` imports it in a few milliseconds.

The module's name holds a hash of the kernels' source (``kernel.py``, ``sums.py``, the
signatures) and of the numpy version it was built against, so a module built from
other source is never loaded: after an edit, :func:`load` finds nothing and the simulator
falls back to the JIT kernels until the next build. It is built into the virtual
environment (``<sys.prefix>/xdrs-aot``, or ``XDRS_SIM_AOT_DIR``), never committed.
pycc compiles for a generic x86-64 CPU (no FMA) without ``fastmath``, so its float
operations are those of the JIT kernels and of the numpy path (tests/xdrs/sim/test_aot.py).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

__all__ = ["SIGNATURES", "build", "default_dir", "load", "module_name"]

_A1F, _A2F = "f8[::1]", "f8[:,::1]"
_A1I, _A2I, _A1B = "i8[::1]", "i8[:,::1]", "b1[::1]"
_F = f"{_A2F},{_A2F},{_A2F},{_A2F},{_A2F}"  # f, power or hist, hist, vm columns, terms
# every kernel the simulator calls, with the one signature it is called with
SIGNATURES = {
    "create": f"b1(i8,i8,f8,{_A2F},{_A2F},{_A2F},{_A2F},{_A2F})",
    "energy": f"void({_A1F},{_A1F},{_A1F},f8,{_A1F})",
    "evaluate": f"void({_A1I},{_A2I},{_A1I},{_A1B},{_A1F},{_A1B},{_A1F},{_A1F},{_A2F},{_A2F})",
    "find_host": f"i8(i8,f8,{_A1B},{_A1B},{_A1I},i8,{_F},i8,f8,f8,b1)",
    "host_record": f"UniTuple(i8,2)(f8,{_A1F},{_A1F},{_A1B},{_A1F},{_A1F},{_A1F},{_A1B},{_A2F})",
    "initial": f"i8({','.join([_A1F] * 7)},{_A2F},b1,f8,{_A1I})",
    "host_hist": f"void({_A1I},{_A2I},{_A2F},{_A1F},{_A2F})",
    "lr_rows": f"void({_A2F},{_A2F},{_A1F},{_A1F})",
    "overloaded": f"b1(i8,i8,f8,{_A2F},{_A2F},f8)",
    "place": f"i8({_A1I},i8,{_A1I},{_A1B},{_A1I},{_A1B},{_A1F},b1,{_A1B},{_A1I},i8,{_F},"
    f"i8,f8,f8,b1,{_A2F},{_A1F},{_A1F})",
    "power_at": f"{_A1F}({_A1F},{_A1F},{_A2F},{_A1F})",
    "refresh": f"void(i8,{_A1I},{_A1F},f8,f8,{_A2F},{_A2F},{_A2F},{_A2F},{_A2F})",
    "push_history": f"void({_A1F},{_A2F},{_A1I})",
    "relieve_mmt": f"i8(i8,{_A1I},b1,{_A1B},{_A1F},f8,f8,{_F},i8,f8,f8,{_A1I})",
    "robust_threshold": f"f8({_A1F},i8,f8)",
    "underload": f"i8({_A1I},{_A1B},{_A1B},{_A1B},{_A1B},{_A2I},{_A1I},{_A1B},{_A1F},{_A1B},"
    f"{_A1I},i8,{_F},i8,f8,f8,b1,{_A2F},{_A1F},{_A1F},{_A1I},{_A1I})",
    "vm_record": f"i8(f8,{_A1I},{_A1F},{_A1F},{_A1B},{_A1F},{_A1F},{_A1F},{_A1B},{_A2F})",
    "setup_lists": f"void({_A1I},{_A2I},{_A1I},{_A1B},{_A1I},{_A1B},{_A1I},{_A1F},{_A1F},{_A1F},"
    f"{_A1F},{_A2I},{_A1B},{_A1I},{_A2F})",
    "slots": f"Tuple(({_A1I},{_A2I}))({_A1I},{_A1I})",
}
_SOURCES = ("kernel.py", "sums.py")
_HERE = Path(__file__).parent


def module_name(source: Path = _HERE) -> str:
    """``xdrs_sim_kernels_<hash>``: the hash of the kernels' source files in ``source`` (this
    package), their signatures and numpy's version."""
    h = hashlib.sha256(f"{np.__version__}\0{sorted(SIGNATURES.items())}".encode())
    for name in _SOURCES:
        h.update(name.encode() + b"\0" + (source / name).read_bytes())
    return f"xdrs_sim_kernels_{h.hexdigest()[:16]}"


def default_dir() -> Path:
    """Where the module is built and looked for: ``XDRS_SIM_AOT_DIR`` or the environment's
    ``<sys.prefix>/xdrs-aot``."""
    return Path(os.environ.get("XDRS_SIM_AOT_DIR") or Path(sys.prefix) / "xdrs-aot")


def _path(directory: Path) -> Path:
    return directory / (module_name() + importlib.machinery.EXTENSION_SUFFIXES[0])


def load(directory: Path | None = None) -> ModuleType | None:
    """The compiled kernels built from the current source, None if there is no such module."""
    path = _path(directory or default_dir())
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(module_name(), path)
    if spec is None or spec.loader is None:
        return None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    vars(mod)["IMPL"] = "ahead-of-time compiled kernels (numba.pycc)"
    return mod


def build(directory: Path | None = None) -> Path:
    """Compile the kernels into ``directory`` (default :func:`default_dir`); modules built
    from older source there are removed. Raises ImportError without numba."""
    # lazy: numba (heavy, the optional `sim` extra) is needed only to build
    from numba.pycc import CC  # type: ignore[attr-defined]  # noqa: PLC0415

    from xdrs.sim import kernel  # noqa: PLC0415  (imports numba: lazy, as above)

    out = directory or default_dir()
    out.mkdir(parents=True, exist_ok=True)
    name = module_name()
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        cc = CC(name)  # type: ignore[no-untyped-call]
        cc.output_dir = tmp
        cc.verbose = False
        for fn, sig in SIGNATURES.items():
            cc.export(fn, sig)(getattr(kernel, fn).py_func)  # type: ignore[no-untyped-call]
        cc.compile()
        (built,) = Path(tmp).glob(name + "*")
        target = _path(out)
        os.replace(built, target)  # atomic: a concurrent loader sees all or nothing
    for old in out.glob("xdrs_sim_kernels_*"):
        if old != target:
            old.unlink() if old.is_file() else shutil.rmtree(old, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m xdrs.sim.aot",
        description="Build the simulator's kernels ahead of time (needs numba and a C compiler).",
    )
    ap.add_argument("command", choices=["build", "path"])
    ap.add_argument("--dir", type=Path, default=None, help="default: <sys.prefix>/xdrs-aot")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--quiet", action="store_true", help="say nothing unless it builds or fails")
    a = ap.parse_args(argv)
    target = _path(a.dir or default_dir())
    if a.command == "path" or (target.is_file() and not a.force):
        if not a.quiet:
            print(f"{target} ({'present' if target.is_file() else 'not built'})")
        return 0
    try:
        print(f"built {build(a.dir)}")
    except ImportError as e:
        if not a.quiet:
            print(f"not built: {e} (numba is the `sim` extra); the simulator uses numpy")
    except Exception as e:  # a compiler error: the JIT kernels still work
        print(f"not built: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
