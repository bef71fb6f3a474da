"""One OpenStack cloud through openstacksdk: where it is, how its TLS is checked, and the
errors that leave this package.

A cloud is named in clouds.yaml (``cloud``) or, with no name, described by the ``OS_*``
environment variables, as every OpenStack client does. TLS is verified by default, against
the system's CAs or ``ca_bundle``; ``insecure`` turns verification off and must be asked for.
Every failure becomes :class:`OpenStackError` with one line naming the cloud, never a
password.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import openstack
import requests
from keystoneauth1 import exceptions as ksa
from openstack import exceptions as sdk

__all__ = ["AuthError", "CloudSpec", "OpenStackError", "connect"]


class OpenStackError(Exception):
    """A cloud that cannot be reached, refused us, or answered what we cannot use."""


class AuthError(OpenStackError):
    """Wrong credentials, project or domain."""


@dataclass(frozen=True)
class CloudSpec:
    """Where the cloud is and how to talk to it.

    Parameters
    ----------
    cloud : str or None
        Name in clouds.yaml; ``None``: the ``OS_*`` environment variables.
    ca_bundle : str or None
        PEM file of trusted CAs (instead of the system's).
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


def connect(spec: CloudSpec) -> Any:
    """An authenticated ``openstack.connection.Connection``.

    Raises
    ------
    AuthError
        Keystone refused the credentials.
    OpenStackError
        No such cloud, a bad configuration, or the cloud is unreachable.
    """
    spec.validate()
    verify: bool | str = False if spec.insecure else (spec.ca_bundle or True)
    try:
        conn = openstack.connect(
            cloud=spec.cloud, verify=verify, api_timeout=spec.timeout_s, load_envvars=True
        )
        conn.authorize()
    except Exception as e:
        raise error(spec.label, e) from None
    return conn


_KINDS: tuple[tuple[type[BaseException] | types.UnionType, str], ...] = (
    (sdk.ConfigException | ksa.MissingRequiredOptions | ksa.NoMatchingPlugin, "configuration"),
    (ksa.SSLError, "TLS verification failed"),
    (ksa.ConnectFailure | ksa.ConnectTimeout | ksa.DiscoveryFailure, "unreachable"),
)


def error(label: str, e: BaseException) -> OpenStackError:
    """``e`` as one line naming the cloud (no credentials: SDK messages carry none)."""
    if _unauthorized(e):
        return AuthError(f"cloud {label}: authentication failed (check user, password, project)")
    for kinds, what in _KINDS:
        if isinstance(e, kinds):
            return OpenStackError(f"cloud {label}: {what}: {_first_line(e)}")
    status = getattr(e, "status_code", None) or getattr(getattr(e, "response", None),
                                                        "status_code", None)  # fmt: skip
    if isinstance(e, sdk.HttpException | requests.HTTPError) and status:
        return OpenStackError(f"cloud {label}: HTTP {status}: {_first_line(e)}")
    return OpenStackError(f"cloud {label}: {type(e).__name__}: {_first_line(e)}")


def _unauthorized(e: BaseException | None) -> bool:
    """A 401 anywhere in ``e``'s chain (the SDK wraps keystoneauth's exceptions)."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, ksa.Unauthorized) or getattr(e, "status_code", None) == 401:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
