#!/usr/bin/env bash
# Create (once) the project's virtual environment in .venv and install xdrs into it.
# Sourced by scripts/demo.sh and scripts/test.sh; EXTRAS selects the optional dependency set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extras="${EXTRAS:-}"
stamp="$venv/.installed${extras:+-$extras}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}"
    touch "$stamp"
fi
# the simulator's kernels compiled ahead of time if numba is installed (xdrs/sim/aot.py, ~20 s
# once per change of the kernels' source; nothing to do when up to date). Without them the
# simulator JIT-loads the same kernels (~0.4 s more per process).
"$venv/bin/python" -m xdrs.sim.aot build --quiet \
    || echo "venv.sh: ahead-of-time kernels not built; the simulator uses numba's JIT" >&2
