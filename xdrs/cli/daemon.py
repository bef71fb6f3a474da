"""The rebalancing daemon's options, declared once for every command that runs it.

``--automation FILE`` (levels per cluster and VM; default ``full`` everywhere),
``--per-host``, ``--per-cluster``, ``--max-in-flight``, ``--rate`` (the platform's
defaults from :data:`~xdrs.daemon.limits.PLATFORM_LIMITS`), ``--max-age``,
``--metric-age``, ``--dry-run``, the HTTP API: ``--api [HOST:]PORT`` with
``--api-token-file FILE`` (or ``$XDRS_API_TOKEN``), and the daemon's Prometheus metrics:
``--metrics-addr [HOST:]PORT`` (default: none; host 127.0.0.1 unless given).
:func:`check_daemon_args` builds ``args.limits``, ``args.automation_policy`` and
``args.api_config``; every mistake is one usage error naming the option.
:func:`daemon_metrics` serves :class:`~xdrs.daemon.exporter.DaemonMetrics`' registry.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from xdrs.cli.api_client import api_token
from xdrs.cli.options import checked, integer, number
from xdrs.daemon.access import ApiConfig
from xdrs.daemon.limits import PLATFORM_LIMITS
from xdrs.daemon.policy import PolicyError, PolicyFile
from xdrs.errors import UsageError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["add_daemon_args", "check_daemon_args", "daemon_metrics"]

log = logging.getLogger(__name__)
LIMIT_NAMES = {"per_host": "--per-host", "per_cluster": "--per-cluster",
               "total": "--max-in-flight", "rate_per_s": "--rate", "max_age_s": "--max-age",
               "metric_age_s": "--metric-age", "min_benefit": "--min-benefit",
               "vm_cooldown_s": "--vm-cooldown", "host_hold_s": "--host-hold"}  # fmt: skip


def _api_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text[:60]!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_daemon_args(p: argparse.ArgumentParser, platform: str, *, metrics: bool = True,
                    per_host_note: str = "") -> None:  # fmt: skip
    """Declare the daemon's options; ``platform`` names its default limits (the check may
    choose another preset: ``args.daemon_platform``, e.g. by the vMotion link). ``metrics``:
    declare ``--metrics-addr`` (the demo serves the daemon's metrics with the engine's)."""
    lim = PLATFORM_LIMITS[platform]
    p.set_defaults(daemon_platform=platform, per_host=None, metrics_addr=None)
    p.add_argument("--automation", type=Path, metavar="FILE",
                   help="automation levels (JSON or YAML; default: full everywhere)")  # fmt: skip
    p.add_argument("--per-host", dest="per_host", type=integer(1, 100_000), metavar="N",
                   help=f"migrations in flight per host (default {lim.per_host}"
                   f"{per_host_note})")  # fmt: skip
    for flag, dest, kind, default, what in (
        ("--per-cluster", "per_cluster", integer(1, 100_000), lim.per_cluster,
         "in flight per cluster"),
        ("--max-in-flight", "max_in_flight", integer(1, 100_000), lim.total, "in flight in all"),
        ("--rate", "rate", number(0.0), lim.rate_per_s, "started per second (0: no limit)"),
    ):  # fmt: skip
        p.add_argument(flag, dest=dest, type=kind, default=default, metavar="N",
                       help=f"migrations {what} (default {default:g})")  # fmt: skip
    p.add_argument("--max-age", type=number(above=True), default=lim.max_age_s,
                   metavar="SECONDS", help="recommendations older than this are not started "
                   f"(default {lim.max_age_s:g})")  # fmt: skip
    p.add_argument("--metric-age", type=number(above=True), default=lim.metric_age_s,
                   metavar="SECONDS", help="no move to or from a host whose metrics are older "
                   f"(default {lim.metric_age_s:g})")  # fmt: skip
    p.add_argument("--min-benefit", type=number(0.0), default=lim.min_benefit,
                   metavar="FRACTION", help="a plan must cut the objective by this share of "
                   "it, else its moves are skipped unless one is mandatory (0: off; default "
                   f"{lim.min_benefit:g})")  # fmt: skip
    p.add_argument("--vm-cooldown", type=number(0.0), default=lim.vm_cooldown_s,
                   metavar="SECONDS", help="a moved VM is not moved again by another "
                   f"recommendation before this (default {lim.vm_cooldown_s:g})")  # fmt: skip
    p.add_argument("--host-hold", type=number(0.0), default=lim.host_hold_s,
                   metavar="SECONDS", help="a host that received or lost a VM takes no "
                   "move of another recommendation before this (default "
                   f"{lim.host_hold_s:g})")  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be done, move by move; do nothing")  # fmt: skip
    p.add_argument("--api", type=_api_addr, metavar="[HOST:]PORT",
                   help="serve the HTTP JSON API (docs/api/openapi.yaml; default host "
                   "127.0.0.1)")  # fmt: skip
    p.add_argument("--api-token-file", type=Path, metavar="FILE",
                   help="the API's bearer token (first line; or $XDRS_API_TOKEN); required "
                   "beyond loopback")  # fmt: skip
    if metrics:
        p.add_argument("--metrics-addr", type=_api_addr, metavar="[HOST:]PORT",
                       help="serve the daemon's Prometheus /metrics (xdrs_daemon_*) here "
                       "(default: none; host 127.0.0.1 unless given)")  # fmt: skip


@contextlib.contextmanager
def daemon_metrics(args: argparse.Namespace) -> Iterator[CollectorRegistry | None]:
    """The registry served on ``--metrics-addr`` while in use (``None`` without the
    option); a taken port is a usage error naming the option."""
    if args.metrics_addr is None:
        yield None
        return
    # lazy: prometheus_client loads only for the commands that run the daemon (as the bus)
    from xdrs.daemon.exporter import MetricsEndpoint  # noqa: PLC0415

    try:
        endpoint = MetricsEndpoint(*args.metrics_addr)
    except OSError as e:
        raise UsageError(f"--metrics-addr: {e.strerror or e}") from None
    log.warning("rebalancing daemon: metrics on %s", endpoint.url)
    try:
        yield endpoint.registry
    finally:
        endpoint.close()


def check_daemon_args(args: argparse.Namespace, timeout_s: float | None = None,
                      timeout_option: str = "--task-timeout") -> None:  # fmt: skip
    """Build ``args.limits``, ``args.automation_policy`` and ``args.api_config``;
    ``timeout_s`` (the daemon's, from the platform's ``timeout_option``) if given."""
    base = PLATFORM_LIMITS[args.daemon_platform]
    args.limits = checked(
        lambda **kw: replace(base, **kw), LIMIT_NAMES | {"timeout_s": timeout_option},
        per_host=args.per_host if args.per_host is not None else base.per_host,
        per_cluster=args.per_cluster, total=args.max_in_flight,
        rate_per_s=args.rate, max_age_s=args.max_age, metric_age_s=args.metric_age,
        min_benefit=args.min_benefit, vm_cooldown_s=args.vm_cooldown,
        host_hold_s=args.host_hold,
        timeout_s=timeout_s if timeout_s is not None else base.timeout_s,
    )  # fmt: skip
    try:
        args.automation_policy = PolicyFile(args.automation) if args.automation else None
    except PolicyError as e:
        raise UsageError(f"--automation: {e}") from None
    except OSError as e:
        raise UsageError(f"--automation: {e.filename}: {e.strerror}") from None
    args.api_config = None
    if args.api is None:
        if args.api_token_file is not None:
            raise UsageError("--api-token-file: needs --api")
        return
    host, port = args.api
    args.api_config = ApiConfig(host, port, api_token(args.api_token_file))
    try:
        args.api_config.validate()
    except ValueError as e:
        raise UsageError(f"--api: {e}") from None
