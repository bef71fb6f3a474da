"""Automation levels, like DRS: which moves run on their own and which wait for approval.

Per cluster: ``manual`` (nothing runs without approval), ``partial`` (mandatory moves run on
their own: maintenance evacuation, hard-rule violations, capacity and hard overload, and the
``make_room`` moves of a recommendation that has such a move; the rest wait for approval),
``full`` (every move of a recommendation runs). Per VM: ``never`` (never moved: its moves
are skipped) or ``ask`` (its moves always wait for approval). The file (JSON, or YAML when
its name ends in ``.yaml``/``.yml``)::

    {"format": "xdrs-automation/1", "default": "partial",
     "clusters": {"vc1/domain-c7": "full"}, "vms": {"vc1/vm-42": "never"}}

:class:`PolicyFile` re-reads it when its modification time changes; a file that became
invalid is reported and the last valid policy stays in force. A change applies to the moves
already queued too: the executor asks :func:`verdict` again just before each one starts
(:mod:`xdrs.daemon.executor` says what happens to a move the new policy stops).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from collectors.events import Move, Recommendation

__all__ = ["LEVELS", "MANDATORY", "Policy", "PolicyError", "PolicyFile", "ask_reason",
           "load_policy", "mandatory", "parse_policy", "policy_object", "verdict"]  # fmt: skip

log = logging.getLogger(__name__)
Level = Literal["manual", "partial", "full"]
Verdict = Literal["run", "ask", "never"]
LEVELS: tuple[str, ...] = ("manual", "partial", "full")
VM_OVERRIDES: tuple[str, ...] = ("never", "ask")
MANDATORY = frozenset({"maintenance", "rule", "capacity", "overload"})
FORMAT = "xdrs-automation/1"
MAX_BYTES = 16 << 20


class PolicyError(ValueError):
    """An automation file or object that is not valid; the message names the field."""


@dataclass(frozen=True)
class Policy:
    """Automation level of each cluster (``default`` for the others) and VM overrides."""

    default: Level = "full"
    clusters: Mapping[str, Level] = field(default_factory=dict)
    vms: Mapping[str, Literal["never", "ask"]] = field(default_factory=dict)

    def level(self, cluster: str) -> Level:
        return self.clusters.get(cluster, self.default)


def mandatory(rec: Recommendation, m: Move) -> bool:
    """A move that must run (remediation), as opposed to an optional improvement."""
    if m.reason in MANDATORY:
        return True
    return m.reason == "make_room" and any(x.reason in MANDATORY for x in rec.moves)


def verdict(policy: Policy, rec: Recommendation, m: Move) -> Verdict:
    """``run`` (on its own), ``ask`` (wait for approval) or ``never`` (skip)."""
    override = policy.vms.get(m.vm)
    if override == "never":
        return "never"
    if override == "ask":
        return "ask"
    level = policy.level(rec.cluster)
    if level == "full" or (level == "partial" and mandatory(rec, m)):
        return "run"
    return "ask"


def ask_reason(policy: Policy, cluster: str, vm: str) -> str:
    """Why ``policy`` makes a move of ``vm`` in ``cluster`` wait for approval."""
    if policy.vms.get(vm) == "ask":
        return f"VM {vm} is set to always ask"
    return f"cluster automation is {policy.level(cluster)}"


def parse_policy(obj: Any, where: str = "automation") -> Policy:
    """A :class:`Policy` from a decoded JSON/YAML object; errors name ``where`` and the field."""
    if not isinstance(obj, dict):
        raise PolicyError(f"{where}: expected an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - {"format", "default", "clusters", "vms"})
    if unknown:
        raise PolicyError(f"{where}: unknown field {str(unknown[0])[:60]!r}")
    if obj.get("format", FORMAT) != FORMAT:
        raise PolicyError(f"{where}.format: expected {FORMAT!r}")
    default = _choice(obj.get("default", "full"), LEVELS, f"{where}.default")
    clusters = {
        k: _choice(v, LEVELS, f"{where}.clusters[{k!r}]")
        for k, v in _names(obj.get("clusters", {}), f"{where}.clusters").items()
    }
    vms = {k: _choice(v, VM_OVERRIDES, f"{where}.vms[{k!r}]")
           for k, v in _names(obj.get("vms", {}), f"{where}.vms").items()}  # fmt: skip
    return Policy(default, clusters, vms)  # type: ignore[arg-type]


def policy_object(policy: Policy) -> dict[str, Any]:
    """``policy`` as the file's JSON object (:func:`parse_policy` reads it back)."""
    return {"format": FORMAT, "default": policy.default, "clusters": dict(policy.clusters),
            "vms": dict(policy.vms)}  # fmt: skip


def _names(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise PolicyError(f"{where}: expected an object of id: value, got {type(obj).__name__}")
    for k in obj:
        if not isinstance(k, str) or not 1 <= len(k) <= 1024:
            raise PolicyError(f"{where}: expected ids of 1..1024 characters, got {str(k)[:60]!r}")
    return obj


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        shown = repr(value)[:60] if isinstance(value, str | int | float | bool) else type(value)
        raise PolicyError(f"{where}: expected one of {', '.join(allowed)}, got {shown}")
    return str(value)


def load_policy(path: Path) -> Policy:
    """Read and validate an automation file (JSON, or YAML by its suffix)."""
    with path.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # noqa: PLC0415 - lazy: an optional package, needed for YAML files only

            obj = yaml.safe_load(data)
        else:
            obj = json.loads(data)
    except ImportError:
        raise PolicyError(f"{path}: YAML needs the pyyaml package; use JSON") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PolicyError(f"{path}: not valid: {str(e)[:200]}") from None
    except Exception as e:  # yaml.YAMLError without importing yaml at module level
        raise PolicyError(f"{path}: not valid YAML: {str(e)[:200]}") from None
    return parse_policy(obj, str(path))


class PolicyFile:
    """A policy read from ``path`` (or fixed, without one), re-read when the file changes."""

    def __init__(self, path: Path | None = None, policy: Policy | None = None) -> None:
        self.path = path
        self._mtime: int | None = None
        self.policy = policy or Policy()
        self.error = ""
        if path is not None:
            self.policy = load_policy(path)
            self._mtime = path.stat().st_mtime_ns

    def set(self, policy: Policy) -> None:
        """Replace the policy at run time (the HTTP API); it stays in force until the file,
        if there is one, changes again."""
        self.policy = policy
        if self.path is not None:
            with contextlib.suppress(OSError):
                self._mtime = self.path.stat().st_mtime_ns

    def current(self) -> Policy:
        """The policy in force, re-read first if the file's modification time changed."""
        if self.path is None:
            return self.policy
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._mtime = mtime
                self.policy, self.error = load_policy(self.path), ""
                log.warning("automation policy reloaded from %s", self.path)
        except (OSError, PolicyError) as e:
            self.error = str(e)
            log.warning("automation policy not reloaded, the last valid one stays: %s", e)
        return self.policy
