"""VM-VM and VM-host placement rules, as sparse membership arrays.

A VM may belong to any number of groups, so membership is stored as pairs
``(vm index, group index)`` rather than one column per VM. Masks are computed for a
subset of VMs at a time (never the full V x H matrix, which does not fit at 100,000 VMs x
10,000 hosts).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

__all__ = ["MUST", "MUST_NOT", "SHOULD", "SHOULD_NOT", "RuleError", "Rules"]

MUST, MUST_NOT, SHOULD, SHOULD_NOT = 0, 1, 2, 3
KIND_NAMES = ("must", "must_not", "should", "should_not")

IntA = NDArray[np.int64]
BoolA = NDArray[np.bool_]


class RuleError(ValueError):
    """A rule refers to a VM, host or kind that does not exist."""


def _i(a: object) -> IntA:
    return np.asarray(a, dtype=np.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class Rules:
    """Placement rules.

    Attributes
    ----------
    vv_vm, vv_group : (P,) int64
        VM-VM group membership pairs.
    vv_anti : (G,) bool
        True: anti-affinity (members on distinct hosts); False: affinity (members together).
    vv_names : tuple of str, length G
    vh_vm, vh_rule : (Q,) int64
        VM-host rule membership pairs.
    vh_hosts : (K, H) bool
        Host group of each VM-host rule.
    vh_kind : (K,) int64
        MUST, MUST_NOT (hard, masks) or SHOULD, SHOULD_NOT (soft, scores).
    vh_names : tuple of str, length K
    """

    vv_vm: IntA
    vv_group: IntA
    vv_anti: BoolA
    vv_names: tuple[str, ...]
    vh_vm: IntA
    vh_rule: IntA
    vh_hosts: BoolA
    vh_kind: IntA
    vh_names: tuple[str, ...]

    @classmethod
    def empty(cls, n_hosts: int = 0) -> Rules:
        z = np.zeros(0, np.int64)
        return cls(z, z, np.zeros(0, bool), (), z, z, np.zeros((0, n_hosts), bool), z, ())

    @classmethod
    def build(
        cls,
        n_hosts: int,
        vv: list[tuple[str, bool, list[int]]] | None = None,
        vh: list[tuple[str, int, list[int], list[int]]] | None = None,
    ) -> Rules:
        """Build from lists: ``vv`` = (name, anti, vms); ``vh`` = (name, kind, vms, hosts)."""
        vv, vh = vv or [], vh or []
        hosts = np.zeros((len(vh), n_hosts), bool)
        for k, (_, _, _, hs) in enumerate(vh):
            hosts[k, _i(hs)] = True
        return cls(
            vv_vm=_i([v for _, _, vms in vv for v in vms]),
            vv_group=_i([g for g, (_, _, vms) in enumerate(vv) for _ in vms]),
            vv_anti=np.array([a for _, a, _ in vv], dtype=bool),
            vv_names=tuple(n for n, _, _ in vv),
            vh_vm=_i([v for _, _, vms, _ in vh for v in vms]),
            vh_rule=_i([k for k, (_, _, vms, _) in enumerate(vh) for _ in vms]),
            vh_hosts=hosts,
            vh_kind=_i([kind for _, kind, _, _ in vh]),
            vh_names=tuple(n for n, _, _, _ in vh),
        )

    def validate(self, n_vms: int, n_hosts: int) -> None:
        g, k = len(self.vv_names), len(self.vh_names)
        checks = [
            ("vv_vm", self.vv_vm, n_vms),
            ("vv_group", self.vv_group, g),
            ("vh_vm", self.vh_vm, n_vms),
            ("vh_rule", self.vh_rule, k),
            ("vh_kind", self.vh_kind, 4),
        ]
        for name, arr, upper in checks:
            if arr.size and (arr.min() < 0 or arr.max() >= upper):
                raise RuleError(f"rules.{name}: index out of range 0..{upper - 1}")
        if self.vh_hosts.shape != (k, n_hosts):
            raise RuleError(f"rules.vh_hosts: expected shape {(k, n_hosts)}")
        if self.vv_anti.shape != (g,):
            raise RuleError(f"rules.vv_anti: expected shape ({g},)")
        _check_once("vv", self.vv_vm, self.vv_group, self.vv_names, n_vms)
        _check_once("vh", self.vh_vm, self.vh_rule, self.vh_names, n_vms)

    # ---- derived ---------------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        return self.vv_vm.size == 0 and self.vh_vm.size == 0

    @cached_property
    def _hard_pairs(self) -> tuple[IntA, IntA]:
        hard = self.vh_kind[self.vh_rule] <= MUST_NOT
        return self.vh_vm[hard], self.vh_rule[hard]

    @cached_property
    def _soft_pairs(self) -> tuple[IntA, IntA]:
        soft = self.vh_kind[self.vh_rule] >= SHOULD
        return self.vh_vm[soft], self.vh_rule[soft]

    def constrained(self, n_vms: int) -> BoolA:
        """(V,) bool: VMs that appear in any rule."""
        out = np.zeros(n_vms, bool)
        out[self.vv_vm] = True
        out[self.vh_vm] = True
        return out

    def host_allowed(self, vms: IntA, n_hosts: int) -> BoolA:
        """(n, H) bool: hosts allowed to each VM by the hard VM-host rules."""
        out = np.ones((len(vms), n_hosts), bool)
        pv, pr = self._hard_pairs
        rows, sel = _rows_of(vms, pv)
        if rows.size:
            ok = self.vh_hosts[pr[sel]] ^ (self.vh_kind[pr[sel]] == MUST_NOT)[:, None]
            np.logical_and.at(out, rows, ok)
        return out

    def soft_violations(self, vms: IntA, n_hosts: int) -> NDArray[np.float64]:
        """(n, H) float: number of should/should-not rules each VM would break on each host."""
        out = np.zeros((len(vms), n_hosts))
        pv, pr = self._soft_pairs
        rows, sel = _rows_of(vms, pv)
        if rows.size:
            bad = ~(self.vh_hosts[pr[sel]] ^ (self.vh_kind[pr[sel]] == SHOULD_NOT)[:, None])
            np.add.at(out, rows, bad.astype(np.float64))
        return out

    def group_counts(self, placement: IntA, n_hosts: int) -> NDArray[np.int64]:
        """(G, H) int: members of each VM-VM group on each host."""
        counts = np.zeros((len(self.vv_names), n_hosts), np.int64)
        np.add.at(counts, (self.vv_group, placement[self.vv_vm]), 1)
        return counts

    def group_allowed(self, vms: IntA, placement: IntA, counts: NDArray[np.int64]) -> BoolA:
        """(n, H) bool: hosts allowed by VM-VM rules, given current member counts.

        Anti-affinity: no other member on the host. Affinity: another member is on the host
        (a group whose other members are nowhere constrains nothing).
        """
        n_hosts = counts.shape[1]
        out = np.ones((len(vms), n_hosts), bool)
        rows, sel = _rows_of(vms, self.vv_vm)
        if not rows.size:
            return out
        g = self.vv_group[sel]
        others = counts[g].copy()
        others[np.arange(len(g)), placement[vms[rows]]] -= 1
        anti = self.vv_anti[g][:, None]
        ok = np.where(anti, others == 0, (others > 0) | (others.sum(axis=1) == 0)[:, None])
        np.logical_and.at(out, rows, ok)
        return out


def _check_once(kind: str, vm: IntA, rule: IntA, names: tuple[str, ...], n_vms: int) -> None:
    """Raise if a rule lists a VM twice (it would conflict with itself under anti-affinity)."""
    if not vm.size:
        return
    pairs, counts = np.unique(rule * max(n_vms, 1) + vm, return_counts=True)
    if (counts > 1).any():
        r, v = divmod(int(pairs[np.argmax(counts > 1)]), max(n_vms, 1))
        raise RuleError(f"rules.{kind}: VM {v} is listed twice in rule {names[r]!r}")


def _rows_of(vms: IntA, pair_vm: IntA) -> tuple[IntA, IntA]:
    """For pairs whose VM is in ``vms``: (row in ``vms``, pair index)."""
    if pair_vm.size == 0 or len(vms) == 0:
        z = np.zeros(0, np.int64)
        return z, z
    order = np.argsort(vms, kind="stable")
    pos = np.searchsorted(vms[order], pair_vm)
    pos = np.minimum(pos, len(vms) - 1)
    hit = vms[order][pos] == pair_vm
    sel = np.flatnonzero(hit)
    # a VM listed twice in vms gets the rule on its first occurrence only; callers pass sets
    return order[pos[sel]].astype(np.int64), sel.astype(np.int64)
