# Sourced helpers for the real-swarm end-to-end test (tests/e2e/swarm_e2e.sh).
#
# Contract: source this file from bash; it defines functions and variables prefixed e2e_ / E2E_
# and changes nothing until a function is called. Everything it starts (one private dockerd in
# swarm mode) is stopped by e2e_teardown, by PID, never by name. Every path it writes lives under
# $E2E_ROOT (default /tmp/mv-e2e) or the image cache $E2E_CACHE (default /var/cache/mailvault-e2e).
#
# Environment (all optional):
#   E2E_ROOT          state directory: socket, data-root, exec-root, pidfile, logs
#   E2E_CACHE         where built images are cached as `docker save | zstd` (reused when present)
#   E2E_SWARM_PORT    swarm listen port on 127.0.0.1 (default 2477, not the stock 2377)
#   E2E_DATA_PORT     VXLAN data-path port (default 4790, not the stock 4789)
#   (Non-stock ports let this swarm coexist with another engine's swarm on the same host: two
#   overlay networks on the same VXLAN port fail with "error creating vxlan interface: file exists".)
#   E2E_KEEP=1        leave the daemon and stack running after the test, for debugging
#   E2E_NO_INSTALL=1  never run apt-get; fail instead when a tool is missing

E2E_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_ROOT="${E2E_ROOT:-/tmp/mv-e2e}"
E2E_CACHE="${E2E_CACHE:-/var/cache/mailvault-e2e}"
E2E_SWARM_PORT="${E2E_SWARM_PORT:-2477}"
E2E_DATA_PORT="${E2E_DATA_PORT:-4790}"
E2E_SOCK="$E2E_ROOT/docker.sock"
E2E_DATA_ROOT="$E2E_ROOT/data"
E2E_EXEC_ROOT="$E2E_ROOT/exec"
E2E_PIDFILE="$E2E_ROOT/dockerd.pid"
E2E_DOCKERD_LOG="$E2E_ROOT/dockerd.log"
E2E_STARTED_DOCKERD=0
# The docker.io client (20.10) speaks the daemon's API 1.41; a newer CLI elsewhere on PATH may not.
E2E_DOCKER_CLI="${E2E_DOCKER_CLI:-/usr/bin/docker}"
export DOCKER_HOST="unix://$E2E_SOCK"

E2E_PASSED=0
E2E_FAILED=0
E2E_T0=$(date +%s)

e2e_log() { printf '[e2e %4ds] %s\n' "$(($(date +%s) - E2E_T0))" "$*" >&2; }
e2e_die() { e2e_log "FATAL: $*"; exit 1; }
dk() { "$E2E_DOCKER_CLI" -H "unix://$E2E_SOCK" "$@"; }

# e2e_check DESCRIPTION COMMAND...: runs COMMAND, counts a pass or a failure, never exits.
e2e_check() {
  local what="$1"; shift
  if "$@"; then
    E2E_PASSED=$((E2E_PASSED + 1)); e2e_log "PASS: $what"
  else
    E2E_FAILED=$((E2E_FAILED + 1)); e2e_log "FAIL: $what (command: $*)"
  fi
}
# e2e_check_eq DESCRIPTION EXPECTED ACTUAL
e2e_check_eq() {
  if [[ "$2" == "$3" ]]; then
    E2E_PASSED=$((E2E_PASSED + 1)); e2e_log "PASS: $1 (= $3)"
  else
    E2E_FAILED=$((E2E_FAILED + 1)); e2e_log "FAIL: $1: expected '$2', got '$3'"
  fi
}
not() { ! "$@"; }
e2e_summary() { echo "$E2E_PASSED passed, $E2E_FAILED failed"; }

# --- packages ---------------------------------------------------------------------------------

