"""One OpenStack cloud through openstacksdk: where it is, how its TLS is checked, and the
errors that leave this package.

A cloud is named in clouds.yaml (``cloud``) or, with no name, described by the ``OS_*``
environment variables, as every OpenStack client does. TLS is verified by default, against
``ca_bundle``, else the cloud's ``cacert`` (clouds.yaml or ``OS_CACERT``), else the system's
CAs. Only ``insecure`` turns verification off: a clouds.yaml ``insecure: true`` or
``verify: false`` (or ``OS_INSECURE``) does not, and when it is off a warning says so.
Every failure becomes :class:`OpenStackError` with one line naming the cloud, never a
password (a certificate refused: :class:`TLSError`, naming what is wrong with it).
"""

from __future__ import annotations

import logging
import ssl
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openstack
import requests
from keystoneauth1 import exceptions as ksa
from openstack import exceptions as sdk

__all__ = ["AuthError", "CloudSpec", "OpenStackError", "TLSError", "connect", "error"]

log = logging.getLogger(__name__)


class OpenStackError(Exception):
    """A cloud that cannot be reached, refused us, or answered what we cannot use."""


class AuthError(OpenStackError):
    """Wrong credentials, project or domain."""


class TLSError(OpenStackError):
    """The cloud's certificate is not trusted, or TLS failed otherwise (retrying cannot
    help)."""


class _NoDiscoveryWarning(logging.Filter):
    """keystoneauth warns that version discovery failed before it tries the URL as given;
    when that fails too, :func:`connect` says why in its one error line, and when it works
    the warning was noise: either way it would be a second line on the user's screen."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to discover available identity versions")


logging.getLogger("keystoneauth.identity.generic.base").addFilter(_NoDiscoveryWarning())


@dataclass(frozen=True)
class CloudSpec:
    """Where the cloud is and how to talk to it (no credentials: they stay in clouds.yaml
    or the environment, so no ``repr`` can show them).

    Parameters
    ----------
    cloud : str or None
        Name in clouds.yaml; ``None``: the ``OS_*`` environment variables.
    ca_bundle : str or None
        PEM file of trusted CAs (instead of the cloud's ``cacert`` or the system's).
    insecure : bool
        Do not verify the server's certificate (explicit only).
    timeout_s : float
        Per-request timeout.
    """

    cloud: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    timeout_s: float = 60.0

    @property
    def label(self) -> str:
        return self.cloud or "the OS_* environment"

    def validate(self) -> None:
        if self.insecure and self.ca_bundle:
            raise OpenStackError("--ca-bundle and --insecure: choose one")
        if not self.timeout_s > 0:
            raise OpenStackError(f"timeout_s: expected a number > 0, got {self.timeout_s}")
        if self.ca_bundle is not None:
            try:
                ssl.create_default_context(cafile=self.ca_bundle)
            except OSError as e:  # ssl.SSLError too: not PEM, no certificate in it
                raise OpenStackError(
                    f"--ca-bundle: cannot load {self.ca_bundle}: {_ssl_text(e)}"
                ) from None

    def tls_args(self) -> dict[str, Any]:
        """openstacksdk's TLS settings: ours override the cloud's ``insecure`` and ``verify``
        (and ``ca_bundle`` its ``cacert``)."""
        args: dict[str, Any] = {"insecure": self.insecure, "verify": not self.insecure}
        if self.ca_bundle is not None:
            args["cacert"] = self.ca_bundle
        return args


def connect(spec: CloudSpec) -> Any:
    """An authenticated ``openstack.connection.Connection``.

    Raises
    ------
    AuthError
        Keystone refused the credentials.
    TLSError
        The cloud's certificate is not trusted (the reason named).
    OpenStackError
        No such cloud, a bad configuration or ``ca_bundle``, or the cloud is unreachable.
    """
    spec.validate()
    if spec.insecure:
        log.warning("cloud %s: TLS certificate verification is off (--insecure)", spec.label)
    try:
        conn = openstack.connect(
            cloud=spec.cloud, api_timeout=spec.timeout_s, load_envvars=True, **spec.tls_args()
        )
        conn.authorize()
    except Exception as e:
        raise error(spec.label, e) from None
    return conn


_KINDS: tuple[tuple[type[BaseException] | types.UnionType, str], ...] = (
    (sdk.ConfigException | ksa.MissingRequiredOptions | ksa.NoMatchingPlugin, "configuration"),
    (ksa.ConnectFailure | ksa.ConnectTimeout | ksa.DiscoveryFailure, "unreachable"),
)


def error(label: str, e: BaseException) -> OpenStackError:
    """``e`` as one line naming the cloud (no credentials: SDK messages carry none)."""
    chain = list(_chain(e))
    if any(_is_401(c) for c in chain):
        return AuthError(f"cloud {label}: authentication failed (check user, password, project)")
    tls = _tls_error(label, chain)
    if tls is not None:
        return tls
    for kinds, what in _KINDS:
        for c in chain:
            if isinstance(c, kinds):
                return OpenStackError(f"cloud {label}: {what}: {_first_line(c)}")
    status = getattr(e, "status_code", None) or getattr(getattr(e, "response", None),
                                                        "status_code", None)  # fmt: skip
    if isinstance(e, sdk.HttpException | requests.HTTPError) and status:
        return OpenStackError(f"cloud {label}: HTTP {status}: {_first_line(e)}")
    return OpenStackError(f"cloud {label}: {type(e).__name__}: {_first_line(e)}")


def _chain(e: BaseException | None) -> Iterator[BaseException]:
    """``e`` and what it wraps: causes, contexts, urllib3's ``reason``, exceptions given as
    arguments (the SDK wraps keystoneauth's, which wraps requests', which wraps urllib3's);
    depth-first, each once, at most 32."""
    todo: list[BaseException | None] = [e]
    seen: set[int] = set()
    while todo and len(seen) < 32:
        c = todo.pop()
        if c is None or id(c) in seen:
            continue
        seen.add(id(c))
        yield c
        inner = [c.__cause__, c.__context__, getattr(c, "reason", None), *c.args]
        todo.extend(reversed([i for i in inner if isinstance(i, BaseException)]))


def _is_401(e: BaseException) -> bool:
    return isinstance(e, ksa.Unauthorized) or getattr(e, "status_code", None) == 401


def _tls_error(label: str, chain: list[BaseException]) -> TLSError | None:
    """A certificate refused (the reason, from the innermost ``ssl`` error, and what to do)
    or another TLS failure (e.g. no TLS on that port) in ``chain``; ``None``: neither."""
    for c in chain:
        if isinstance(c, ssl.SSLCertVerificationError):
            return TLSError(
                f"cloud {label}: TLS certificate verify failed: {c.verify_message}; pass "
                "--ca-bundle with the CA that signed it, or --insecure to skip verification"
            )
    ssl_errors = [c for c in chain if isinstance(c, ssl.SSLError)]
    ksa_errors = [c for c in chain if isinstance(c, ksa.SSLError)]
    if ssl_errors or ksa_errors:
        text = _ssl_text(ssl_errors[0]) if ssl_errors else _first_line(ksa_errors[0])
        return TLSError(f"cloud {label}: TLS handshake failed: {text}")
    return None


def _ssl_text(e: OSError) -> str:
    """``[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found (_ssl.c:4154)`` ->
    ``no certificate or crl found``; other errors: their text."""
    text = e.strerror if isinstance(e.strerror, str) else str(e)
    if isinstance(e, ssl.SSLError):
        text = text.split("] ", 1)[-1].split(" (_ssl.c", 1)[0]
    return text.strip() or type(e).__name__


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
