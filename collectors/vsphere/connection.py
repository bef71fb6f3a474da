"""A vCenter session: URL and credentials, TLS policy, login, reconnect with back-off.

The password comes from a file or an environment variable and is never logged or shown in
a ``repr``; a URL is shown only through :func:`redact_url`, so credentials typed into
``--url`` never reach a message either. TLS is verified by default (system trust store, or
``ca_bundle``); disabling verification takes an explicit ``insecure=True``. Plain ``http``
is accepted only towards a loopback address (the test simulator).
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from collectors.net import is_loopback
from collectors.vsphere._sdk import Disconnect, SmartConnect, vim, vmodl

__all__ = [
    "PASSWORD_ENV",
    "AuthError",
    "Connection",
    "ConnectionSpec",
    "TLSError",
    "VSphereError",
    "read_password",
    "redact_url",
]

log = logging.getLogger(__name__)
PASSWORD_ENV = "XDRS_VSPHERE_PASSWORD"
T = TypeVar("T")
# the user-info part of a URL (``user:password@``), up to the last "@" of the authority
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")


def redact_url(url: str) -> str:
    """``url`` with any user-info replaced by ``***``: ``ftp://***@host/sdk``.

    Works on strings that are not valid URLs too (messages echo what the user typed).
    """
    return _USERINFO.sub(lambda m: f"{m.group(1) or ''}***@", url, count=1)


class VSphereError(Exception):
    """vCenter could not be reached or refused a request; the message says which."""


class AuthError(VSphereError):
    """vCenter refused the user name or password."""


class TLSError(VSphereError):
    """The server's certificate is not trusted, or the CA bundle cannot be loaded."""


# Errors after which a new session may succeed: the transport broke or the session expired.
TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    socket.timeout,
    TimeoutError,
    http.client.HTTPException,
    ssl.SSLEOFError,
    vim.fault.NotAuthenticated,
)


def read_password(password_file: str | os.PathLike[str] | None = None) -> str:
    """The password from ``password_file`` (first line) or ``$XDRS_VSPHERE_PASSWORD``."""
    if password_file is not None:
        try:
            lines = Path(password_file).read_text().splitlines()
        except OSError as e:
            raise VSphereError(
                f"{password_file}: cannot read password file: {e.strerror}"
            ) from None
        return lines[0] if lines else ""
    return os.environ.get(PASSWORD_ENV, "")


@dataclass(frozen=True)
class ConnectionSpec:
    """Where and how to log in. ``password`` is excluded from ``repr``."""

    url: str
    user: str
    password: str = field(default="", repr=False)
    ca_bundle: str | None = None
    insecure: bool = False
    timeout_s: float = 60.0

    def __repr__(self) -> str:
        return (
            f"ConnectionSpec(url={redact_url(self.url)!r}, user={self.user!r}, "
            f"ca_bundle={self.ca_bundle!r}, insecure={self.insecure!r}, "
            f"timeout_s={self.timeout_s!r})"
        )

    @property
    def shown_url(self) -> str:
        """``url`` as messages show it (credentials redacted)."""
        return redact_url(self.url)

    def parts(self) -> tuple[str, str, int, str]:
        """(scheme, host, port, path) of ``url``; raises :class:`VSphereError` if unusable."""
        try:
            u = urlsplit(self.url if "://" in self.url else f"https://{self.url}")
            hostname = u.hostname
        except ValueError as e:  # e.g. an unclosed "[" of an IPv6 address
            raise VSphereError(f"--url: {e}, got {self.shown_url!r}") from None
        if u.username is not None or u.password is not None:
            raise VSphereError("--url: must not carry credentials; use --user and a password "
                               f"file or ${PASSWORD_ENV}")  # fmt: skip
        if u.scheme not in ("https", "http") or not hostname:
            raise VSphereError(f"--url: expected https://HOST[:PORT][/sdk], got {self.shown_url!r}")
        if u.scheme == "http" and not is_loopback(hostname):
            raise VSphereError(
                f"--url: plain http is only allowed to a loopback address (the simulator), "
                f"got {hostname!r}; use https"
            )
        try:
            port = u.port or (443 if u.scheme == "https" else 80)
        except ValueError:
            raise VSphereError(f"--url: invalid port in {self.shown_url!r}") from None
        return u.scheme, hostname, port, u.path or "/sdk"

    def ssl_context(self) -> ssl.SSLContext:
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as e:
            raise TLSError(f"--ca-bundle: cannot load {self.ca_bundle}: {e}") from None


