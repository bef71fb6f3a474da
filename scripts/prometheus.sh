#!/usr/bin/env bash
# Install (once) Debian's Prometheus server, used by the dashboard tests
# (tests/deploy/test_dashboard.py), and print the binary's path. The package also ships
# promtool. A second call costs one `command -v`.
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "prometheus.sh: installing prometheus" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        prometheus >&2
fi
command -v prometheus
