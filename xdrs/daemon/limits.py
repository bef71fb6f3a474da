"""Concurrency and rate limits, cooldowns, holds and back-off: when a move may start.

:class:`Gate` counts migrations in flight per host (as source or destination), per cluster
and in total, spends tokens of a global rate limit, and remembers what must wait: a VM moved
recently (``vm_cooldown_s``), a host that just received or lost VMs (``host_hold_s``; a
recommendation's own moves are not held by each other), and the VM and hosts of a failed
migration (``backoff_s``). Times are seconds of the daemon's clock, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PLATFORM_LIMITS", "Gate", "Limits"]


@dataclass(frozen=True)
class Limits:
    """The daemon's limits (times in seconds of its clock).

    per_host : migrations in flight touching one host (source or destination), >= 1.
    per_cluster : migrations in flight in one cluster, >= 1.
    total : migrations in flight in all clusters, >= 1.
    rate_per_s : migrations started per second over all clusters (0: no limit).
    burst : starts the rate limit lets through at once.
    vm_cooldown_s : a moved VM is not moved again (by another recommendation) before this.
    host_hold_s : a host that received or lost a VM takes no move of another recommendation.
    backoff_s : the VM and hosts of a failed migration are left alone this long.
    timeout_s : a migration without a result after this is recorded failed (``Timeout``).
    metric_age_s : a move to or from a host whose last metrics are older is skipped.
    max_age_s : a recommendation older than this is not started (its moves are skipped).
    min_benefit : the margin a plan must beat the current state by, relative to it: a
        recommendation whose ``objective_before - objective_after`` is below ``min_benefit
        * objective_before`` (or not positive) is skipped ``below-margin``, unless it has a
        mandatory move (0: no margin). 0..1.
    """

    per_host: int = 8
    per_cluster: int = 32
    total: int = 64
    rate_per_s: float = 0.0
    burst: int = 8
    vm_cooldown_s: float = 600.0
    host_hold_s: float = 120.0
    backoff_s: float = 600.0
    timeout_s: float = 3600.0
    metric_age_s: float = 300.0
    max_age_s: float = 600.0
    min_benefit: float = 0.05

    def validate(self) -> None:
        for name in ("per_host", "per_cluster", "total", "burst"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 1 <= v <= 100_000:
                raise ValueError(f"{name}: expected an integer 1..100000, got {v!r}")
        for name in ("rate_per_s", "vm_cooldown_s", "host_hold_s", "backoff_s"):
            v = getattr(self, name)
            if not 0 <= v < 1e9:
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")
        if not 0 <= self.min_benefit < 1:
            raise ValueError(f"min_benefit: expected a number 0..1, got {self.min_benefit!r}")
        for name in ("timeout_s", "metric_age_s", "max_age_s"):
            v = getattr(self, name)
            if not 0 < v < 1e12:
                raise ValueError(f"{name}: expected a number > 0, got {v!r}")


# vCenter: 8 vMotions per host on 10 GbE, 4 on 1 GbE; Nova: max_concurrent_live_migrations
# per compute node, default 1.
PLATFORM_LIMITS = {
    "vsphere-10g": Limits(per_host=8),
    "vsphere-1g": Limits(per_host=4),
    "nova": Limits(per_host=1),
    # the replay's seconds: it publishes metrics every 300 s of its time
    "replay": Limits(per_host=8, vm_cooldown_s=600.0, host_hold_s=120.0, metric_age_s=3600.0),
}


@dataclass
class _Mark:
    until: float
    rec: str  # the recommendation that set it (its own moves are not held by it)
    why: str


class Gate:
    """What is in flight and what must wait; one per daemon (not thread-safe: the daemon's
    loop is its only user)."""

    def __init__(self, limits: Limits) -> None:
        limits.validate()
        self.limits = limits
        self.host: dict[str, int] = {}
        self.cluster: dict[str, int] = {}
        self.total = 0
        self._tokens = float(limits.burst)
        self._refilled: float | None = None
        self._vm: dict[str, _Mark] = {}
        self._hosts: dict[str, _Mark] = {}

    # ---- held back (the move is skipped, with this reason) ----------------------------------

    def held(self, rec: str, vm: str, hosts: tuple[str, str], now: float) -> str:
        """Why this move must not run now (cooldown, hold, back-off), or ``""``."""
        mark = self._vm.get(vm)
        if mark is not None and mark.until > now and mark.rec != rec:
            return f"held: VM {vm} {mark.why} ({mark.until - now:.0f} s left)"
        for h in hosts:
            mark = self._hosts.get(h)
            if mark is not None and mark.until > now and mark.rec != rec:
                return f"held: host {h} {mark.why} ({mark.until - now:.0f} s left)"
        return ""

    # ---- waiting (the move stays queued) ----------------------------------------------------

    def busy(self, cluster: str, hosts: tuple[str, str], now: float) -> str:
        """Which limit keeps this move waiting now, or ``""`` if it may start."""
        lim = self.limits
        for h in hosts:
            if self.host.get(h, 0) >= lim.per_host:
                return f"per-host limit ({lim.per_host}) on {h}"
        if self.cluster.get(cluster, 0) >= lim.per_cluster:
            return f"per-cluster limit ({lim.per_cluster})"
        if self.total >= lim.total:
            return f"total limit ({lim.total})"
        if lim.rate_per_s > 0:
            self._refill(now)
            if self._tokens < 1.0:
                return f"rate limit ({lim.rate_per_s:g}/s)"
        return ""

    def _refill(self, now: float) -> None:
        lim = self.limits
        if self._refilled is not None:
            self._tokens = min(float(lim.burst),
                               self._tokens + (now - self._refilled) * lim.rate_per_s)  # fmt: skip
        self._refilled = now

    def start(self, cluster: str, hosts: tuple[str, str], now: float, *,
              spend: bool = True) -> None:  # fmt: skip
        """One more migration in flight; ``spend``: it is a new start (a rate token)."""
        for h in hosts:
            self.host[h] = self.host.get(h, 0) + 1
        self.cluster[cluster] = self.cluster.get(cluster, 0) + 1
        self.total += 1
        if spend and self.limits.rate_per_s > 0:
            self._refill(now)
            self._tokens -= 1.0

    def end(self, cluster: str, hosts: tuple[str, str]) -> None:
        for h in hosts:
            self.host[h] -= 1
        self.cluster[cluster] -= 1
        self.total -= 1

    # ---- after a result ---------------------------------------------------------------------

    def moved(self, rec: str, vm: str, hosts: tuple[str, str], now: float) -> None:
        lim = self.limits
        _mark(self._vm, vm, _Mark(now + lim.vm_cooldown_s, rec, "was moved recently"))
        src, dst = hosts
        _mark(self._hosts, src, _Mark(now + lim.host_hold_s, rec, "lost a VM recently"))
        _mark(self._hosts, dst, _Mark(now + lim.host_hold_s, rec, "received a VM recently"))

    def failed(self, rec: str, vm: str, hosts: tuple[str, str], now: float) -> None:
        until = now + self.limits.backoff_s
        _mark(self._vm, vm, _Mark(until, "", "is backed off after a failed migration"))
        for h in hosts:
            _mark(self._hosts, h, _Mark(until, "", "is backed off after a failed migration"))


def _mark(marks: dict[str, _Mark], key: str, mark: _Mark) -> None:
    """Set ``mark`` unless one that lasts longer is in force (a success reported after its
    timeout must not shorten the back-off the timeout set)."""
    old = marks.get(key)
    if old is None or old.until <= mark.until:
        marks[key] = mark
