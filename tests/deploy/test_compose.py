"""Structure of docker-compose.yml, the Dockerfile and the Prometheus/Grafana provisioning.

Docker cannot run on the test machine, so the stack itself is never started here; these
tests check what can be checked without it: every service has a pinned image or our build,
the xdrs commands parse with the real CLI (and each flag shows in ``xdrs <cmd> --help``),
addresses agree between services, and every file the compose file mounts exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from xdrs.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
OFFICIAL = {"kafka": "apache/kafka", "prometheus": "prom/prometheus", "grafana": "grafana/grafana"}
OURS = ("engine", "replay")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _flags(command: list[str]) -> list[str]:
    return [c.split("=", 1)[0] for c in command if c.startswith("--")]


def _option(command: list[str], flag: str) -> str:
    for i, c in enumerate(command):
        if c == flag:
            return command[i + 1]
        if c.startswith(flag + "="):
            return c.split("=", 1)[1]
    raise AssertionError(f"{flag} missing from {command}")


def test_every_service_has_a_pinned_image_or_our_build(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert set(services) == {*OFFICIAL, *OURS}
    for name, repo in OFFICIAL.items():
        image = services[name]["image"]
        assert image.startswith(repo + ":"), image
        assert not image.endswith(":latest"), image
        assert "build" not in services[name]
    for name in OURS:
        assert services[name]["build"] == "."
        assert services[name]["image"] == services[OURS[0]]["image"]  # built once
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^RUN pip install \. ", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["xdrs"\]$', dockerfile, re.M)
    for copied in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (ROOT / copied).exists(), copied


def test_dependencies_and_volumes_exist(compose: dict[str, Any]) -> None:
    services = _services(compose)
    named = set(compose.get("volumes") or {})
    for name, svc in services.items():
        assert set(svc.get("depends_on") or ()) <= set(services) - {name}
        for vol in svc.get("volumes") or ():
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: {src}"
            else:
                assert src in named, f"{name}: {src}"


@pytest.mark.parametrize("name", OURS)
def test_xdrs_commands_parse_and_use_documented_flags(compose: dict[str, Any], name: str) -> None:
    command = _services(compose)[name]["command"]
    args = build_parser().parse_args(command)  # exits (fails the test) on an unknown flag
    assert args.func.__name__ == f"run_{name}"
    help_text = subprocess.run(
        [_xdrs(), command[0], "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for flag in _flags(command):
        assert re.search(rf"(^|\s){re.escape(flag)}\b", help_text), flag


def test_kafka_is_single_node_kraft_and_xdrs_reaches_it(compose: dict[str, Any]) -> None:
    services = _services(compose)
    env = services["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    advertised = dict(
        reversed(item.split("://", 1)) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    internal = next(a for a, name in advertised.items() if name == "PLAINTEXT")
    for name in OURS:
        command = services[name]["command"]
        assert _option(command, "--bootstrap-servers") == internal
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert "healthcheck" in services["kafka"]
    engine, replay = (services[n]["command"] for n in OURS)
    assert _option(engine, "--partitions") == _option(replay, "--partitions")


def test_prometheus_scrapes_the_engine_metrics_port(compose: dict[str, Any]) -> None:
    services = _services(compose)
    prom = services["prometheus"]
    mount = next(v for v in prom["volumes"] if v.startswith("./deploy/prometheus/"))
    host_path, container_path = mount.split(":")[:2]
    assert f"--config.file={container_path}" in prom["command"]
    config = yaml.safe_load((ROOT / host_path).read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "xdrs-engine")
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    host, port = _option(services["engine"]["command"], "--metrics-addr").rsplit(":", 1)
    assert host == "0.0.0.0"  # reachable from the prometheus container
    assert targets == [f"engine:{port}"]


def test_prometheus_scrapes_the_rebalancing_daemon(compose: dict[str, Any]) -> None:
    """The replay's --apply runs the rebalancing daemon: its metrics port is published and
    scraped by the xdrs-daemon job."""
    services = _services(compose)
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "xdrs-daemon")
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    replay = services["replay"]["command"]
    assert "--apply" in replay
    host, port = _option(replay, "--metrics-addr").rsplit(":", 1)
    assert host == "0.0.0.0" and targets == [f"replay:{port}"]
    assert f"{port}:{port}" in services["replay"]["ports"]
    assert "replay" in services["prometheus"]["depends_on"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboard(
    compose: dict[str, Any],
) -> None:
    graf = _services(compose)["grafana"]
    mounts = dict(v.split(":")[:2] for v in graf["volumes"] if v.startswith("./"))
    prov = ROOT / next(h for h, c in mounts.items() if c == "/etc/grafana/provisioning")
    dash_dir = next(c for h, c in mounts.items() if h == "./deploy/grafana/dashboards")
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    prom_port = _services(compose)["prometheus"]["ports"][0].split(":")[-1]
    assert [d["url"] for d in ds] == [f"http://prometheus:{prom_port}"]
    providers = yaml.safe_load((prov / "dashboards" / "xdrs.yml").read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == [dash_dir]
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dash_dir + "/")
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()
    assert "${" in graf["environment"]["GF_SECURITY_ADMIN_PASSWORD"]  # from the environment


@pytest.mark.prometheus
def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = _promtool()
    # the compose file's host names do not resolve here; promtool checks syntax only
    out = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy/prometheus/prometheus.yml")],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def _xdrs() -> str:
    beside = Path(sys.executable).parent / "xdrs"  # the venv's console script
    path = str(beside) if beside.exists() else shutil.which("xdrs")
    assert path, "the xdrs command is not installed"
    return path


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: scripts/prometheus.sh installs it"
    return path
