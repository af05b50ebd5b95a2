#!/usr/bin/env bash
# Headless Chromium for the segment report's browser test (Makefile and CI): Debian's package.
#
#   scripts/chromium.sh install   install the `chromium` package if no Chromium is on PATH (needs
#                                 root, as in CI); stdout gets exactly one line: its path.
#   scripts/chromium.sh path      print the path of the Chromium on PATH; exit 3 if there is none.
#
# The test drives it with Playwright's Python client through `executable_path`; Playwright's own
# browser download (`playwright install`) is never used.
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() { printf 'chromium.sh: error: %s\n' "$*" >&2; exit 1; }

find_chromium() { command -v chromium || command -v chromium-browser || true; }

install_chromium() {
    [[ -n "$(find_chromium)" ]] && return 0
    [[ "$(id -u)" == 0 ]] || die "Chromium is missing; install it as root: apt-get install -y chromium"
    command -v apt-get >/dev/null || die "Chromium is missing and this is not a Debian system (no apt-get)"
    log "installing Debian's chromium package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
}

case "${1:-}" in
    install)
        install_chromium
        path="$(find_chromium)"
        [[ -n "$path" ]] || die "chromium is still not on PATH after installing"
        printf '%s\n' "$path"
        ;;
    path)
        path="$(find_chromium)"
        [[ -n "$path" ]] || exit 3
        printf '%s\n' "$path"
        ;;
    *)
        die "usage: scripts/chromium.sh install|path"
        ;;
esac
