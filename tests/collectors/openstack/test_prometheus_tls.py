"""The collector's Prometheus client against a real Prometheus serving HTTPS with a
self-signed certificate: verified by default, a CA bundle or an explicit --insecure."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.openstack.prometheus import PromClient, PromError, PromSpec
from tests.collectors.openstack.conftest import prometheus_scraping

pytestmark = pytest.mark.prometheus

QUERY = 'label_replace(vector(1), "probe", "ok", "", "")'


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with prometheus_scraping("127.0.0.1:9", d, tls=(cert, key)) as url:
        yield url, cert


def test_an_unknown_certificate_is_refused_by_default(https: tuple[str, Path]) -> None:
    url, _ = https
    with pytest.raises(PromError, match=rf"^Prometheus at {url}: .*certificate verify failed"):
        PromClient(PromSpec(url)).query(QUERY, "probe")


@pytest.mark.parametrize("how", ["ca-bundle", "insecure"])
def test_a_ca_bundle_or_insecure_reaches_it(https: tuple[str, Path], how: str) -> None:
    url, cert = https
    spec = (
        PromSpec(url, ca_bundle=str(cert)) if how == "ca-bundle" else PromSpec(url, insecure=True)
    )
    assert PromClient(spec).query(QUERY, "probe")[1] == {"ok": 1.0}


def test_ca_bundle_and_insecure_together_is_a_usage_error() -> None:
    r = subprocess.run(
        [sys.executable, "-c", "import sys; from xdrs.cli import main; sys.exit(main())",
         "collect", "openstack", "--prometheus-url", "https://127.0.0.1:1",
         "--prometheus-ca-bundle", "x.pem", "--prometheus-insecure"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.startswith("xdrs: error: --prometheus-insecure: not allowed with")
