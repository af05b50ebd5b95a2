#!/usr/bin/env bash
# A real, local, throw-away PostgreSQL server for the tests (Makefile and CI).
#
#   scripts/postgres.sh start    install (Debian packages) if needed, init, start; idempotent.
#                                Progress goes to stderr; stdout gets exactly one line: the URL.
#   scripts/postgres.sh stop     stop it if running; idempotent.
#   scripts/postgres.sh status   exit 0 if running, 3 if not.
#   scripts/postgres.sh url      print the SQLAlchemy URL.
#
# Settings (environment):
#   CX_PG_PORT      TCP port on 127.0.0.1                      (default 55432)
#   PGDATA_DIR      cluster directory                          (default <repo>/.postgres/data, see below)
#   CX_PG_BIN       folder with initdb/pg_ctl/psql             (default newest /usr/lib/postgresql/*/bin)
#
# Security model: the server listens on 127.0.0.1 only and trusts loopback connections, so no
# password or secret is needed (or stored) anywhere. The application role `cx` (LOGIN CREATEDB,
# no password, not a superuser) owns the database `cx`. The superuser `postgres` is refused over
# TCP and only reachable through the unix socket, whose folder is private (0700) to the OS user
# that runs the server. This is a test database: do not put anything valuable in it.
#
# Access roles (dbt_project/macros/access.sql grants them after every dbt run): the group roles
# `cx_analyst`, `cx_marketer` and `cx_pipeline` (NOLOGIN), created here by the superuser so `cx`
# needs no CREATEROLE, and one login per group for the access tests (`cx_test_analyst`,
# `cx_test_marketer`, `cx_test_pipeline`; no password, loopback only, like `cx`).
#
# This is our own cluster, independent of the Debian package's "main" cluster/service (which the
# package may or may not create and start on port 5432; nothing here uses or touches it).
set -euo pipefail

