#!/usr/bin/env bash
# Start throwaway MariaDB and PostgreSQL 15 servers on loopback for idmap's tests.
#
# Usage:
#   eval "$(scripts/start-servers.sh)"     # sets IDMAP_MYSQL_DSN and IDMAP_PG_DSN
#   scripts/stop-servers.sh [--clean]      # stops them (--clean also deletes the data)
#
# Only the `export ...` lines go to stdout; all progress goes to stderr.
# Idempotent: if the servers of a previous call are still running (same
# IDMAP_SERVERS_DIR), they are reused and the same exports are printed again.
#
# Environment:
#   IDMAP_SERVERS_DIR  data, sockets, pid and log files (default /tmp/idmap-servers)
#   IDMAP_MYSQL_PORT   preferred MariaDB TCP port (default 3306)
#   IDMAP_PG_PORT      preferred PostgreSQL TCP port (default 5432)
#   IDMAP_START_TIMEOUT  seconds to wait for each server to accept connections (default 90)
# If a preferred port is taken by something else, the next free port above it is used.
#
# As root, a missing mariadb-server (or postgresql-15) is installed with apt-get,
# MariaDB runs as the `mysql` user and PostgreSQL as the `postgres` user (created
# if missing). As another user, the servers run as that user and must already be
# installed.
#
# MariaDB:    user idmap/idmap, all privileges on databases `idmap_%` (idmap_test
#             is created), plus PROCESS, CONNECTION ADMIN and SUPER so tests can KILL.
# PostgreSQL: role idmap/idmap (LOGIN SUPERUSER), database idmap_test owned by it.
set -euo pipefail

# Keep the real stdout on fd 3 for the export lines; everything else goes to stderr.
exec 3>&1 1>&2

DIR=${IDMAP_SERVERS_DIR:-/tmp/idmap-servers}
MYSQL_PORT_WANT=${IDMAP_MYSQL_PORT:-3306}
PG_PORT_WANT=${IDMAP_PG_PORT:-5432}
TIMEOUT=${IDMAP_START_TIMEOUT:-90}
PGBIN=${IDMAP_PGBIN:-/usr/lib/postgresql/15/bin}

MY_DIR=$DIR/mysql
MY_DATA=$MY_DIR/data
MY_SOCK=$MY_DIR/mysqld.sock
MY_PID=$MY_DIR/mysqld.pid
MY_LOG=$MY_DIR/mysqld.log
PG_DIR=$DIR/pg
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/sock
PG_LOG=$PG_DIR/postgres.log
STATE=$DIR/ports.env

log() { printf '[start-servers] %s\n' "$*"; }
die() { log "ERROR: $*"; exit 1; }

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

dump_logs() {
  local f
  for f in "$MY_DIR/install-db.log" "$MY_LOG" "$PG_DIR/initdb.log" "$PG_LOG"; do
    if [ -s "$f" ]; then
      printf '\n===== %s (last 80 lines) =====\n' "$f"
      tail -n 80 "$f" || true
    fi
  done
}
LAUNCHED=0
on_exit() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    log "failed (exit $rc); server logs follow"
    dump_logs
    # Do not leave a half-started server behind.
    if [ "$LAUNCHED" = 1 ]; then
      log "stopping the servers"
      bash "$(dirname "${BASH_SOURCE[0]}")/stop-servers.sh" 3>&- || true
    fi
  fi
}
trap on_exit EXIT

