"""The OpenStack connection's TLS and login paths against the test cloud's real Keystone.

TLS: the test cloud speaks plain HTTP, so a TLS-terminating proxy (tests/support/tlsproxy.py)
serves a certificate made here with ``openssl`` in front of its Keystone, and a clouds.yaml
written in a temporary directory gives ``https://127.0.0.1:PORT/v3`` as the ``auth_url``.
Only the log-in goes through TLS: the catalog Keystone returns still names the services'
plain-HTTP endpoints, so listing the hosts afterwards talks HTTP to Nova. That is fine here:
the log-in is where the password is sent and where the certificate is first checked.

Login: the ``OS_*`` environment alone (no clouds.yaml), and wrong credentials, whose
password never shows in a message or a ``repr``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.openstack import AuthError, CloudSpec, OpenStackError, connect
from collectors.openstack.connection import TLSError
from tests.collectors.openstack.conftest import CLOUD, ZONES, Cloud
from tests.support.tlsproxy import TLSProxy, self_signed
from xdrs.bus.broker import free_port
from xdrs.snapshot import read_snapshot

pytestmark = pytest.mark.openstack

TLS_CLOUD = "xdrs-tls"
REFUSED = (f"cloud {TLS_CLOUD}: TLS certificate verify failed: "
           "self-signed certificate; pass --ca-bundle with the CA that signed it, or "
           "--insecure to skip verification")  # fmt: skip
LOGIN = ("POST", "/v3/auth/tokens")


@dataclass(frozen=True)
class Tls:
    proxy: TLSProxy
    cert: Path  # the proxy's (self-signed, so its own CA)
    other: Path  # another self-signed certificate: a CA that did not sign the proxy's
    clouds_yaml: Path
    password: str

    def env(self) -> dict[str, str]:
        return dict(os.environ, OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml))


def _admin(cloud: Cloud) -> dict[str, Any]:
    entry: dict[str, Any] = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"][CLOUD]
    return entry


@pytest.fixture(scope="module")
def tls(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    """The proxy in front of the cloud's Keystone, and a clouds.yaml naming it: the cloud as
    is, with ``insecure: true`` and ``verify: false``, and with ``cacert`` the proxy's."""
    d = tmp_path_factory.mktemp("keystone-tls")
    cert, key = self_signed(d)
    other, _ = self_signed(d, "other")
    admin = _admin(cloud)
    keystone = admin["auth"]["auth_url"].removesuffix("/v3")
    with TLSProxy(keystone, cert, key) as proxy:
        entry = dict(admin, auth=dict(admin["auth"], auth_url=f"{proxy.url}/v3"))
        clouds = {
            TLS_CLOUD: entry,
            f"{TLS_CLOUD}-yaml-insecure": dict(entry, insecure=True, verify=False),
            f"{TLS_CLOUD}-yaml-cacert": dict(entry, cacert=str(cert)),
        }
        clouds_yaml = d / "clouds.yaml"
        clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}))
        clouds_yaml.chmod(0o600)
        yield Tls(proxy, cert, other, clouds_yaml, admin["auth"]["password"])