readonly REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly PORT="${CX_PG_PORT:-55432}"
readonly APP_ROLE="cx"
readonly APP_DB="cx"
readonly SUPERUSER="postgres"   # name of the bootstrap superuser (initdb -U), in every mode
readonly URL="postgresql+psycopg2://${APP_ROLE}@127.0.0.1:${PORT}/${APP_DB}"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { printf 'postgres.sh: error: %s\n' "$*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || die "CX_PG_PORT must be a TCP port number, got '${PORT}'"

is_root() { [[ "$(id -u)" == 0 ]]; }

# ---------------------------------------------------------------------------------------------
# Where the cluster lives.
#
# Default: <repo>/.postgres/data (git-ignored). PostgreSQL refuses to run as root, so as root the
# server runs as the `postgres` system user, which must be able to *traverse* every folder above
# the data dir. That holds for /work/..., /home/<user>/... (0755) and CI checkouts, but not for a
# clone under e.g. /root (0700). Rather than loosening permissions on someone's home folder, we
# then fall back to /var/tmp/cx-postgres-<hash of repo path>/data (persistent across reboots,
# unlike /tmp, and one cluster per clone). An explicit PGDATA_DIR is used as given, or refused
# with a clear message if the server user could not reach it.
# ---------------------------------------------------------------------------------------------
user_can_traverse() { # user dir
    if [[ "$(id -un)" == "$1" ]]; then test -x "$2"; else runuser -u "$1" -- test -x "$2" 2>/dev/null; fi
}

resolve_data_dir() {
    if [[ -n "${PGDATA_DIR:-}" ]]; then
        local d="$PGDATA_DIR"
        [[ "$d" == /* ]] || d="$PWD/$d"
        printf '%s\n' "$d"
        return
    fi
    if is_root && id postgres >/dev/null 2>&1 && ! user_can_traverse postgres "$REPO_DIR"; then
        local h
        h="$(printf '%s' "$REPO_DIR" | sha1sum | cut -c1-10)"
        printf '/var/tmp/cx-postgres-%s/data\n' "$h"
        return
    fi
    printf '%s/.postgres/data\n' "$REPO_DIR"
}

DATA_DIR="$(resolve_data_dir)"
DATA_DIR="${DATA_DIR%/}"
STATE_DIR="$(dirname "$DATA_DIR")"     # holds the log file and the socket folder
LOG_FILE="${STATE_DIR}/postgres.log"
# Unix socket paths are limited to ~107 bytes; use a short fallback for deep checkouts.
SOCKET_DIR="${STATE_DIR}/run"
if ((${#SOCKET_DIR} > 80)); then SOCKET_DIR="/tmp/cx-postgres-${PORT}.sock.d"; fi

# ---------------------------------------------------------------------------------------------
# Which OS user runs the server: as root, the owner of an existing data dir if that is not root,
# else `postgres`; as anybody else, ourselves (we must own the data dir).
# ---------------------------------------------------------------------------------------------
server_user() {
    if ! is_root; then id -un; return; fi
    if [[ -d "$DATA_DIR" ]]; then
        local owner
        owner="$(stat -c %U "$DATA_DIR")"
        [[ "$owner" != root ]] || die "${DATA_DIR} is owned by root; PostgreSQL cannot run as root. Remove it (the server is not running) and retry."
        printf '%s\n' "$owner"
        return
    fi
    printf 'postgres\n'
}

# Run a command as the server user, from / (the caller's cwd may be unreadable to that user).
as_server() {
    local u="$1"; shift
    if [[ "$(id -un)" == "$u" ]]; then
        (cd / && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u "$u" -- "$@")
    else
        local q; q="$(printf '%q ' "$@")"
        (cd / && su -s /bin/sh "$u" -c "$q")
    fi
}

# ---------------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------------
find_pg_bin() { # prints a bin folder with initdb+pg_ctl+psql, preferring the data dir's major version
    if [[ -n "${CX_PG_BIN:-}" ]]; then
        printf '%s\n' "$CX_PG_BIN"; return 0
    fi
    local want="" d
    [[ -r "${DATA_DIR}/PG_VERSION" ]] && want="$(cat "${DATA_DIR}/PG_VERSION")"
    if [[ -n "$want" && -x "/usr/lib/postgresql/${want}/bin/pg_ctl" && -x "/usr/lib/postgresql/${want}/bin/initdb" ]]; then
        printf '/usr/lib/postgresql/%s/bin\n' "$want"; return 0
    fi
    # newest major version first
    while read -r d; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/psql" ]]; then printf '%s\n' "$d"; return 0; fi
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -V -r)
    return 1
}

apt_step() { # description, command...; streams apt's output to stderr, dies with the reason
    local what="$1"; shift
    local out; out="$(mktemp)"
    log "running: $*"
    if ! "$@" 2>&1 | tee "$out" >&2; then
        local reason
        reason="$(grep -E '^(E|Err):' "$out" | tail -n 3 | tr '\n' ' ')"
        rm -f "$out"
        die "could not install PostgreSQL from Debian packages: ${what} failed${reason:+: ${reason}}"
    fi
    rm -f "$out"
}

install_postgres() {
    command -v apt-get >/dev/null 2>&1 \
        || die "could not install PostgreSQL from Debian packages: apt-get not found (not a Debian/Ubuntu machine?). Install PostgreSQL server binaries or set CX_PG_BIN."
    local sudo=()
    if ! is_root; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "could not install PostgreSQL from Debian packages: need root (or passwordless sudo). Run 'sudo apt-get install postgresql' or set CX_PG_BIN."
        fi
    fi
    log "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; installing Debian packages"
    # Wait (rather than fail) if another apt/dpkg holds the lock, e.g. unattended-upgrades.
    local aptopts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    apt_step "apt-get update" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" update
    apt_step "apt-get install postgresql" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${aptopts[@]}" install -y --no-install-recommends postgresql
}

# ---------------------------------------------------------------------------------------------
# Running state, read from postmaster.pid (no binaries or user switching needed).
# ---------------------------------------------------------------------------------------------
running_pid() { # prints the postmaster pid if our cluster is running
    local f="${DATA_DIR}/postmaster.pid" pid
    [[ -r "$f" ]] || return 1
    pid="$(head -n 1 "$f" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # Alive and really a postgres (a stale pid file may point at a recycled pid after a reboot).
    [[ -r "/proc/${pid}/comm" && "$(cat "/proc/${pid}/comm" 2>/dev/null)" == postgres* ]] || return 1
    printf '%s\n' "$pid"
}

running_port() { sed -n 4p "${DATA_DIR}/postmaster.pid" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------
write_cluster_config() { # user bindir; (re)written on every start so CX_PG_PORT changes apply
    local u="$1"
    # Owned by the server user: it writes these files, we only generate their content.
    as_server "$u" tee "${DATA_DIR}/cx_local.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh on every start; edit that script, not this file.
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${SOCKET_DIR}'
unix_socket_permissions = 0700
EOF
    as_server "$u" tee "${DATA_DIR}/pg_hba.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh. Loopback only, no passwords (see the script's header).
# TYPE  DATABASE  USER        ADDRESS          METHOD
local   all       all                          trust
host    all       ${SUPERUSER}    127.0.0.1/32     reject
host    all       all         127.0.0.1/32     trust
host    all       all         0.0.0.0/0        reject
host    all       all         ::/0             reject
EOF
}

init_cluster() { # user bindir
    local u="$1" bin="$2"
    local tmp="${DATA_DIR}.initdb.$$"
    log "initialising a new cluster in ${DATA_DIR} (server user: ${u})"
    # initdb into a temporary folder and rename it, so an interrupted initdb never leaves a
    # half-made data dir behind that the next start would choke on. We create that folder
    # ourselves (initdb accepts an empty one), so the server user needs no write access to
    # the folder above it, which we therefore never chown.
    rm -rf "${DATA_DIR}".initdb.*
    mkdir -m 0700 "$tmp"
    if is_root; then chown "$u": "$tmp"; fi
    local extra=()  # PostgreSQL >= 14: skip the "now start it with pg_ctl -D <tmp dir>" hint
    if "${bin}/initdb" --help 2>/dev/null | grep -q -- --no-instructions; then extra+=(--no-instructions); fi
    as_server "$u" "${bin}/initdb" -D "$tmp" -U "$SUPERUSER" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 "${extra[@]}" >&2 \
        || { rm -rf "$tmp"; die "initdb failed (see the messages above)"; }
    printf "\n# Local settings for the test server (scripts/postgres.sh)\ninclude_if_exists = 'cx_local.conf'\n" \
        | as_server "$u" tee -a "${tmp}/postgresql.conf" >/dev/null
    mv "$tmp" "$DATA_DIR"
}

ensure_role_and_db() { # user bindir
    local u="$1" bin="$2"
    as_server "$u" "${bin}/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" \
        -U "$SUPERUSER" -d postgres >&2 <<EOF
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '${APP_ROLE}')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '${APP_DB}', '${APP_ROLE}')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${APP_DB}') \gexec
SELECT format('CREATE ROLE %I NOLOGIN', 'cx_' || kind)
  FROM unnest(ARRAY['analyst', 'marketer', 'pipeline']) AS kind
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cx_' || kind) \gexec
SELECT format('CREATE ROLE %I LOGIN IN ROLE %I', 'cx_test_' || kind, 'cx_' || kind)
  FROM unnest(ARRAY['analyst', 'marketer', 'pipeline']) AS kind
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cx_test_' || kind) \gexec
EOF
}

cmd_start() {
    exec 3>&1 1>&2  # everything to stderr; fd 3 (the original stdout) gets only the URL

    # Serialise concurrent starts (make -j, parallel CI steps) on the same port.
    # Best effort: a lock file another user created (mode 0666 when we create it) is tolerated.
    local lock="/tmp/cx-postgres-${PORT}.lock"
    if { exec 9>>"$lock"; } 2>/dev/null && command -v flock >/dev/null 2>&1; then
        chmod 0666 "$lock" 2>/dev/null || true
        flock -w 600 9 || die "timed out waiting for another '$0 start' (lock ${lock})"
    fi

    local bin
    if ! bin="$(find_pg_bin)"; then
        install_postgres
        bin="$(find_pg_bin)" || die "PostgreSQL was installed but no initdb/pg_ctl/psql found under /usr/lib/postgresql/*/bin"
    fi
    [[ -x "${bin}/pg_ctl" && -x "${bin}/initdb" && -x "${bin}/psql" ]] || die "no initdb/pg_ctl/psql in ${bin}"

    local u
    if [[ ! -d "$DATA_DIR" ]]; then
        mkdir -p "$STATE_DIR"
        if is_root; then
            u=postgres
            id "$u" >/dev/null 2>&1 || die "as root the server runs as the 'postgres' user, which does not exist (it comes with the postgresql package)"
            user_can_traverse "$u" "$STATE_DIR" \
                || die "the 'postgres' user cannot reach ${STATE_DIR}; choose a PGDATA_DIR under a world-traversable folder (e.g. /var/tmp/...)"
        else
            u="$(id -un)"
        fi
        init_cluster "$u" "$bin"
    else
        u="$(server_user)"
        [[ -f "${DATA_DIR}/PG_VERSION" ]] \
            || die "${DATA_DIR} exists but is not a PostgreSQL data dir; remove it and retry"
        if ! is_root && [[ "$(stat -c %U "$DATA_DIR")" != "$u" ]]; then
            die "${DATA_DIR} is owned by $(stat -c %U "$DATA_DIR"), not by you ($u); run as root or that user"
        fi
        local want; want="$(cat "${DATA_DIR}/PG_VERSION")"
        if [[ -z "${CX_PG_BIN:-}" && "$bin" != "/usr/lib/postgresql/${want}/bin" ]]; then
            die "${DATA_DIR} was made by PostgreSQL ${want}, but only ${bin} is installed; stop the server and remove the data dir to re-create it"
        fi
    fi

    local pid
    if pid="$(running_pid)"; then
        local rport; rport="$(running_port)"
        [[ "$rport" == "$PORT" ]] \
            || die "the cluster in ${DATA_DIR} is already running on port ${rport}, not ${PORT}; run '$0 stop' first"
        log "already running (pid ${pid}) on 127.0.0.1:${PORT}, data dir ${DATA_DIR}"
    else
        mkdir -p "$SOCKET_DIR"
        if is_root; then chown "$u": "$SOCKET_DIR"; fi
        chmod 0700 "$SOCKET_DIR"
        # The log file is opened by pg_ctl, i.e. by the server user.
        touch "$LOG_FILE"
        if is_root; then chown "$u": "$LOG_FILE"; fi
        write_cluster_config "$u"
        log "starting PostgreSQL ($(basename "$(dirname "$bin")")) on 127.0.0.1:${PORT}, data dir ${DATA_DIR}, log ${LOG_FILE}"
        # Close fd 3 (our stdout) and fd 9 (the lock) for the server: it would inherit them and
        # keep them open for its whole life, so `$(postgres.sh start)` would never return and
        # the lock would never be released.
        if ! as_server "$u" "${bin}/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 120 start >&2 3>&- 9>&-; then
            log "last lines of ${LOG_FILE}:"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "PostgreSQL did not start (is port ${PORT} already in use? set CX_PG_PORT to use another one)"
        fi
    fi

    ensure_role_and_db "$u" "$bin"
    log "ready: ${URL}"
    printf '%s\n' "$URL" >&3
}

# ---------------------------------------------------------------------------------------------
# stop / status / url
# ---------------------------------------------------------------------------------------------
cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running (data dir ${DATA_DIR})"
        return 0
    fi
    local bin u
    u="$(server_user)"
    if bin="$(find_pg_bin)" && [[ -x "${bin}/pg_ctl" ]]; then
        as_server "$u" "${bin}/pg_ctl" -D "$DATA_DIR" -m fast -w -t 120 stop >&2
    else
        # Binaries gone (package removed under a running server): SIGINT is a "fast" shutdown.
        kill -INT "$pid"
        local i
        for i in $(seq 1 120); do running_pid >/dev/null || break; sleep 0.5; done
        ! running_pid >/dev/null || die "PostgreSQL (pid ${pid}) did not stop"
    fi
    log "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running (pid ${pid}) on 127.0.0.1:$(running_port), data dir ${DATA_DIR}"
        return 0
    fi
    echo "not running (data dir ${DATA_DIR})"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) printf '%s\n' "$URL" ;;
    *)
        echo "usage: $0 {start|stop|status|url}" >&2
        exit 2
        ;;
esac