# port_busy PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port PREFERRED: PREFERRED if free, else the next free port above it.
free_port() {
  local p=$1 i
  for ((i = 0; i < 200; i++)); do
    if ! port_busy "$p"; then echo "$p"; return 0; fi
    p=$((p + 1))
  done
  die "no free port found from $1 to $p"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# proc_is PID NAME: PID is alive and its command line mentions NAME (pids get reused).
proc_is() { pid_alive "$1" && grep -q "$2" "/proc/$1/cmdline" 2>/dev/null; }

# --------------------------------------------------------------------------- apt
apt_updated=0
apt_install() {
  [ "$IS_ROOT" = 1 ] || die "$* not installed, and not root to install it (try: sudo apt-get install -y $*)"
  export DEBIAN_FRONTEND=noninteractive
  local apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  local i
  if [ "$apt_updated" = 0 ]; then
    for i in 1 2 3; do
      if timeout 600 apt-get "${apt_opts[@]}" update -q; then break; fi
      [ "$i" = 3 ] && die "apt-get update failed"
      log "apt-get update failed, retrying in 5s"; sleep 5
    done
    apt_updated=1
  fi
  # No systemd here: keep the package's postinst from starting its own server
  # (on /var/lib/mysql, port 3306) through invoke-rc.d.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local ok=0
  for i in 1 2 3; do
    if timeout 1200 apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "$@"; then ok=1; break; fi
    log "apt-get install $* failed, retrying in 5s"; sleep 5
  done
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$ok" = 1 ] || die "apt-get install $* failed"
}

# --------------------------------------------------------------------------- dirs
mkdir -p "$DIR"
# The server users must be able to reach their subdirectories.
chmod 755 "$DIR"

MYSQL_PORT=
PG_PORT=
if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  . "$STATE"
fi

# =========================================================================== MariaDB
MARIADBD=$(command -v mariadbd || true)
[ -z "$MARIADBD" ] && [ -x /usr/sbin/mariadbd ] && MARIADBD=/usr/sbin/mariadbd
if [ -z "$MARIADBD" ]; then
  log "installing mariadb-server from Debian's packages"
  t0=$SECONDS
  apt_install mariadb-server mariadb-client
  log "mariadb-server installed in $((SECONDS - t0))s"
  MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  [ -x "$MARIADBD" ] || die "mariadbd not found after installing mariadb-server"
fi
MARIADB=$(command -v mariadb || command -v mysql || die "mariadb client not found")
MARIADB_ADMIN=$(command -v mariadb-admin || command -v mysqladmin || die "mariadb-admin not found")
INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db || die "mariadb-install-db not found")

