#!/usr/bin/env bash
# Start and stop the real services the tests and benchmarks run against: PostgreSQL, Redis and
# NATS (with JetStream).
#
#   scripts/services.sh start [SERVICE...]    # idempotent; waits until each service is ready
#   scripts/services.sh stop [SERVICE...]     # idempotent
#   scripts/services.sh status [SERVICE...]   # exit status 0 when every service named is running
#   scripts/services.sh clean [SERVICE...]    # stop, then delete the data (the next start is fresh)
#
# SERVICE is postgres, redis or nats; none means all three. `start` prints one line per service,
# e.g. TRACKD_TEST_REDIS_URL=redis://127.0.0.1:56379/0, that the tests read from the environment.
# `start` also installs Debian's chromium when it is missing (the browser tests drive it).
#
# Everything runs from throwaway directories on local ports, so it never touches a system
# PostgreSQL, Redis or NATS. Works on a fresh Debian machine as root (CI) and as an ordinary user.
# Ports and directories can be moved so that two runs on one machine do not stop each other's
# servers: TRACKD_PG_PORT / TRACKD_PG_DIR, TRACKD_REDIS_PORT / TRACKD_REDIS_DIR,
# TRACKD_NATS_PORT / TRACKD_NATS_DIR.
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

# Redis and NATS run as whoever runs this script (root included): they hold only test data.
REDIS_HOST=127.0.0.1
REDIS_PORT="${TRACKD_REDIS_PORT:-56379}"
REDIS_DIR="${TRACKD_REDIS_DIR:-/tmp/trackd-redis-$(id -u)-${REDIS_PORT}}"
REDIS_PID="${REDIS_DIR}/redis.pid"
REDIS_LOG="${REDIS_DIR}/redis.log"
NATS_HOST=127.0.0.1
NATS_PORT="${TRACKD_NATS_PORT:-54222}"
NATS_DIR="${TRACKD_NATS_DIR:-/tmp/trackd-nats-$(id -u)-${NATS_PORT}}"
NATS_PID="${NATS_DIR}/nats.pid"
NATS_LOG="${NATS_DIR}/nats.log"
NATS_BIN=nats-server

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

APT_UPDATED=0
# Installs Debian packages, running `apt-get update` only before the first install of this run.
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
    ensure_installed postgres
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