@pytest.fixture
def via_proxy(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> Tls:
    """``tls`` with its clouds.yaml in force and the proxy's request log emptied."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tls.clouds_yaml))
    tls.proxy.seen.clear()
    return tls


def _xdrs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def _hosts(conn: Any) -> set[str]:
    """The cloud's compute hosts, as Nova lists them."""
    try:
        return {s.host for s in conn.compute.services() if s.binary == "nova-compute"}
    finally:
        conn.close()


def _no_secret(text: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in text


# ---- TLS: verified by default ---------------------------------------------------------------


@pytest.mark.parametrize("name", [TLS_CLOUD, f"{TLS_CLOUD}-yaml-insecure"],
                         ids=["clouds.yaml", "clouds.yaml insecure: true"])  # fmt: skip
def test_an_unknown_certificate_is_refused_by_default(via_proxy: Tls, name: str) -> None:
    """Only ``insecure`` turns verification off, not the cloud's own ``insecure: true``."""
    with pytest.raises(TLSError) as e:
        connect(CloudSpec(name))
    assert str(e.value) == REFUSED.replace(TLS_CLOUD, name, 1)
    _no_secret(str(e.value) + repr(e.value), via_proxy.password)
    assert LOGIN not in via_proxy.proxy.seen  # the password never left


def test_snapshot_refuses_it_in_one_line(tls: Tls, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    r = _xdrs(tls.env(), "openstack", "snapshot", "--cloud", TLS_CLOUD, "--out", str(out))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"xdrs: error: {REFUSED}"]
    _no_secret(r.stdout + r.stderr, tls.password)
    assert not out.exists()


def test_a_ca_that_did_not_sign_it_is_refused(via_proxy: Tls) -> None:
    """``ca_bundle`` replaces the cloud's ``cacert`` (which would have been trusted)."""
    for name in (TLS_CLOUD, f"{TLS_CLOUD}-yaml-cacert"):
        with pytest.raises(TLSError, match="self-signed certificate"):
            connect(CloudSpec(name, ca_bundle=str(via_proxy.other)))
    assert LOGIN not in via_proxy.proxy.seen


def test_a_certificate_for_another_name_is_refused(
    env_only: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusted but issued to another name: refused all the same."""
    cert, key = self_signed(tmp_path, "elsewhere", san="DNS:keystone.example.invalid")
    with TLSProxy(env_only["OS_AUTH_URL"].removesuffix("/v3"), cert, key) as proxy:
        monkeypatch.setenv("OS_AUTH_URL", f"{proxy.url}/v3")
        with pytest.raises(TLSError) as e:
            connect(CloudSpec(ca_bundle=str(cert)))
        assert LOGIN not in proxy.seen
    assert str(e.value).startswith(
        "cloud the OS_* environment: TLS certificate verify failed: IP address mismatch, "
        "certificate is not valid for '127.0.0.1'"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"), ("not a certificate\n", "no certificate or crl found")],
    ids=["missing", "not PEM"],
)
def test_an_unusable_ca_bundle_is_named(
    via_proxy: Tls, tmp_path: Path, content: str | None, reason: str
) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_text(content)
    with pytest.raises(OpenStackError) as e:
        connect(CloudSpec(TLS_CLOUD, ca_bundle=str(bundle)))
    assert str(e.value) == f"--ca-bundle: cannot load {bundle}: {reason}"
    assert via_proxy.proxy.seen == []  # checked before any request
    r = _xdrs(via_proxy.env(), "openstack", "snapshot", "--cloud", TLS_CLOUD,
              "--ca-bundle", str(bundle), "--out", str(tmp_path / "s.json"))  # fmt: skip
    assert (r.returncode, r.stderr) == (1, f"xdrs: error: {e.value}\n")


# ---- TLS: a CA bundle, or an explicit insecure ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "bundle"),
    [(TLS_CLOUD, True), (f"{TLS_CLOUD}-yaml-cacert", False)],
    ids=["ca_bundle", "clouds.yaml cacert"],
)
def test_a_ca_bundle_reaches_it(
    via_proxy: Tls, name: str, bundle: bool, caplog: pytest.LogCaptureFixture
) -> None:
    ca = str(via_proxy.cert) if bundle else None
    with caplog.at_level(logging.WARNING):
        assert _hosts(connect(CloudSpec(name, ca_bundle=ca))) == set(ZONES)
    assert LOGIN in via_proxy.proxy.seen
    assert [r.getMessage() for r in caplog.records] == []


def test_insecure_reaches_it_and_says_so(via_proxy: Tls, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert _hosts(connect(CloudSpec(TLS_CLOUD, insecure=True))) == set(ZONES)
    assert LOGIN in via_proxy.proxy.seen
    assert [r.getMessage() for r in caplog.records] == [
        f"cloud {TLS_CLOUD}: TLS certificate verification is off (--insecure)"
    ]


@pytest.mark.parametrize("how", ["--ca-bundle", "--insecure"])
def test_snapshot_with_a_ca_bundle_or_insecure(tls: Tls, tmp_path: Path, how: str) -> None:
    out = tmp_path / "s.json"
    option = [how, str(tls.cert)] if how == "--ca-bundle" else [how]
    r = _xdrs(tls.env(), "openstack", "snapshot", "--cloud", TLS_CLOUD, *option, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("xdrs openstack snapshot: 3 hosts, ")
    warned = [f"cloud {TLS_CLOUD}: TLS certificate verification is off (--insecure)"]
    assert r.stderr.splitlines() == (warned if how == "--insecure" else [])
    hosts = {h.removeprefix(f"{TLS_CLOUD}/") for h in read_snapshot(out).host_ids}
    assert hosts == set(ZONES)


# ---- the OS_* environment alone -------------------------------------------------------------


def _os_env(cloud: Cloud) -> dict[str, str]:
    """The admin's login as ``OS_*`` variables (the default domain by its name)."""
    auth = _admin(cloud)["auth"]
    return {
        "OS_AUTH_URL": auth["auth_url"],
        "OS_USERNAME": auth["username"],
        "OS_PASSWORD": auth["password"],
        "OS_PROJECT_NAME": auth["project_name"],
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
    }


@pytest.fixture
def env_only(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The ``OS_*`` login in this process's environment, no clouds.yaml; returns it."""
    env = dict(_os_env(cloud), OS_CLIENT_CONFIG_FILE=str(tmp_path / "absent" / "clouds.yaml"))
    for k in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_the_environment_alone_logs_in(env_only: dict[str, str], tmp_path: Path) -> None:
    conn = connect(CloudSpec())
    shown = [repr(o) for o in (conn, conn.config, conn.session, conn.session.auth)]
    _no_secret(" ".join(shown), env_only["OS_PASSWORD"])
    assert _hosts(conn) == set(ZONES)
    out = tmp_path / "s.json"
    r = _xdrs(dict(os.environ), "openstack", "snapshot", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert {h.removeprefix("openstack/") for h in read_snapshot(out).host_ids} == set(ZONES)


def test_the_environment_with_os_cacert_over_tls(
    env_only: dict[str, str], via_proxy: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", env_only["OS_CLIENT_CONFIG_FILE"])
    monkeypatch.setenv("OS_AUTH_URL", f"{via_proxy.proxy.url}/v3")
    monkeypatch.setenv("OS_INSECURE", "true")  # only ``insecure`` turns verification off
    with pytest.raises(TLSError):
        connect(CloudSpec())
    monkeypatch.delenv("OS_INSECURE")
    monkeypatch.setenv("OS_CACERT", str(via_proxy.cert))
    assert _hosts(connect(CloudSpec())) == set(ZONES)
    assert LOGIN in via_proxy.proxy.seen


WRONG = "wrong-pw-Zq7"
ENV = "cloud the OS_* environment: "
FAILURES = {
    "wrong password": ({"OS_PASSWORD": WRONG}, AuthError, "authentication failed"),
    "wrong project": ({"OS_PROJECT_NAME": "no-such-project"}, AuthError, "authentication"),
    "wrong user domain": ({"OS_USER_DOMAIN_NAME": "nowhere"}, AuthError, "authentication"),
    "nothing listening": ({"OS_AUTH_URL": "http://127.0.0.1:{port}/v3"}, OpenStackError,
                          "unreachable: "),
    "no auth url": ({"OS_AUTH_URL": None}, OpenStackError, "configuration: "),
    # Nova's port: Keystone takes 4 s to drop a TLS client, Nova answers at once
    "https to plain HTTP": ({"OS_AUTH_URL": "https://127.0.0.1:{nova}/v3"}, TLSError,
                            "TLS handshake failed: "),
}  # fmt: skip


def _port(cloud: Cloud, service: str) -> str:
    """A service's port, from the test cloud's cloud.env (``NOVA_PORT=15003``)."""
    lines = (cloud.state / "cloud.env").read_text().splitlines()
    return next(v for k, _, v in (x.partition("=") for x in lines) if k == f"{service}_PORT")


@pytest.mark.parametrize(("change", "kind", "what"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_login_never_shows_a_password(
    cloud: Cloud,
    env_only: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str | None],
    kind: type[OpenStackError],
    what: str,
) -> None:
    for k, v in change.items():
        if v is None:
            monkeypatch.delenv(k)
        else:
            monkeypatch.setenv(k, v.format(port=free_port(), nova=_port(cloud, "NOVA")))
    spec = CloudSpec()
    with pytest.raises(OpenStackError) as e:
        connect(spec)
    assert type(e.value) is kind
    text = str(e.value)
    assert text.startswith(ENV + what) and len(text.splitlines()) == 1
    _no_secret(text + repr(e.value) + repr(spec), env_only["OS_PASSWORD"], WRONG)


def test_snapshot_with_a_wrong_password_in_the_environment(
    env_only: dict[str, str], tmp_path: Path
) -> None:
    env = dict(os.environ, OS_PASSWORD=WRONG)
    r = _xdrs(env, "openstack", "snapshot", "--out", str(tmp_path / "s.json"))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"xdrs: error: {ENV}authentication failed (check user, password, project)"
    ]
    _no_secret(r.stdout + r.stderr, WRONG, env_only["OS_PASSWORD"])


_PASSWORDS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1, max_size=40,
).map(lambda s: f"pw-{s}")  # fmt: skip


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(password=_PASSWORDS)
def test_any_wrong_password_is_refused_without_showing_it(
    env_only: dict[str, str], password: str
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OS_PASSWORD", password)
        with pytest.raises(AuthError) as e:
            connect(CloudSpec())
    assert str(e.value) == f"{ENV}authentication failed (check user, password, project)"
    _no_secret(repr(e.value), password)
