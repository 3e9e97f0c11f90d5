#!/usr/bin/env bash
# Start and stop the real services the tests and benchmarks run against.
#
#   scripts/services.sh start    # idempotent; waits until every service is ready
#   scripts/services.sh stop     # idempotent
#   scripts/services.sh status   # exit status 0 when every service is running
#   scripts/services.sh clean    # stop, then delete the data (the next start begins afresh)
#
# Everything runs from throwaway directories on local ports, so it never touches a system
# PostgreSQL. Works on a fresh Debian machine as root (CI) and as an ordinary user.
set -euo pipefail

PG_VERSION=15
PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"
PG_HOST=127.0.0.1
PG_PORT="${TRACKD_PG_PORT:-55432}"
# Outside the work tree: the server cannot run as root, and the unprivileged user it runs as
# may not be able to traverse to a checkout under /root. In RAM when there is a tmpfs, because
# CREATE/DROP DATABASE (one pair per test) is ten times slower on disk even with fsync off.
# Keyed by uid and port so users, and servers on other ports, do not collide.
if [[ -d /dev/shm && -w /dev/shm ]]; then
    PG_DIR="${TRACKD_PG_DIR:-/dev/shm/trackd-pg-$(id -u)-${PG_PORT}}"
else
    PG_DIR="${TRACKD_PG_DIR:-/tmp/trackd-pg-$(id -u)-${PG_PORT}}"
fi
PG_DATA="${PG_DIR}/data"
PG_LOG="${PG_DIR}/server.log"
# PostgreSQL refuses to run as root; as root we run it as this system user instead.
PG_OS_USER=trackd-pg

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

APT_UPDATED=0
apt_install() {
    [[ $(id -u) -eq 0 ]] || die "missing $*; install it with: sudo apt-get install -y $*"
    if [[ $APT_UPDATED -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# Runs a command as the user that owns the PostgreSQL data directory.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_postgres_installed() {
    [[ -x "${PG_BIN}/postgres" ]] || apt_install "postgresql-${PG_VERSION}"
}

ensure_postgres_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_OS_USER"
}

ensure_postgres_cluster() {
    if [[ -f "${PG_DATA}/PG_VERSION" ]]; then
        # A machine handed back with /tmp intact may have had the user recreated with a new uid.
        if [[ $(id -u) -eq 0 && $(stat -c %U "$PG_DIR") != "$PG_OS_USER" ]]; then
            chown -R "$PG_OS_USER:$PG_OS_USER" "$PG_DIR"
        fi
        return 0
    fi
    log "initialising PostgreSQL ${PG_VERSION} in ${PG_DATA}"
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$PG_OS_USER:$PG_OS_USER" "$PG_DIR"
    fi
    chmod 700 "$PG_DIR"
    # Trust auth: the server only listens on loopback and a private socket directory, and holds
    # nothing but test data. Locale C keeps sorting identical on every machine.
    as_pg "${PG_BIN}/initdb" --pgdata="$PG_DATA" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-instructions >"${PG_DIR}/initdb.log" 2>&1 \
        || { cat "${PG_DIR}/initdb.log" >&2; die "initdb failed"; }
}

postgres_running() {
    [[ -f "${PG_DATA}/PG_VERSION" ]] && as_pg "${PG_BIN}/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

start_postgres() {
    ensure_postgres_installed
    ensure_postgres_user
    ensure_postgres_cluster
    if ! postgres_running; then
        log "starting PostgreSQL on ${PG_HOST}:${PG_PORT}"
        # Settings go on the command line rather than into postgresql.conf so that changing them
        # here takes effect on the next start, even for an existing data directory.
        # fsync, synchronous_commit and full_page_writes off: test data may be lost in a crash,
        # and skipping the flushes makes creating and dropping a database per test cheap.
        local options=(
            "-c listen_addresses=${PG_HOST}"
            "-c port=${PG_PORT}"
            "-c unix_socket_directories=${PG_DIR}"
            "-c max_connections=200"
            "-c fsync=off"
            "-c synchronous_commit=off"
            "-c full_page_writes=off"
        )
        as_pg "${PG_BIN}/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -o "${options[*]}" \
            >/dev/null || { tail -n 30 "$PG_LOG" >&2 || true; die "PostgreSQL did not start"; }
    fi
    local tries=0
    until "${PG_BIN}/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U postgres; do
        tries=$((tries + 1))
        [[ $tries -lt 60 ]] || die "PostgreSQL is not accepting connections on ${PG_HOST}:${PG_PORT}"
        sleep 0.5
    done
    log "PostgreSQL ready (data ${PG_DATA}, log ${PG_LOG})"
    echo "TRACKD_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@${PG_HOST}:${PG_PORT}/postgres"
}

stop_postgres() {
    if postgres_running; then
        log "stopping PostgreSQL"
        # Fast: roll back open transactions and disconnect; nothing here is worth waiting for.
        as_pg "${PG_BIN}/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null
    fi
}

clean_postgres() {
    stop_postgres
    rm -rf "$PG_DIR"
}

usage() {
    echo "usage: $0 start|stop|status|clean" >&2
    exit 2
}

main() {
    [[ $# -eq 1 ]] || usage
    case "$1" in
        start) start_postgres ;;
        stop) stop_postgres ;;
        status) postgres_running ;;
        clean) clean_postgres ;;
        *) usage ;;
    esac
}

main "$@"
