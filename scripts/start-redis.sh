#!/usr/bin/env bash
# Start a throwaway Redis server on loopback for the tests of bus/redisbus.
#
# Usage:
#   eval "$(scripts/start-redis.sh)"       # sets IDMAP_REDIS_ADDR=127.0.0.1:PORT
#   scripts/stop-servers.sh [--clean]      # stops it (and the other servers)
#
# Only the `export ...` lines go to stdout; all progress goes to stderr.
# Idempotent: if the server of a previous call is still running (same
# IDMAP_SERVERS_DIR), it is reused and the same export is printed again.
#
# Environment:
#   IDMAP_SERVERS_DIR    pid, log and state files, under redis/ (default /tmp/idmap-servers)
#   IDMAP_REDIS_PORT     preferred TCP port (default 6379); if taken, the next free one above it
#   IDMAP_START_TIMEOUT  seconds to wait for the server to answer PING (default 90)
#
# As root, a missing redis-server is installed from Debian's packages with
# apt-get (apt-get update is run only if the install fails without it). As
# another user it must already be installed. The server keeps nothing on disk
# (--save '' --appendonly no), listens on 127.0.0.1 only and has no password.
set -euo pipefail

# Keep the real stdout on fd 3 for the export line; everything else goes to stderr.
exec 3>&1 1>&2

DIR=${IDMAP_SERVERS_DIR:-/tmp/idmap-servers}
PORT_WANT=${IDMAP_REDIS_PORT:-6379}
TIMEOUT=${IDMAP_START_TIMEOUT:-90}

R_DIR=$DIR/redis
R_PID=$R_DIR/redis.pid
R_LOG=$R_DIR/redis.log
R_STATE=$R_DIR/port

log() { printf '[start-redis] %s\n' "$*"; }
die() { log "ERROR: $*"; exit 1; }

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# proc_is PID NAME: PID is alive and its command line mentions NAME (pids get reused).
proc_is() { pid_alive "$1" && grep -q "$2" "/proc/$1/cmdline" 2>/dev/null; }
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

LAUNCHED=0
on_exit() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    log "failed (exit $rc)"
    if [ -s "$R_LOG" ]; then
      printf '\n===== %s (last 80 lines) =====\n' "$R_LOG"
      tail -n 80 "$R_LOG" || true
    fi
    # Do not leave a half-started server behind.
    if [ "$LAUNCHED" = 1 ]; then
      local pid
      pid=$(cat "$R_PID" 2>/dev/null || true)
      if proc_is "$pid" redis-server; then
        log "stopping redis-server (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
      fi
    fi
  fi
}
trap on_exit EXIT

# --------------------------------------------------------------------------- install
REDIS_SERVER=$(command -v redis-server || true)
[ -z "$REDIS_SERVER" ] && [ -x /usr/bin/redis-server ] && REDIS_SERVER=/usr/bin/redis-server
if [ -z "$REDIS_SERVER" ] || ! command -v redis-cli >/dev/null 2>&1; then
  [ "$IS_ROOT" = 1 ] || die "redis-server not installed, and not root to install it (try: sudo apt-get install -y redis-server)"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # No systemd here: keep the package's postinst from starting its own server
  # (on port 6379) through invoke-rc.d.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  log "installing redis-server from Debian's packages"
  t0=$SECONDS
  ok=0
  if timeout 1200 apt-get "${apt_opts[@]}" install -y -q --no-install-recommends redis-server; then
    ok=1
  else
    log "apt-get install redis-server failed; running apt-get update and retrying"
    for i in 1 2 3; do
      if timeout 600 apt-get "${apt_opts[@]}" update -q &&
        timeout 1200 apt-get "${apt_opts[@]}" install -y -q --no-install-recommends redis-server; then
        ok=1
        break
      fi
      log "apt-get update/install failed (attempt $i), retrying in 5s"
      sleep 5
    done
  fi
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$ok" = 1 ] || die "apt-get install redis-server failed"
  log "redis-server installed in $((SECONDS - t0))s"
  REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
  [ -x "$REDIS_SERVER" ] || die "redis-server not found after installing it"
fi
REDIS_CLI=$(command -v redis-cli || die "redis-cli not found")

# redis_ping PORT: true if the server on PORT answers PONG.
redis_ping() { [ "$(timeout 5 "$REDIS_CLI" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

# --------------------------------------------------------------------------- start
mkdir -p "$R_DIR"
PORT=$(cat "$R_STATE" 2>/dev/null || true)

running=0
if [ -n "$PORT" ] && proc_is "$(cat "$R_PID" 2>/dev/null || true)" redis-server && redis_ping "$PORT"; then
  running=1
  log "Redis already running (pid $(cat "$R_PID"), port $PORT); reusing it"
fi

if [ "$running" = 0 ]; then
  if proc_is "$(cat "$R_PID" 2>/dev/null || true)" redis-server; then
    die "a redis-server (pid $(cat "$R_PID")) of $R_DIR is running but does not answer; run scripts/stop-servers.sh first"
  fi
  rm -f "$R_PID" "$R_STATE"
  PORT=$(free_port "$PORT_WANT")
  log "starting Redis on 127.0.0.1:$PORT"
  LAUNCHED=1
  # --daemonize: redis-server forks and the parent returns; fd 3 (our real
  # stdout) is closed so that the daemon does not hold it open.
  "$REDIS_SERVER" --daemonize yes --bind 127.0.0.1 --port "$PORT" \
    --dir "$R_DIR" --pidfile "$R_PID" --logfile "$R_LOG" \
    --save '' --appendonly no \
    </dev/null >>"$R_DIR/redis.stdout" 2>&1 3>&- ||
    die "redis-server failed to start"
  deadline=$((SECONDS + TIMEOUT))
  until redis_ping "$PORT"; do
    [ "$SECONDS" -ge "$deadline" ] && die "Redis did not answer PING within ${TIMEOUT}s"
    sleep 0.2
  done
  proc_is "$(cat "$R_PID" 2>/dev/null || true)" redis-server ||
    die "port $PORT answers PING but $R_PID names no redis-server (another server took the port?)"
  echo "$PORT" >"$R_STATE"
  log "Redis is up"
fi

log "Redis: 127.0.0.1:$PORT"
printf "export IDMAP_REDIS_ADDR='127.0.0.1:%s'\n" "$PORT" >&3
