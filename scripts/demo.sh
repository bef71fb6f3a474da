#!/usr/bin/env bash
# The main job: xdrs demo (embedded broker, PlanetLab replay, engine, exporter); extra args go to it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS=embedded source "$root/scripts/venv.sh"
cd "$root"
exec .venv/bin/xdrs demo "$@"
