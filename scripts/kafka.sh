#!/usr/bin/env bash
# Fetch (once) Apache Kafka, the production broker, for the bus tests, and print the directory
# of its runtime jars (a class path: java -cp "DIR/*" kafka.Kafka ...). Maven resolves
# scripts/kafka/pom.xml (kafka_2.13 plus an slf4j binding) from Maven Central into a local
# repository under $XDRS_CACHE (default ~/.cache/xdrs; ~/.m2 is not touched); the jars are
# copied to $XDRS_CACHE/kafka/<key>/lib, keyed on the pom's content: a second call costs one
# hash. Java 17 and Maven are installed from Debian when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$root/scripts/kafka/pom.xml"
cache="${XDRS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xdrs}"

if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "kafka.sh: installing openjdk-17-jre-headless and maven" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        openjdk-17-jre-headless maven >&2
fi
key="$(sha256sum <"$pom" | cut -c1-16)"
lib="$cache/kafka/$key/lib"
if [ ! -f "$lib/.complete" ]; then
    mkdir -p "$cache/kafka/$key"
    tmp="$(mktemp -d "$cache/kafka/$key/lib.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "kafka.sh: fetching Apache Kafka into $lib" >&2
    mvn -q -B -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$cache/kafka/m2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
    ls "$tmp"/kafka_2.13-*.jar >/dev/null  # the broker itself is there
    touch "$tmp/.complete"
    rm -rf "$lib"
    mv "$tmp" "$lib"
fi
echo "$lib"
