#!/usr/bin/env bash
# Local PostgreSQL server for the audit store's contract tests and for trying the audit on PostgreSQL.
#
#   pg-local.sh start | stop | status | url
#
# `start` installs PostgreSQL from Debian packages when no server binaries are found, creates a cluster
# in .run/postgres (owned by an unprivileged user: the server refuses to run as root), starts it on
# 127.0.0.1:5433, creates the database `mlc_test`, and prints one line on stdout:
#   MLC_TEST_POSTGRES_URL=postgresql+psycopg://mlc@127.0.0.1:5433/mlc_test
# so callers can `eval "$(pg-local.sh start)"` or `export "$(pg-local.sh start)"`. Progress goes to stderr.
# Every command is idempotent. The cluster trusts local TCP connections: it is a test server bound to
# 127.0.0.1 only, never a deployment.
#
# Environment: MLC_PG_DIR (cluster directory, default .run/postgres), MLC_PG_PORT (5433),
# MLC_PG_DB (mlc_test), MLC_PG_SUPERUSER (mlc), MLC_PG_OS_USER (postgres; only used when run as root).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

PGDIR=${MLC_PG_DIR:-$REPO/.run/postgres}
DATA=$PGDIR/data
LOGFILE=$PGDIR/server.log
PORT=${MLC_PG_PORT:-5433}
DB=${MLC_PG_DB:-mlc_test}
SUPERUSER=${MLC_PG_SUPERUSER:-mlc}
OS_USER=${MLC_PG_OS_USER:-postgres}
HOST=127.0.0.1

log() { printf 'pg-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

url() { printf 'MLC_TEST_POSTGRES_URL=postgresql+psycopg://%s@%s:%s/%s\n' "$SUPERUSER" "$HOST" "$PORT" "$DB"; }

find_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "$dir/initdb" ]; then printf '%s\n' "$dir"; return 0; fi
  fi
  for dir in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then printf '%s\n' "$dir"; return 0; fi
  done
  return 1
}

install_server() {
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and installing it needs root (apt-get install -y postgresql)"
  log "installing PostgreSQL from Debian packages"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

BINDIR=$(find_bindir || true)

# Run a server command as the unprivileged owner of the cluster when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$OS_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_os_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  if ! id "$OS_USER" >/dev/null 2>&1; then
    log "creating system user $OS_USER"
    useradd --system --home-dir "$PGDIR" --shell /usr/sbin/nologin "$OS_USER"
  fi
}

running() {
  [ -n "$BINDIR" ] && [ -f "$DATA/PG_VERSION" ] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

wait_ready() {
  local deadline=$((SECONDS + 60))
  until as_owner "$BINDIR/pg_isready" -h "$HOST" -p "$PORT" -q; do
    [ $SECONDS -lt $deadline ] || die "server did not accept connections within 60 s; see $LOGFILE"
    sleep 0.2
  done
}

psql_admin() {
  as_owner "$BINDIR/psql" -h "$HOST" -p "$PORT" -U "$SUPERUSER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

start() {
  if [ -z "$BINDIR" ]; then
    install_server
    BINDIR=$(find_bindir) || die "no PostgreSQL server binaries found after installing"
  fi
  ensure_os_user
  mkdir -p "$PGDIR"
  if [ "$(id -u)" -eq 0 ]; then chown "$OS_USER" "$PGDIR"; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "creating a cluster in $DATA ($BINDIR)"
    as_owner "$BINDIR/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
  fi
  if running; then
    log "already running on $HOST:$PORT"
  else
    log "starting on $HOST:$PORT"
    # The socket lives in the cluster directory, so the server needs no write access to /var/run.
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 \
      -o "-c listen_addresses=$HOST -p $PORT -c unix_socket_directories=$PGDIR" \
      start >&2
  fi
  wait_ready
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    psql_admin -c "CREATE DATABASE \"$DB\""
  fi
  url
}

stop() {
  if running; then
    log "stopping"
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
  else
    log "not running"
  fi
}

status() {
  if running; then
    log "running on $HOST:$PORT (cluster $DATA)"
    url
  else
    log "not running"
    return 1
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
