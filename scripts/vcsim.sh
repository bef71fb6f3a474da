#!/usr/bin/env bash
# Build (once) the vCenter simulator used by the vSphere tests and benchmark, and print the
# binary's path. Debian ships govmomi's simulator package but no vcsim main, so we compile our
# own fixture (tests/fixtures/vcsim/main.go) in GOPATH mode against Debian's packages. The
# binary is cached under $XDRS_CACHE (default ~/.cache/xdrs), keyed on the fixture's source and
# the govmomi package version: a second call costs one hash.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/tests/fixtures/vcsim"
cache="${XDRS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xdrs}"
gopath=/usr/share/gocode

need_install() {
    ! command -v go >/dev/null 2>&1 || [ ! -d "$gopath/src/github.com/vmware/govmomi/simulator" ]
}
if need_install; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "vcsim.sh: installing golang-go and golang-github-vmware-govmomi-dev" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        golang-go golang-github-vmware-govmomi-dev >&2
fi
version="$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown)"
key="$( (cat "$src"/*.go; echo "$version"; go version) | sha256sum | cut -c1-16)"
bin="$cache/vcsim/$key/vcsim-xdrs"
if [ ! -x "$bin" ]; then
    mkdir -p "$(dirname "$bin")" "$cache/go-build"
    tmp="$(mktemp "$bin.XXXXXX")"
    echo "vcsim.sh: building $bin" >&2
    (cd "$src" && GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache/go-build" CGO_ENABLED=0 \
        go build -trimpath -ldflags '-s -w' -o "$tmp" .)
    chmod 755 "$tmp"
    mv -f "$tmp" "$bin"
fi
echo "$bin"
