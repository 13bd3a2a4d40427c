# Step 8 of the e2e (sourced by swarm_e2e.sh): build the agent image with deploy/build-image.sh,
# deploy deploy/stack.yml itself into the mail stack with a schedule of every minute, and check
# its first run: a committed snapshot, a run report, a healthy `--health-check`, and a clean stop
# on SIGTERM. The agent reaches the engine only through deploy/socket-proxy/haproxy.cfg, which
# proves that allowlist complete. Needs $MV, $REPO, $SRC_DIR.
# (docker 20.10's `stack deploy -c a -c b` appends `command` lists instead of replacing them, so
# the test sets deploy/stack.yml's variables rather than overriding the service.)
E2E_AGENT_IMAGE=local/mailvault:e2e
E2E_PROXY_DIR="$E2E_ROOT/proxy"
E2E_PROXY_SOCK="$E2E_PROXY_DIR/docker.sock"
E2E_REPORT_DIR="$E2E_ROOT/integrity-report"

# Starts haproxy with deploy/socket-proxy/haproxy.cfg, its sockets moved under $E2E_ROOT.
e2e_proxy_start() {
  mkdir -p "$E2E_PROXY_DIR"
  sed -e "s#/run/mailvault-proxy/docker.sock#$E2E_PROXY_SOCK#" \
      -e "s#server engine /var/run/docker.sock#server engine $E2E_SOCK#" \
      "$SRC_DIR/deploy/socket-proxy/haproxy.cfg" >"$E2E_PROXY_DIR/haproxy.cfg"
  rm -f "$E2E_PROXY_SOCK"
  haproxy -db -f "$E2E_PROXY_DIR/haproxy.cfg" >"$E2E_PROXY_DIR/haproxy.log" 2>&1 </dev/null &
  echo $! >"$E2E_PROXY_DIR/pid"
  e2e_wait_for 10 "the socket proxy" test -S "$E2E_PROXY_SOCK"
}
e2e_proxy_stop() {
  [[ -s "$E2E_PROXY_DIR/pid" ]] || return 0
  kill "$(cat "$E2E_PROXY_DIR/pid")" 2>/dev/null
  rm -f "$E2E_PROXY_DIR/pid"
}
e2e_proxy_status() {  # METHOD PATH: the HTTP status the proxy answers
  curl -s -o /dev/null -w '%{http_code}' --unix-socket "$E2E_PROXY_SOCK" -X "$1" "http://d$2"
}

e2e_snapshot_count() { find "$REPO/snapshots" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l; }
e2e_report_file() { ls "$REPO"/reports/run-*.json 2>/dev/null | head -1; }
e2e_has_report() { [[ -n "$(e2e_report_file)" ]]; }