# Installs every missing package of the services named in one apt-get run.
ensure_installed() {
    local missing=() service
    for service in "$@"; do
        case "$service" in
            postgres) [[ -x "${PG_BIN}/postgres" ]] || missing+=("postgresql-${PG_VERSION}") ;;
            redis)
                command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
                    || missing+=(redis-server redis-tools)
                ;;
            nats) command -v "$NATS_BIN" >/dev/null || missing+=(nats-server) ;;
            # Not a server: the browser the dashboard's tests drive (Playwright never downloads
            # one). Only root installs it here; others are told, and those tests skip.
            chromium)
                if [[ ! -x /usr/bin/chromium ]]; then
                    if [[ $(id -u) -eq 0 ]]; then
                        missing+=(chromium)
                    else
                        log "no /usr/bin/chromium: browser tests skip (sudo apt-get install -y chromium)"
                    fi
                fi
                ;;
        esac
    done
    [[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
    # Debian puts nats-server in /usr/sbin, which an ordinary user's PATH may lack.
    if ! command -v "$NATS_BIN" >/dev/null && [[ -x /usr/sbin/nats-server ]]; then
        NATS_BIN=/usr/sbin/nats-server
    fi
}

# True when the process in the pid file is alive.
pid_running() {
    [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Sends SIGTERM to the process in the pid file and waits up to 30 s for it to exit.
stop_pid() {
    local pid_file=$1 name=$2 pid tries=0
    pid_running "$pid_file" || { rm -f "$pid_file"; return 0; }
    pid=$(cat "$pid_file")
    log "stopping ${name}"
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        [[ $tries -lt 300 ]] || die "${name} (pid ${pid}) did not stop"
        sleep 0.1
    done
    rm -f "$pid_file"
}

redis_running() {
    pid_running "$REDIS_PID"
}

start_redis() {
    ensure_installed redis
    mkdir -p "$REDIS_DIR"
    if ! redis_running; then
        log "starting Redis on ${REDIS_HOST}:${REDIS_PORT}"
        # The append-only file makes a restarted server keep what it acknowledged, which the
        # crash tests rely on; fsync once a second is what a production setup would pick too.
        # No RDB snapshots: they would only add forks. No config file: everything is here.
        redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --dir "$REDIS_DIR" \
            --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
            --appendonly yes --appendfsync everysec --save "" --databases 64 \
            || { tail -n 30 "$REDIS_LOG" >&2 || true; die "Redis did not start"; }
    fi
    local tries=0
    until [[ $(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; do
        tries=$((tries + 1))
        [[ $tries -lt 100 ]] || { tail -n 30 "$REDIS_LOG" >&2 || true; die "Redis is not answering on ${REDIS_HOST}:${REDIS_PORT}"; }
        sleep 0.1
    done
    log "Redis ready (data ${REDIS_DIR}, log ${REDIS_LOG})"
    echo "TRACKD_TEST_REDIS_URL=redis://${REDIS_HOST}:${REDIS_PORT}/0"
}

stop_redis() {
    stop_pid "$REDIS_PID" Redis
}

clean_redis() {
    stop_redis
    rm -rf "$REDIS_DIR"
}

nats_running() {
    pid_running "$NATS_PID"
}

# True once the server greets a client with its INFO line.
# In a subshell, so that the descriptor and a refused connection's message stay inside it.
nats_ready() {
    (
        exec 3<>"/dev/tcp/${NATS_HOST}/${NATS_PORT}"
        read -r -t 1 line <&3
        [[ $line == INFO* ]]
    ) 2>/dev/null
}

start_nats() {
    ensure_installed nats
    mkdir -p "${NATS_DIR}/jetstream"
    if ! nats_running; then
        log "starting NATS (JetStream) on ${NATS_HOST}:${NATS_PORT}"
        # nats-server does not daemonize itself: setsid detaches it from this shell so that it
        # outlives the script and a Ctrl-C sent to make.
        setsid "$NATS_BIN" --addr "$NATS_HOST" --port "$NATS_PORT" --jetstream \
            --store_dir "${NATS_DIR}/jetstream" --pid "$NATS_PID" --log "$NATS_LOG" \
            </dev/null >>"${NATS_DIR}/stdout.log" 2>&1 &
    fi
    local tries=0
    until nats_ready; do
        tries=$((tries + 1))
        [[ $tries -lt 100 ]] || { tail -n 30 "$NATS_LOG" >&2 || true; die "NATS is not answering on ${NATS_HOST}:${NATS_PORT}"; }
        sleep 0.1
    done
    log "NATS ready (data ${NATS_DIR}, log ${NATS_LOG})"
    echo "TRACKD_TEST_NATS_URL=nats://${NATS_HOST}:${NATS_PORT}"
}

stop_nats() {
    stop_pid "$NATS_PID" NATS
}

clean_nats() {
    stop_nats
    rm -rf "$NATS_DIR"
}

usage() {
    echo "usage: $0 start|stop|status|clean [postgres|redis|nats ...]" >&2
    exit 2
}

main() {
    [[ $# -ge 1 ]] || usage
    local action=$1 service
    shift
    local services=("$@")
    [[ ${#services[@]} -gt 0 ]] || services=(postgres redis nats)
    for service in "${services[@]}"; do
        case "$service" in
            postgres | redis | nats) ;;
            *) usage ;;
        esac
    done
    case "$action" in
        start)
            # One apt-get run for everything missing, before anything starts; Chromium too,
            # for the browser tests that `make test` runs next to the services' tests.
            ensure_installed "${services[@]}" chromium
            for service in "${services[@]}"; do "start_${service}"; done
            ;;
        stop) for service in "${services[@]}"; do "stop_${service}"; done ;;
        status)
            local status=0
            for service in "${services[@]}"; do
                if "${service}_running"; then
                    log "${service} is running"
                else
                    log "${service} is stopped"
                    status=1
                fi
            done
            return "$status"
            ;;
        clean) for service in "${services[@]}"; do "clean_${service}"; done ;;
        *) usage ;;
    esac
}

main "$@"