my_root() { "$MARIADB" --no-defaults --protocol=socket -S "$MY_SOCK" -uroot "$@"; }
my_ping() { "$MARIADB_ADMIN" --no-defaults --protocol=socket -S "$MY_SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

my_running=0
if proc_is "$(cat "$MY_PID" 2>/dev/null || true)" mariadbd && [ -n "$MYSQL_PORT" ] && my_ping; then
  my_running=1
  log "MariaDB already running (pid $(cat "$MY_PID"), port $MYSQL_PORT); reusing it"
fi

if [ "$my_running" = 0 ]; then
  if proc_is "$(cat "$MY_PID" 2>/dev/null || true)" mariadbd; then
    die "a mariadbd (pid $(cat "$MY_PID")) is running on $MY_DATA but does not answer; run scripts/stop-servers.sh first"
  fi
  rm -f "$MY_PID" "$MY_SOCK" "$MY_SOCK.lock"
  MY_USER_OPT=()
  if [ "$IS_ROOT" = 1 ]; then
    id mysql >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mysql
    MY_USER_OPT=(--user=mysql)
  fi
  mkdir -p "$MY_DIR"
  if [ ! -f "$MY_DIR/.initialized" ]; then
    rm -rf "$MY_DATA"
    mkdir -p "$MY_DATA"
    [ "$IS_ROOT" = 1 ] && chown -R mysql:mysql "$MY_DIR"
    log "initialising MariaDB data directory $MY_DATA"
    if ! timeout 300 "$INSTALL_DB" --no-defaults "${MY_USER_OPT[@]}" --datadir="$MY_DATA" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        >"$MY_DIR/install-db.log" 2>&1; then
      die "mariadb-install-db failed (see $MY_DIR/install-db.log)"
    fi
    touch "$MY_DIR/.initialized"
  fi
  [ "$IS_ROOT" = 1 ] && chown -R mysql:mysql "$MY_DIR"
  MYSQL_PORT=$(free_port "$MYSQL_PORT_WANT")
  log "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  # All fds go to files, and fd 3 (our real stdout) is closed, so that
  # eval "$(...)" and pipes do not wait for the daemon to exit.
  setsid "$MARIADBD" --no-defaults "${MY_USER_OPT[@]}" \
    --datadir="$MY_DATA" --socket="$MY_SOCK" --pid-file="$MY_PID" --log-error="$MY_LOG" \
    --bind-address=127.0.0.1 --port="$MYSQL_PORT" --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --max-connections=500 --innodb-buffer-pool-size=256M \
    --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
    </dev/null >>"$MY_DIR/mysqld.stdout" 2>&1 3>&- &
  my_bg=$!
  LAUNCHED=1
  # mariadbd writes its pid file only once it is up; stop-servers.sh also
  # looks here so that a server that fails to come up can still be stopped.
  echo "$my_bg" >"$MY_DIR/mysqld.launch.pid"
  deadline=$((SECONDS + TIMEOUT))
  until my_ping; do
    if ! pid_alive "$my_bg"; then die "mariadbd exited during startup"; fi
    [ "$SECONDS" -ge "$deadline" ] && die "MariaDB did not accept connections within ${TIMEOUT}s"
    sleep 0.5
  done
  log "MariaDB is up"
fi

log "setting up MariaDB database idmap_test and user idmap"
my_root -v --batch <<'SQL' >/dev/null
DROP USER IF EXISTS ''@'localhost';
CREATE DATABASE IF NOT EXISTS idmap_test CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'idmap'@'%' IDENTIFIED BY 'idmap';
CREATE USER IF NOT EXISTS 'idmap'@'localhost' IDENTIFIED BY 'idmap';
ALTER USER 'idmap'@'%' IDENTIFIED BY 'idmap';
ALTER USER 'idmap'@'localhost' IDENTIFIED BY 'idmap';
GRANT ALL PRIVILEGES ON `idmap_%`.* TO 'idmap'@'%';
GRANT ALL PRIVILEGES ON `idmap_%`.* TO 'idmap'@'localhost';
GRANT PROCESS, CONNECTION ADMIN, SUPER ON *.* TO 'idmap'@'%';
GRANT PROCESS, CONNECTION ADMIN, SUPER ON *.* TO 'idmap'@'localhost';
FLUSH PRIVILEGES;
SQL
# Check the test credentials over TCP, as the tests will use them.
"$MARIADB" --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uidmap -pidmap \
  --connect-timeout=5 -D idmap_test -e 'SELECT 1' >/dev/null ||
  die "cannot connect to MariaDB as idmap over TCP 127.0.0.1:$MYSQL_PORT"

# =========================================================================== PostgreSQL
if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/postgres" ]; then
  log "PostgreSQL 15 server binaries missing under $PGBIN; installing postgresql-15"
  t0=$SECONDS
  apt_install postgresql-15
  log "postgresql-15 installed in $((SECONDS - t0))s"
  [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found after installing postgresql-15"
fi
PSQL=$PGBIN/psql
[ -x "$PSQL" ] || PSQL=$(command -v psql || die "psql not found")

# as_pg CMD...: run CMD as the postgres user when root, else as ourselves.
# cd / first: the caller's directory (e.g. /root/...) may not be readable by postgres.
as_pg() {
  if [ "$IS_ROOT" = 1 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}
pg_ready() { "$PGBIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }
pg_pid() { head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_running=0
if [ -n "$PG_PORT" ] && proc_is "$(pg_pid)" postgres && pg_ready; then
  pg_running=1
  log "PostgreSQL already running (pid $(pg_pid), port $PG_PORT); reusing it"
fi

if [ "$pg_running" = 0 ]; then
  if proc_is "$(pg_pid)" postgres; then
    die "a postgres (pid $(pg_pid)) is running on $PG_DATA but does not answer; run scripts/stop-servers.sh first"
  fi
  if [ "$IS_ROOT" = 1 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres
  fi
  mkdir -p "$PG_DIR"
  [ "$IS_ROOT" = 1 ] && chown postgres: "$PG_DIR"
  as_pg test -w "$PG_DIR" || die "$PG_DIR is not writable by the postgres user (is a parent of $DIR private?)"
  if [ ! -f "$PG_DIR/.initialized" ]; then
    rm -rf "$PG_DATA"
    log "initialising PostgreSQL data directory $PG_DATA"
    if ! as_pg timeout 300 "$PGBIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-instructions \
        >"$PG_DIR/initdb.log" 2>&1; then
      die "initdb failed (see $PG_DIR/initdb.log)"
    fi
    cat >>"$PG_DATA/postgresql.conf" <<'CONF'

# idmap test server: throwaway data, favour speed over durability.
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
CONF
    touch "$PG_DIR/.initialized"
  fi
  mkdir -p "$PG_SOCK"
  [ "$IS_ROOT" = 1 ] && chown -R postgres: "$PG_DIR"
  PG_PORT=$(free_port "$PG_PORT_WANT")
  # Logical replication, for the change feed (bus/pgfeed) and its tests: each
  # test process may hold a few temporary slots and walsenders at once.
  PG_FEED_OPTS="-c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64"
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT ($PG_FEED_OPTS)"
  LAUNCHED=1
  # pg_ctl -l sends the server's output to the log file and detaches it;
  # fd 3 is closed so that the server does not hold our real stdout open.
  if ! as_pg "$PGBIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_SOCK $PG_FEED_OPTS" \
      start </dev/null 3>&-; then
    die "pg_ctl start failed"
  fi
  deadline=$((SECONDS + TIMEOUT))
  until pg_ready; do
    [ "$SECONDS" -ge "$deadline" ] && die "PostgreSQL did not accept connections within ${TIMEOUT}s"
    sleep 0.5
  done
  log "PostgreSQL is up"
fi

log "setting up PostgreSQL role idmap and database idmap_test"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres <<'SQL' >/dev/null
SELECT 'CREATE ROLE idmap' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'idmap') \gexec
ALTER ROLE idmap WITH LOGIN SUPERUSER CREATEDB PASSWORD 'idmap';
SELECT 'CREATE DATABASE idmap_test OWNER idmap' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'idmap_test') \gexec
SQL
PGPASSWORD=idmap PGCONNECT_TIMEOUT=5 "$PSQL" -X -q -h 127.0.0.1 -p "$PG_PORT" -U idmap -d idmap_test \
  -c 'SELECT 1' >/dev/null ||
  die "cannot connect to PostgreSQL as idmap over TCP 127.0.0.1:$PG_PORT"

# =========================================================================== done
printf 'MYSQL_PORT=%s\nPG_PORT=%s\n' "$MYSQL_PORT" "$PG_PORT" >"$STATE"

MYSQL_DSN="idmap:idmap@tcp(127.0.0.1:$MYSQL_PORT)/idmap_test?parseTime=true"
PG_DSN="postgres://idmap:idmap@127.0.0.1:$PG_PORT/idmap_test?sslmode=disable"
# The passwords stay out of the log (the exports on stdout carry them).
log "MariaDB:    ${MYSQL_DSN/:idmap@/:***@}"
log "PostgreSQL: ${PG_DSN/:idmap@/:***@}"
printf "export IDMAP_SERVERS_DIR='%s'\n" "$DIR" >&3
printf "export IDMAP_MYSQL_DSN='%s'\n" "$MYSQL_DSN" >&3
printf "export IDMAP_PG_DSN='%s'\n" "$PG_DSN" >&3
