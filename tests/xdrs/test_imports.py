"""The import structure: no cycle, layers that point one way, lazy heavy packages.

Allowed layering (arrows point down; function-level imports count as arrows too):

    xdrs.cli            the command line; nothing else imports it
    xdrs.* (runtime)    services, demo, engine, actuator, bus, sim, snapshot, report
    collectors.*        platforms and the event schema; may import placement, never xdrs
    placement.*         the pure core; imports nothing of xdrs or collectors
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xdrs.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("placement", "collectors", "xdrs")
HEAVY = (
    "kafka",
    "prometheus_client",
    "pyVmomi",
    "matplotlib",
    "numba",
    "openstack",
    "keystoneauth1",
)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _targets(node: ast.AST, module: str, is_pkg: bool) -> list[str]:
    """Project modules one import statement names (``from a import b``: ``a.b`` if a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_pkg else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        is_pkg = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):  # every import, at module level or inside a function
            for target in _targets(node, name, is_pkg):
                t = target
                while t and t not in MODULES:  # `import a.b.c` of a name inside a module
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.add(t)
        graph[name] = edges
    graph["xdrs.cli"] |= set(COMMANDS.values())  # imported by name, per command
    return graph


GRAPH = _graph()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_graph_is_read():
    assert "xdrs.cli.plan" in GRAPH["xdrs.cli"]
    assert "placement.state" in GRAPH["placement"]
    assert "xdrs.services" in GRAPH["xdrs.cli.services"]  # a function-level import counts


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


@pytest.mark.parametrize(
    ("layer", "may_import"),
    [
        ("placement", ("placement",)),
        ("collectors", ("collectors", "placement")),
        ("xdrs", ("xdrs", "collectors", "placement")),
    ],
)
def test_layers_point_one_way(layer: str, may_import: tuple[str, ...]):
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if m.split(".")[0] == layer
        for t in targets
        if t.split(".")[0] not in may_import
    )
    assert wrong == []


def test_nothing_below_the_cli_imports_it():
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if not m.startswith("xdrs.cli")
        for t in targets
        if t == "xdrs.cli" or t.startswith("xdrs.cli.")
    )
    assert wrong == []


def _reason(lines: list[str], first: int, last: int, imports: frozenset[int] = frozenset()) -> str:
    """The comments on an import's own lines (1-based ``first..last``) and on the lines right
    above it that are comments, blank, ``try:`` or other imports (``imports``: their 1-based
    lines; a block of lazy imports shares one comment)."""
    text = [ln.partition("#")[2] for ln in lines[first - 1 : last]]
    i = first - 2
    while i >= 0:
        ln = lines[i].strip()
        if not (ln in ("", "try:") or ln.startswith("#") or i + 1 in imports):
            break
        text.append(ln.partition("#")[2])
        i -= 1
    return " ".join(text)


def test_function_level_imports_are_lazy_and_say_so():
    """A function-level import loads a heavy or optional package and its comment says so."""
    bad = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef):
                continue
            found = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
            at = frozenset(i for n in found for i in range(n.lineno, (n.end_lineno or 0) + 1))
            for inner in found:
                why = _reason(lines, inner.lineno, inner.end_lineno or inner.lineno, at)
                if not any(w in why for w in ("lazy", "optional")):
                    bad.append(f"{name}:{inner.lineno}")
    assert sorted(set(bad)) == [], "function-level imports without a reason"


def test_the_reason_must_be_beside_the_import():
    lines = ["def f():", '    """lazy in a docstring does not count"""', "    import x",
             "    # lazy: x is heavy", "    import y", "    import z  # optional",
             "    z.use()", "    import w"]  # fmt: skip
    at = frozenset({3, 5, 6, 8})
    assert "lazy" not in _reason(lines, 3, 3, at) and "optional" not in _reason(lines, 8, 8, at)
    assert "lazy" in _reason(lines, 5, 5, at) and "optional" in _reason(lines, 6, 6, at)


# One interpreter that forks a fresh child per module: each child starts with no module of
# the project loaded (third-party packages are preloaded once, to save time) and imports one
# module, so a cycle that shows only when a module is imported first is found.
_FORKER = """
import importlib, json, os, sys, traceback
for lib in ("numpy", "orjson", "kafka", "prometheus_client", "pyVmomi"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
assert not [m for m in sys.modules if m.split(".")[0] in ("xdrs", "collectors", "placement")]
failed = {}
for name in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            __import__(name)
            msg = b""
        except BaseException:
            msg = traceback.format_exc(limit=3).encode()
        os.write(w, msg[-4000:])
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    if out:
        failed[name] = out.decode()
print(json.dumps(failed))
"""


def test_every_module_imports_alone_in_a_fresh_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _FORKER, *MODULES, "xdrs._not_a_module"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=True,
    )  # fmt: skip
    failed = json.loads(done.stdout)
    assert "ModuleNotFoundError" in failed.pop("xdrs._not_a_module")  # the check works
    assert len(MODULES) > 60
    assert failed == {}, "\n".join(f"{k}:\n{v}" for k, v in failed.items())


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        "from xdrs.cli import main\n"
        f"status = main({argv!r})\n"
        "print(json.dumps([status, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
    )  # fmt: skip
    status, modules = json.loads(done.stdout.splitlines()[-1])
    assert status == 0, done.stderr
    return set(modules)


def test_plan_imports_only_what_it_uses():
    loaded = _modules_after(["plan", "--generate", "50/500", "--strategy", "balance"])
    assert {"placement.strategies.balance", "xdrs.cli.plan", "xdrs.synth"} <= loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
    runtime = ("xdrs.engine", "xdrs.demo", "xdrs.services", "xdrs.sim", "xdrs.bus.kafka",
               "xdrs.daemon", "collectors.replay", "collectors.events", "xdrs.cli.platforms",
               "xdrs.cli.daemon", "msgspec")  # fmt: skip
    assert sorted(m for m in loaded if m.startswith(runtime)) == []


def test_help_of_every_command_is_light():
    """Every command's options are declared without loading what the command runs."""
    code = (
        "import json, sys, contextlib, io\n"
        "from xdrs.cli import build_parser\n"
        "build_parser()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
    )  # fmt: skip
    loaded = set(json.loads(done.stdout))
    assert "xdrs.cli.platforms.vsphere" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
