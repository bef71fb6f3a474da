"""Credentials typed into ``--url`` never reach a message or a ``repr``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from collectors.vsphere.connection import ConnectionSpec, VSphereError, redact_url
from xdrs.cli import main

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://user:s3cret-Pa55@host/sdk", "ftp://***@host/sdk"),
        ("https://user:s3cret-Pa55@vc.example:443/sdk", "https://***@vc.example:443/sdk"),
        ("user:s3cret-Pa55@host/sdk", "***@host/sdk"),
        ("https://u:s3cret@Pa55@host/sdk", "https://***@host/sdk"),  # "@" in the password
        ("https://s3cret-Pa55@host", "https://***@host"),  # a token as the user name
        ("//u:s3cret-Pa55@host/sdk", "//***@host/sdk"),  # scheme-relative
        ("https://host/sdk?a=b@c", "https://host/sdk?a=b@c"),  # "@" outside the authority
    ],
    ids=["scheme", "port", "no-scheme", "at-in-password", "token", "scheme-relative", "query"],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_ftp_url_with_password_is_refused_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``xdrs vsphere snapshot --url ftp://user:secret@host/sdk`` printed it."""
    status = main(["vsphere", "snapshot", "--url", f"ftp://user:{SECRET}@host/sdk", "--user",
                   "u", "--out", str(tmp_path / "s.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("xdrs: error: --url: must not carry credentials")
    assert SECRET not in err
    assert not (tmp_path / "s.json").exists()


def test_repr_hides_url_credentials_and_password() -> None:
    spec = ConnectionSpec(f"https://admin:{SECRET}@vc.example/sdk", "admin", SECRET)
    assert SECRET not in repr(spec) and SECRET not in str(spec)
    assert "vc.example" in repr(spec)


URL_PARTS = hst.sampled_from(["", "https://", "http://", "ftp://", "HTTPS://", "x+y://", "//"])
HOSTS = hst.sampled_from(["vc.example", "127.0.0.1", "[::1]", "[::1", "h:99999", "h:x", ""])
TAILS = hst.sampled_from(["", "/sdk", "/sdk?q=1", "#frag", ":443/sdk", "/a@b"])


@settings(max_examples=300, deadline=None)
@given(scheme=URL_PARTS, user=hst.sampled_from(["", "u", "admin"]), host=HOSTS, tail=TAILS,
       sep=hst.sampled_from([":", "@", ":@"]))  # fmt: skip
def test_no_url_error_shows_the_password(
    scheme: str, user: str, host: str, tail: str, sep: str
) -> None:
    url = f"{scheme}{user}{sep}{SECRET}@{host}{tail}"
    spec = ConnectionSpec(url, "u", "pw")
    assert SECRET not in repr(spec)
    try:
        spec.parts()
    except VSphereError as e:
        assert SECRET not in str(e)
        return
    pytest.fail(f"a URL carrying credentials was accepted: {redact_url(url)!r}")
