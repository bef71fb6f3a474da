#!/usr/bin/env bash
# Demo: plan a balancing pass on a synthetic 200-host, 2,000-VM cluster; extra args go to xdrs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS= source "$root/scripts/venv.sh"
cd "$root"
exec .venv/bin/xdrs plan --generate 200/2000 --strategy balance --threshold 5 "$@"
