"""Options shared by several commands, declared once, and the parsers that check them.

Every numeric option is parsed by :func:`integer` or :func:`number`: finite, in range, or
one ``xdrs: error: --option: ...`` line and exit status 2, before anything runs. Options
that feed an argument dataclass (``BalanceArgs``, ``EngineArgs``, ...) are checked a second
time by the dataclass's own ``validate()`` through :func:`checked`, so a range is declared
once, in the dataclass, and the CLI names the option in the message.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from xdrs.bus.config import BusConfig, Topics
from xdrs.errors import UsageError

__all__ = [
    "PASSWORD_ENV",
    "Parser",
    "add_bus_args",
    "add_ratio_args",
    "add_seed",
    "add_threshold",
    "add_tls_args",
    "address",
    "bus_config",
    "checked",
    "integer",
    "number",
    "port",
]

PASSWORD_ENV = "XDRS_KAFKA_SASL_PASSWORD"
MAX_INT = 2**63 - 1  # numpy's int64, where every count ends up
T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """Turns argparse's complaints into :class:`UsageError` (``--option: message``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(re.sub(r"^argument (-[\w-]+)(?:/-[\w-]+)*: ", r"\1: ", message))


def integer(lo: int = 0, hi: int = MAX_INT) -> Callable[[str], int]:
    """Parser of an integer in ``lo..hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            want = f">= {lo}" if hi == MAX_INT else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"expected an integer {want}, got {text!r}")
        return value

    return parse


def number(lo: float = 0.0, hi: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """Parser of a finite number ``>= lo`` (``> lo`` if ``above``) and ``<= hi``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > lo if above else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            want = f"{'>' if above else '>='} {lo:g}" + (f" and <= {hi:g}" if hi < math.inf else "")
            raise argparse.ArgumentTypeError(f"expected a finite number {want}, got {text!r}")
        return value

    return parse


def port(text: str) -> int:
    """A TCP port, 0 meaning a free one."""
    return integer(0, 65535)(text)


def checked(factory: Callable[..., T], names: Mapping[str, str], **fields: Any) -> T:
    """``factory(**fields)`` validated, its errors naming the options in ``names``.

    ``names`` maps a dataclass field to its option (``{"max_moves": "--max-moves"}``); the
    dataclass's ``validate()`` says ``max_moves: expected >= 0``, the user reads
    ``--max-moves: expected >= 0``.
    """
    try:
        value = factory(**fields)
        validate = getattr(value, "validate", None)
        if validate is not None:
            validate()
    except ValueError as e:
        message = str(e)
        for field, option in names.items():
            message = re.sub(rf"\b{field}\b", option, message)
        raise UsageError(message) from None
    return value


def add_threshold(p: argparse.ArgumentParser, default: int | None = 3) -> None:
    shown = "3" if default is None else str(default)
    p.add_argument(
        "--threshold",
        type=integer(1, 5),
        default=default,
        metavar="1..5",
        help=f"DRS migration threshold, 1 (mandatory moves only) .. 5 (default {shown})",
    )


def add_link_gbps(p: argparse.ArgumentParser, what: str) -> None:
    """``--link-gbps``: the migration link's bandwidth (10 Gbit/s unless given); ``what``
    says what it is used for. The command's dataclass checks its range."""
    p.add_argument("--link-gbps", type=number(above=True), default=10.0, metavar="GBIT/S",
                   help=f"migration link bandwidth, {what} (default 10)")  # fmt: skip


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=integer(0), default=0, metavar="N", help="random seed (>= 0)")


def add_ratio_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cpu-ratio", type=number(above=True), default=4.0, help="vCPUs per core (default 4)"
    )
    p.add_argument(
        "--mem-ratio", type=number(above=True), default=1.0, help="memory over-commit (1)"
    )


def add_bus_args(p: argparse.ArgumentParser) -> None:
    """Where the Kafka bus is and how to talk to it (every command that uses the bus)."""
    p.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT[,...]",
        help="Kafka to use (default: start the embedded broker)",
    )
    p.add_argument("--topic-prefix", default="xdrs.", metavar="PREFIX")
    p.add_argument("--client-id", metavar="NAME", help="Kafka client id (default: xdrs-<command>)")
    p.add_argument(
        "--partitions",
        type=integer(1, 10_000),
        default=4,
        metavar="N",
        help="partitions of the topics xdrs creates (engine scale-out unit)",
    )
    p.add_argument(
        "--kafka-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="kafka-python client setting, e.g. security_protocol=SASL_SSL; the SASL "
        f"password comes from ${PASSWORD_ENV}, never the command line",
    )


def bus_config(args: argparse.Namespace, client_id: str, bootstrap: str) -> BusConfig:
    """The bus options of ``args`` as a :class:`BusConfig` (the SASL password from the env)."""
    extra: dict[str, Any] = {}
    for item in args.kafka_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--kafka-option: expected KEY=VALUE, got {item!r}")
        if "password" in key:
            raise UsageError(f"--kafka-option {key}: pass secrets in ${PASSWORD_ENV}")
        extra[key] = int(value) if value.isdigit() else value
    if os.environ.get(PASSWORD_ENV):
        extra["sasl_plain_password"] = os.environ[PASSWORD_ENV]
    try:
        return BusConfig(
            bootstrap,
            client_id=args.client_id or client_id,
            topics=Topics(args.topic_prefix),
            partitions=args.partitions,
            fast_groups=not args.bootstrap_servers,
            extra=extra,
        )
    except ValueError as e:
        raise UsageError(f"--bootstrap-servers/--kafka-option: {e}") from None


def add_tls_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """TLS verification (on unless ``--insecure``, a CA bundle optional) and a request timeout:
    the options of every platform connection; ``prefix`` names another server's (e.g.
    ``prometheus-``: ``--prometheus-ca-bundle``, ``--prometheus-insecure``, ...)."""
    tls = p.add_mutually_exclusive_group()
    tls.add_argument(f"--{prefix}ca-bundle", metavar="FILE", help="PEM file of trusted CAs")
    tls.add_argument(
        f"--{prefix}insecure",
        action="store_true",
        help="do not verify the server's TLS certificate",
    )
    p.add_argument(
        f"--{prefix}timeout",
        type=number(above=True),
        default=60.0,
        metavar="SECONDS",
        help="per-request timeout",
    )


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:PORT``: loopback) of a listening socket."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)