e2e_sidecar_run() {
  DOCKER="$E2E_DOCKER_CLI" bash "$SRC_DIR/deploy/build-image.sh" --bin "$MV" --tag "$E2E_AGENT_IMAGE" \
    || { e2e_check "deploy/build-image.sh builds the agent image" false; return; }
  e2e_proxy_start || { e2e_check "the socket proxy starts" false; return; }
  e2e_check_eq "the socket proxy passes GET /services" 200 "$(e2e_proxy_status GET /v1.41/services)"
  e2e_check_eq "the socket proxy refuses POST /containers/create" 403 \
    "$(e2e_proxy_status POST /v1.41/containers/create)"
  local probes; probes=$(wc -l <"$E2E_PROXY_DIR/haproxy.log")
  local before; before=$(e2e_snapshot_count)
  rm -rf "$REPO/reports" "$E2E_REPORT_DIR"
  mkdir -p "$E2E_REPORT_DIR"
  e2e_log "deploying deploy/stack.yml into $E2E_STACK (every minute, no jitter, via the proxy)"
  (cd "$E2E_LIB_DIR" && MAILVAULT_IMAGE="$E2E_AGENT_IMAGE" MAILVAULT_DOCKER_SOCK="$E2E_PROXY_SOCK" \
     MAILVAULT_VOLUMES_ROOT="$E2E_DATA_ROOT/volumes" MAILVAULT_REPO_DIR="$REPO" \
     MAILVAULT_REPORT_DIR="$E2E_REPORT_DIR" \
     MAILVAULT_SCHEDULE="* * * * *" MAILVAULT_JITTER=0 \
     dk stack deploy --resolve-image never -c stack.yml -c "$SRC_DIR/deploy/stack.yml" \
       "$E2E_STACK" >/dev/null) \
    || { e2e_check "deploy/stack.yml deploys as a service of the stack" false; return; }
  # The first run starts at the next whole minute.
  e2e_wait_for 240 "the agent's first run report in $REPO/reports" e2e_has_report
  local report; report=$(e2e_report_file)
  e2e_check "the agent wrote a run report" test -n "$report"
  e2e_check "the agent's run succeeded (report exit_code 0)" \
    grep -qE '"exit_code": 0\b' "${report:-/dev/null}"
  e2e_check_eq "the agent committed one snapshot" "$((before + 1))" "$(e2e_snapshot_count)"
  # deploy/stack.yml runs the integrity report after each backup, into MAILVAULT_REPORT_DIR.
  e2e_check "the shipped stack wrote the integrity report's textfile for node_exporter" \
    test -s "$E2E_REPORT_DIR/mailvault.prom"
  e2e_check "the agent's report gives the run's exit code per stack (mailvault_last_run_exit_code)" \
    grep -qE "^mailvault_last_run_exit_code\{stack=\"$E2E_STACK\"\} 0$" "$E2E_REPORT_DIR/mailvault.prom"
  e2e_check "the agent's report gives the whole run's exit code (mailvault_run_exit_code)" \
    grep -qE "^mailvault_run_exit_code 0$" "$E2E_REPORT_DIR/mailvault.prom"
  e2e_check "the shipped stack's textfile passes promtool check metrics" \
    promtool check metrics <"$E2E_REPORT_DIR/mailvault.prom"
  e2e_check "the report's verify restored the night's snapshot of the stack and found it whole" \
    grep -qE "^mailvault_verify_ok\{[^}]*stack=\"$E2E_STACK\"[^}]*\} 1$" "$E2E_REPORT_DIR/mailvault.prom"
  e2e_check "mailvault agent --health-check says healthy inside the sidecar" \
    e2e_exec backup /usr/local/bin/mailvault agent --health-check \
      --health-file /tmp/mailvault-health.json
  local health; health=$(e2e_exec backup /usr/local/bin/mailvault agent --health-check \
    --health-file /tmp/mailvault-health.json 2>&1)
  e2e_log "health: $health"
  e2e_check "the agent's readiness check found the repository and the stack through the proxy" \
    grep -q "ready: repository /repo (writable), stack(s) .*$E2E_STACK" <<<"$health"
  local cid; cid=$(e2e_cid backup)
  e2e_check_eq "the agent runs with only DAC_READ_SEARCH (deploy/stack.yml cap_drop/cap_add)" \
    "[ALL] [CAP_DAC_READ_SEARCH]" \
    "$(dk inspect -f '{{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}}' "$cid" 2>/dev/null)"
  # Scale to 0 rather than remove, so the stopped container and its log stay to be read.
  dk service scale --detach "${E2E_STACK}_backup=0" >/dev/null 2>&1
  e2e_wait_for 30 "the agent container to stop" e2e_container_gone "$cid"
  dk logs "$cid" >"$E2E_ROOT/agent.log" 2>&1
  dk service rm "${E2E_STACK}_backup" >/dev/null 2>&1
  sed 's/^/    agent| /' "$E2E_ROOT/agent.log" | tail -30 >&2
  e2e_check "the agent stopped cleanly on SIGTERM" grep -q 'while idle: stopping' "$E2E_ROOT/agent.log"
  tail -n +"$((probes + 1))" "$E2E_PROXY_DIR/haproxy.log" >"$E2E_PROXY_DIR/agent-requests.log"
  e2e_check "the agent went through the proxy" test -s "$E2E_PROXY_DIR/agent-requests.log"
  e2e_check "the proxy refused nothing the agent asked for" \
    not grep ' 403 ' "$E2E_PROXY_DIR/agent-requests.log"
  e2e_proxy_stop
}
e2e_container_gone() { [[ "$(dk inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" != true ]]; }

