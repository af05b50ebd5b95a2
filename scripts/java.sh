#!/usr/bin/env bash
# A Java runtime for local Spark (CX_WAREHOUSE_TARGET=spark, and the Spark tests): Debian's package.
#
#   scripts/java.sh install   install `openjdk-17-jre-headless` unless a Java 17 or later is on
#                             PATH (needs root, as in CI); stdout gets exactly one line: its path.
#   scripts/java.sh path      print the path of that Java; exit 3 if there is none.
#
# PySpark 4 runs on Java 17 or 21. Its wheel carries every Spark jar; nothing else is fetched.
set -euo pipefail

log() { printf 'java.sh: %s\n' "$*" >&2; }
die() { printf 'java.sh: error: %s\n' "$*" >&2; exit 1; }

# The java on PATH (or under JAVA_HOME) when its major version is 17 or later.
find_java() {
    local java major
    for java in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)"; do
        [[ -n "$java" && -x "$java" ]] || continue
        major="$("$java" -XshowSettings:properties -version 2>&1 \
            | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')"
        if [[ -n "$major" && "$major" -ge 17 ]]; then
            printf '%s\n' "$java"
            return 0
        fi
    done
}

install_java() {
    [[ -n "$(find_java)" ]] && return 0
    [[ "$(id -u)" == 0 ]] || die "no Java 17+; install it as root: apt-get install -y openjdk-17-jre-headless"
    command -v apt-get >/dev/null || die "no Java 17+ and this is not a Debian system (no apt-get)"
    log "installing Debian's openjdk-17-jre-headless package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >&2
}

case "${1:-}" in
    install)
        install_java
        path="$(find_java)"
        [[ -n "$path" ]] || die "no Java 17+ on PATH after installing"
        printf '%s\n' "$path"
        ;;
    path)
        path="$(find_java)"
        [[ -n "$path" ]] || exit 3
        printf '%s\n' "$path"
        ;;
    *)
        die "usage: scripts/java.sh install|path"
        ;;
esac