def login(spec: ConnectionSpec) -> Any:
    """Log in once; returns pyvmomi's ServiceInstance."""
    scheme, host, port, path = spec.parts()
    kwargs: dict[str, Any] = {"httpConnectionTimeout": spec.timeout_s}
    if scheme == "https":
        kwargs["sslContext"] = spec.ssl_context()
    try:
        return SmartConnect(protocol=scheme, host=host, port=port, path=path, user=spec.user,
                            pwd=spec.password, **kwargs)  # fmt: skip
    except vim.fault.InvalidLogin:
        raise AuthError(f"{spec.shown_url}: login refused for user {spec.user!r} (wrong user name "
                        "or password)") from None  # fmt: skip
    except ssl.SSLCertVerificationError as e:
        raise TLSError(
            f"{spec.shown_url}: TLS certificate not trusted ({e.verify_message}); pass "
            "--ca-bundle, or --insecure to skip verification"
        ) from None
    except (OSError, http.client.HTTPException, vmodl.MethodFault) as e:
        raise VSphereError(f"{spec.shown_url}: cannot connect: {_describe(e)}") from None


def _describe(e: BaseException) -> str:
    msg = getattr(e, "msg", None) or str(e) or type(e).__name__
    return f"{type(e).__name__}: {msg}"


class Connection:
    """A vCenter session that logs in again, with exponential back-off, when it drops.

    Parameters
    ----------
    spec : ConnectionSpec
    retries : int
        Log-in attempts before giving up (an :class:`AuthError` or :class:`TLSError` is
        never retried: a wrong password stays wrong).
    backoff_s, backoff_max_s : float
        First delay between attempts and its cap; the delay doubles each attempt.
    sleep : callable
        Injected for tests that count the back-off steps.
    """

    def __init__(
        self,
        spec: ConnectionSpec,
        *,
        retries: int = 8,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = spec
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._si: Any = None
        self.generation = 0  # incremented at each new session (watchers re-create filters)

    @property
    def si(self) -> Any:
        """The current ServiceInstance, logging in first if needed."""
        if self._si is None:
            self._connect()
        return self._si

    @property
    def content(self) -> Any:
        return self.si.RetrieveContent()

    def _connect(self) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            try:
                self._si = login(self.spec)
                self.generation += 1
                return
            except (AuthError, TLSError):
                raise  # retrying cannot fix a wrong password or an untrusted certificate
            except VSphereError as e:
                if attempt == self.retries:
                    raise
                log.warning("vSphere login attempt %d failed (%s); retrying in %.1f s",
                            attempt, e, delay)  # fmt: skip
                self._sleep(delay)
                delay = min(2 * delay, self.backoff_max_s)

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(si)``; on a transient failure, drop the session, log in again, retry once."""
        try:
            return fn(self.si)
        except TRANSIENT as e:
            log.warning("vSphere session lost (%s); reconnecting", type(e).__name__)
            self.invalidate()
            return fn(self.si)

    def invalidate(self) -> None:
        """Forget the session (the next use logs in again)."""
        self._si = None

    def close(self) -> None:
        if self._si is not None:
            try:
                Disconnect(self._si)
            except (*TRANSIENT, OSError, vmodl.MethodFault):
                pass
            self._si = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