# Installs the Debian packages the e2e needs on the host when one of their tools is missing.
# (dovecot and sqlite3 run inside the mail image; the host needs neither.)
e2e_install_packages() {
  local need=() pair
  for pair in dockerd:docker.io debootstrap:debootstrap busybox:busybox-static zstd:zstd \
              curl:curl haproxy:haproxy age-keygen:age; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [[ -x "/usr/sbin/${pair%%:*}" ]] || need+=("${pair#*:}")
  done
  [[ -x "$E2E_DOCKER_CLI" ]] || need+=(docker.io)
  ((${#need[@]})) || return 0
  [[ "${E2E_NO_INSTALL:-0}" == 1 ]] && e2e_die "missing packages: ${need[*]} (E2E_NO_INSTALL=1)"
  e2e_log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local opts=(-o Dpkg::Options::=--force-unsafe-io -o DPkg::Lock::Timeout=600)
  apt-get "${opts[@]}" update -q >/dev/null || e2e_die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${opts[@]}" "${need[@]}" >/dev/null \
    || e2e_die "apt-get install ${need[*]} failed"
}

# --- the private daemon -----------------------------------------------------------------------

e2e_ping() { curl -sf --max-time 2 --unix-socket "$E2E_SOCK" http://d/_ping >/dev/null 2>&1; }

# Starts dockerd on $E2E_SOCK with its own data-root and exec-root, and waits until it answers.
e2e_dockerd_start() {
  mkdir -p "$E2E_ROOT" "$E2E_DATA_ROOT" "$E2E_EXEC_ROOT"
  # A dockerd left by a killed run (e.g. a ctest timeout) is ours: same pidfile, same socket.
  if [[ -s "$E2E_PIDFILE" ]] && kill -0 "$(cat "$E2E_PIDFILE")" 2>/dev/null; then
    if tr '\0' ' ' <"/proc/$(cat "$E2E_PIDFILE")/cmdline" | grep -qF -- "$E2E_SOCK"; then
      e2e_log "stopping the dockerd left by an earlier run (pid $(cat "$E2E_PIDFILE"))"
      e2e_stack_rm
      e2e_dockerd_stop
    else
      e2e_die "$E2E_PIDFILE names pid $(cat "$E2E_PIDFILE"), which is not our dockerd; remove the file"
    fi
  fi
  e2e_unmount_leftovers
  # After a SIGKILL, containerd's stale pidfile makes the next start hang ~60 s.
  rm -f "$E2E_PIDFILE" "$E2E_SOCK" "$E2E_EXEC_ROOT/containerd/containerd.pid" \
        "$E2E_EXEC_ROOT"/containerd/*.pid 2>/dev/null
  e2e_log "starting dockerd on $E2E_SOCK (log $E2E_DOCKERD_LOG)"
  setsid dockerd --host "unix://$E2E_SOCK" --data-root "$E2E_DATA_ROOT" \
    --exec-root "$E2E_EXEC_ROOT" --pidfile "$E2E_PIDFILE" \
    --iptables=false --ip6tables=false --bridge=none >"$E2E_DOCKERD_LOG" 2>&1 </dev/null &
  E2E_STARTED_DOCKERD=1
  local i
  for i in $(seq 1 120); do
    e2e_ping && { e2e_log "dockerd answers (pid $(cat "$E2E_PIDFILE" 2>/dev/null))"; return 0; }
    sleep 0.5
  done
  tail -20 "$E2E_DOCKERD_LOG" >&2
  e2e_die "dockerd did not answer on $E2E_SOCK within 60 s; see $E2E_DOCKERD_LOG"
}

e2e_swarm_init() {
  if [[ "$(dk info --format '{{.Swarm.LocalNodeState}}')" == active ]]; then return 0; fi
  dk swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$E2E_SWARM_PORT" \
    --data-path-port "$E2E_DATA_PORT" >/dev/null \
    || e2e_die "docker swarm init failed (port $E2E_SWARM_PORT or $E2E_DATA_PORT taken?" \
               "set E2E_SWARM_PORT / E2E_DATA_PORT)"
  e2e_log "swarm initialised"
}

# Leaves the swarm and stops the daemon we started, by the PID in its pidfile.
e2e_dockerd_stop() {
  [[ -s "$E2E_PIDFILE" ]] || return 0
  local pid; pid="$(cat "$E2E_PIDFILE")"
  kill -0 "$pid" 2>/dev/null || { rm -f "$E2E_PIDFILE"; return 0; }
  e2e_ping && dk swarm leave --force >/dev/null 2>&1
  e2e_log "stopping dockerd pid $pid"
  kill -TERM "$pid"
  local i
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    e2e_log "dockerd $pid did not stop in 30 s; sending SIGKILL"
    kill -KILL "$pid"; sleep 1
    rm -f "$E2E_EXEC_ROOT"/containerd/*.pid
  fi
  rm -f "$E2E_PIDFILE"
  e2e_unmount_leftovers
}

# Swarm's overlay network namespaces stay mounted under the exec-root after dockerd exits (and
# anything under $E2E_ROOT after a kill): unmount them so the directory can be removed.
e2e_unmount_leftovers() {
  local m
  findmnt -rn -o TARGET | grep -F "$E2E_ROOT/" | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || e2e_log "could not unmount $m"
  done
}

source "$E2E_LIB_DIR/images.sh"
source "$E2E_LIB_DIR/mailstack.sh"
