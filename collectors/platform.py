"""What the rest of xdrs knows of a platform: two small Protocols, declared once.

A platform (trace replay, vSphere, OpenStack) is one package under ``collectors/`` that
provides a :class:`Source` (publishes inventory and metrics through a
:class:`collectors.events.Sink`) and a :class:`Mover` (applies one move of a
recommendation). The engine reads only the bus; the actuator daemon and the command line
type against these Protocols, never a platform's classes, so adding a platform adds a
package and one entry in the command line's platform registry (``xdrs.cli.platforms``).
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from collectors.events import ActionResult, Move, Recommendation

__all__ = ["Clock", "Mover", "Source"]


@runtime_checkable
class Source(Protocol):
    """A platform's inventory and metrics source.

    ``run`` publishes the inventory, then metrics (and inventory changes) until ``stop``
    is set or the source has nothing more to send. The caller owns ``stop``: one event is
    shared by the signal handlers and every thread of a process, which a ``stop()`` method
    on each source could not give.
    """

    def run(self, stop: threading.Event) -> None: ...


@runtime_checkable
class Mover(Protocol):
    """A platform's migration call.

    ``owns`` says whether a cluster id is this platform endpoint's (one vCenter, one
    replayed data centre); ``move`` applies one move of ``rec`` and returns its result,
    failures included (never raises for a refused move).
    """

    def owns(self, cluster: str) -> bool: ...

    def move(self, rec: Recommendation, m: Move) -> ActionResult: ...


class Clock(Protocol):
    """Seconds of platform time: ``monotonic()`` reads it, ``sleep(s)`` waits ``s`` of it
    (the replay runs it faster than the wall clock; tests run a simulated one)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...
