#!/usr/bin/env bash
# Stop the MariaDB and PostgreSQL servers started by scripts/start-servers.sh,
# and the Redis server started by scripts/start-redis.sh.
#
# Usage: scripts/stop-servers.sh [--clean] [--keep-redis]
#   --clean       also delete ${IDMAP_SERVERS_DIR:-/tmp/idmap-servers} (data, sockets, logs)
#   --keep-redis  leave Redis running (a test that restarts MariaDB and PostgreSQL)
#
# Safe to run when nothing is running. Only the processes whose pid files are in
# IDMAP_SERVERS_DIR are stopped. All waits are bounded.
set -euo pipefail

DIR=${IDMAP_SERVERS_DIR:-/tmp/idmap-servers}
PGBIN=${IDMAP_PGBIN:-/usr/lib/postgresql/15/bin}
CLEAN=0
KEEP_REDIS=0
for a in "$@"; do
  case "$a" in
    --clean) CLEAN=1 ;;
    --keep-redis) KEEP_REDIS=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "stop-servers: unknown argument $a" >&2; exit 2 ;;
  esac
done

log() { printf '[stop-servers] %s\n' "$*" >&2; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# wait_gone PID SECONDS: true once PID has exited.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_alive "$pid"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# kill_pid NAME PID: TERM, wait, then KILL.
kill_pid() {
  local name=$1 pid=$2
  pid_alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 30; then
    log "$name (pid $pid) still running after 30s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || log "WARNING: $name (pid $pid) did not exit"
  fi
}

rc=0

# ---------------------------------------------------------------- MariaDB
MY_PID_FILE=$DIR/mysql/mysqld.pid
MY_LAUNCH_FILE=$DIR/mysql/mysqld.launch.pid
my_stopped=0
for f in "$MY_PID_FILE" "$MY_LAUNCH_FILE"; do
  my_pid=$(cat "$f" 2>/dev/null || true)
  # Only a pid that is still a mariadbd (pids get reused).
  if pid_alive "$my_pid" && grep -q mariadbd "/proc/$my_pid/cmdline" 2>/dev/null; then
    # mariadbd shuts down cleanly on SIGTERM.
    kill_pid mariadbd "$my_pid"
    if pid_alive "$my_pid"; then rc=1; else my_stopped=1; fi
  fi
done
[ "$my_stopped" = 1 ] || [ "$rc" = 1 ] || log "MariaDB not running"
[ "$rc" = 0 ] && rm -f "$MY_PID_FILE" "$MY_LAUNCH_FILE"

# ---------------------------------------------------------------- PostgreSQL
PG_DATA=$DIR/pg/data
pg_pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
# Only a pid that is still a postgres (a stale postmaster.pid's pid may be reused).
if pid_alive "$pg_pid" && grep -q postgres "/proc/$pg_pid/cmdline" 2>/dev/null; then
  log "stopping PostgreSQL (pid $pg_pid)"
  if [ -x "$PGBIN/pg_ctl" ]; then
    if [ "$(id -u)" = 0 ] && [ "$(stat -c %U "$PG_DATA")" != root ]; then
      (cd / && runuser -u "$(stat -c %U "$PG_DATA")" -- "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop) >&2 || true
    else
      (cd / && "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop) >&2 || true
    fi
  fi
  # Fallback if pg_ctl could not stop it. SIGINT is postgres' "fast" shutdown.
  if pid_alive "$pg_pid"; then
    kill -INT "$pg_pid" 2>/dev/null || true
    wait_gone "$pg_pid" 20 || kill_pid postgres "$pg_pid"
  fi
  pid_alive "$pg_pid" && rc=1
else
  log "PostgreSQL not running"
fi

# ---------------------------------------------------------------- Redis
R_PID_FILE=$DIR/redis/redis.pid
r_pid=$(cat "$R_PID_FILE" 2>/dev/null || true)
# Only a pid that is still a redis-server (pids get reused).
if [ "$KEEP_REDIS" = 1 ]; then
  log "leaving Redis running (--keep-redis)"
elif pid_alive "$r_pid" && grep -q redis-server "/proc/$r_pid/cmdline" 2>/dev/null; then
  # redis-server shuts down on SIGTERM (no persistence: nothing to save).
  kill_pid redis-server "$r_pid"
  if pid_alive "$r_pid"; then rc=1; else rm -f "$R_PID_FILE" "$DIR/redis/port"; fi
else
  log "Redis not running"
fi

if [ "$CLEAN" = 1 ]; then
  if [ "$DIR" = / ] || { [ -e "$DIR" ] && [ ! -e "$DIR/ports.env" ] && [ ! -d "$DIR/mysql" ] && [ ! -d "$DIR/pg" ] && [ ! -d "$DIR/redis" ]; }; then
    log "not removing $DIR: it does not look like a start-servers.sh directory"
  elif [ "$rc" = 0 ]; then
    log "removing $DIR"
    rm -rf "$DIR"
  else
    log "not removing $DIR: a server is still running"
  fi
fi
exit "$rc"