# Step 8b: the same image as a write-only sidecar of the encrypted repository of step 7c, its
# agent key given as a swarm secret through deploy/agent-key.yml (docs/ENCRYPTION.md). Its run
# commits a snapshot it cannot read, which the key-less check proves whole; its ID goes into
# E2E_SIDECAR_ENC_SNAP for step 8c's restore. Needs $ENC, $E2E_ROOT/agent.key and the image of
# e2e_sidecar_run.
e2e_enc_snapshots() { find "$ENC/snapshots" -maxdepth 1 -type f 2>/dev/null | wc -l; }
e2e_enc_report() { ls "$ENC"/reports/run-*.json 2>/dev/null | head -1; }
e2e_enc_has_report() { [[ -n "$(e2e_enc_report)" ]]; }
e2e_sidecar_agent_key_run() {
  e2e_proxy_start || { e2e_check "the socket proxy starts" false; return; }
  dk secret create mailvault_agent_key "$E2E_ROOT/agent.key" >/dev/null \
    || { e2e_check "docker secret create mailvault_agent_key" false; return; }
  local before; before=$(e2e_enc_snapshots)
  ls "$ENC/snapshots" >"$E2E_ROOT/enc-snapshots-before"
  rm -rf "$ENC/reports"
  e2e_log "deploying deploy/stack.yml + deploy/agent-key.yml (the agent key as a swarm secret)"
  (cd "$E2E_LIB_DIR" && MAILVAULT_IMAGE="$E2E_AGENT_IMAGE" MAILVAULT_DOCKER_SOCK="$E2E_PROXY_SOCK" \
     MAILVAULT_VOLUMES_ROOT="$E2E_DATA_ROOT/volumes" MAILVAULT_REPO_DIR="$ENC" \
     MAILVAULT_INTEGRITY_REPORT= MAILVAULT_SCHEDULE="* * * * *" MAILVAULT_JITTER=0 \
     dk stack deploy --resolve-image never -c stack.yml -c "$SRC_DIR/deploy/stack.yml" \
       -c "$SRC_DIR/deploy/agent-key.yml" "$E2E_STACK" >/dev/null) \
    || { e2e_check "deploy/agent-key.yml deploys over deploy/stack.yml" false; return; }
  e2e_wait_for 240 "the write-only agent's run report in $ENC/reports" e2e_enc_has_report
  local report; report=$(e2e_enc_report)
  e2e_check "the write-only agent's run succeeded (report exit_code 0)" \
    grep -qE '"exit_code": 0\b' "${report:-/dev/null}"
  e2e_check_eq "the write-only agent committed one snapshot into the encrypted repository" \
    "$((before + 1))" "$(e2e_enc_snapshots)"
  E2E_SIDECAR_ENC_SNAP=$(ls "$ENC/snapshots" | grep -vxFf "$E2E_ROOT/enc-snapshots-before" | head -1)
  # The image holds no key: the only one the agent had was the secret.
  e2e_check "the agent's key was the swarm secret mailvault_agent_key" grep -q mailvault_agent_key \
    <<<"$(dk service inspect -f '{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}' \
          "${E2E_STACK}_backup" 2>/dev/null)"
  e2e_check "the snapshot it wrote checks whole without a key (FORMAT.md §14.2)" \
    "$MV" check --repo "$ENC" --without-key
  e2e_check_eq "the identity lists the snapshot the agent wrote" "$((before + 1))" \
    "$("$MV" snapshots --repo "$ENC" --identity-file "$E2E_ROOT/operator.txt" --json </dev/null \
        | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  local cid; cid=$(e2e_cid backup)
  dk service rm "${E2E_STACK}_backup" >/dev/null 2>&1
  e2e_wait_for 30 "the write-only agent container to stop" e2e_container_gone "$cid"
  dk secret rm mailvault_agent_key >/dev/null 2>&1
  e2e_proxy_stop
}
