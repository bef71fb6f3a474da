"""What-if edits of a scenario: fewer or more hosts, scaled demand, hosts into maintenance."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from collectors.replay.traces import Trace
from xdrs.limits import MAX_HOSTS
from xdrs.sim.setup import Datacenter

__all__ = ["WhatIf", "WhatIfError", "apply_whatif", "host_count", "parse_maintenance"]


class WhatIfError(ValueError):
    """A what-if edit is malformed or cannot apply."""


@dataclass(frozen=True)
class WhatIf:
    """Edits: ``remove_hosts``/``add_hosts`` (count), ``scale`` (demand factor, clipped to
    100 %), ``maintenance`` (host indices) from ``maintenance_at`` seconds on: those hosts
    are emptied at the next decision and receive nothing after."""

    remove_hosts: int = 0
    add_hosts: int = 0
    scale: float = 1.0
    maintenance: tuple[int, ...] = ()
    maintenance_at: float = 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace, host_names: Sequence[str] = ()) -> WhatIf:
        text = args.maintenance
        hosts, at = parse_maintenance(text, host_names) if text else ((), 0.0)
        w = cls(args.remove_hosts, args.add_hosts, args.scale_demand, hosts, at)
        if w.remove_hosts < 0 or w.add_hosts < 0:
            raise WhatIfError("--remove-hosts/--add-hosts: expected a count >= 0")
        if not w.scale > 0:
            raise WhatIfError(f"--scale-demand: expected a factor > 0, got {w.scale}")
        return w

    def blocked(self, n_hosts: int, t: float) -> NDArray[np.bool_]:
        """(H,) hosts in maintenance at time ``t``."""
        out = np.zeros(n_hosts, dtype=bool)
        if self.maintenance and t >= self.maintenance_at:
            out[list(self.maintenance)] = True
        return out


def parse_maintenance(text: str, names: Sequence[str] = ()) -> tuple[tuple[int, ...], float]:
    """``"0-9,15@20"`` -> ((0, ..., 9, 15), 72000.0); host ids from ``names`` also work."""
    hosts_s, sep, hour_s = text.partition("@")
    index = {n: i for i, n in enumerate(names)}
    try:
        hour = float(hour_s)
        hosts: list[int] = []
        for part in hosts_s.split(","):
            if part in index:
                hosts.append(index[part])
                continue
            lo, dash, hi = part.partition("-")
            hosts += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    except ValueError:
        hosts, hour = [], -1.0
    if not sep or hour < 0 or not hosts or min(hosts) < 0:
        raise WhatIfError(f"--maintenance: expected HOSTS@HOUR such as 0-9,15@20, got {text!r}")
    return tuple(sorted(set(hosts))), hour * 3600.0


def host_count(w: WhatIf, n_hosts: int) -> int:
    """Hosts after the edits, checked against :data:`~xdrs.limits.MAX_HOSTS`."""
    n = n_hosts - w.remove_hosts + w.add_hosts
    if n <= 0:
        raise WhatIfError(f"what-if leaves {n} hosts")
    if n > MAX_HOSTS:
        raise WhatIfError(f"what-if makes {n:,} hosts; the simulator takes at most {MAX_HOSTS:,}")
    return n


def apply_whatif(w: WhatIf, dc: Datacenter, trace: Trace) -> tuple[Datacenter, Trace]:
    """The data centre and trace with the host-count and demand edits applied."""
    n = host_count(w, dc.n_hosts)
    if w.maintenance and max(w.maintenance) >= n:
        raise WhatIfError(f"--maintenance: host {max(w.maintenance)} does not exist ({n} hosts)")
    if w.scale != 1.0:
        trace = replace(trace, cpu_pct=np.minimum(trace.cpu_pct * w.scale, 100.0))
    return replace(dc, n_hosts=n), trace
