#!/usr/bin/env bash
# The whole test suite: installs what it needs into .venv, lints, type-checks, runs pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS=dev source "$root/scripts/venv.sh"
cd "$root"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
"$root/scripts/vcsim.sh" >/dev/null  # the vSphere tests' simulator (cached build)
"$root/scripts/prometheus.sh" >/dev/null  # the dashboard tests' Prometheus server (apt, once)
"$root/scripts/kafka.sh" >/dev/null  # Apache Kafka's jars for the bus tests (Maven, cached)
"$root/scripts/openstack.sh" install  # Debian's Nova & co. for the openstack tests (apt, once)
.venv/bin/python -m pytest "$@"
