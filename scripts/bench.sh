#!/usr/bin/env bash
# Reproduce bench/RESULTS.md (a few minutes on 2 cores; --quick stops at 1000/10000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS=bench source "$root/scripts/venv.sh"
cd "$root"
exec .venv/bin/python -m bench.run "$@"
