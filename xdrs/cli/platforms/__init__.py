"""The platform registry: ``xdrs collect <platform>`` and ``xdrs actuate <platform>``.

One explicit dict, :data:`PLATFORMS`; registering a name twice raises. Each entry names the
functions that declare a platform's options on its ``collect`` (and, if it has a separate
actuator, ``actuate``) sub-parser and set the command to run; those functions live in the
platform's command module here and import the platform package
(``collectors/<platform>/``) only when the command runs. Adding a platform (OpenStack) adds
its package, its command module and one :func:`add` line below.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xdrs.cli.platforms import openstack, replay, vsphere

__all__ = ["PLATFORMS", "Platform", "add", "register"]

Declare = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Platform:
    """A platform's commands: ``collect`` (its inventory and metrics source on the bus) and,
    when moves are applied by a process of their own, ``actuate`` (its mover)."""

    name: str
    collect_help: str
    collect: Declare
    actuate_help: str = ""
    actuate: Declare | None = None


PLATFORMS: dict[str, Platform] = {}


def add(platform: Platform) -> None:
    """Register ``platform``; a name registered twice is an error, not a replacement."""
    if platform.name in PLATFORMS:
        raise ValueError(f"platform {platform.name!r} is already registered")
    PLATFORMS[platform.name] = platform


add(Platform("replay", replay.HELP, replay.collect))
add(
    Platform(
        "vsphere", vsphere.COLLECT_HELP, vsphere.collect, vsphere.ACTUATE_HELP, vsphere.actuate
    )
)
add(
    Platform(
        "openstack",
        openstack.COLLECT_HELP,
        openstack.collect,
        openstack.ACTUATE_HELP,
        openstack.actuate,
    )
)


def register(sub: Any) -> None:
    """Add ``collect <platform>`` and ``actuate <platform>`` for every registered platform."""
    top = sub.add_parser("collect", help="publish a platform's inventory and metrics to Kafka")
    group = top.add_subparsers(dest="collect_platform", required=True, parser_class=type(top))
    for p in PLATFORMS.values():
        p.collect(group.add_parser(p.name, help=p.collect_help))
    top = sub.add_parser("actuate", help="apply recommendations on a platform")
    group = top.add_subparsers(dest="actuate_platform", required=True, parser_class=type(top))
    for p in PLATFORMS.values():
        if p.actuate is not None:
            p.actuate(group.add_parser(p.name, help=p.actuate_help))
