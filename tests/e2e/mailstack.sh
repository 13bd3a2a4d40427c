# The Mailu-like stack (sourced by lib.sh): deploy it, exec into its services, deliver and count
# mail with dovecot's own tools, query main.db with sqlite3.
E2E_STACK="${E2E_STACK:-mailu}"
E2E_SERVICES=(admin imap front)

# The id of the running container of service SERVICE (short name, e.g. imap) on this node.
e2e_cid() {
  dk ps -q --filter "label=com.docker.swarm.service.name=${E2E_STACK}_$1" \
    --filter status=running | head -1
}

# e2e_exec SERVICE CMD...: runs CMD in the service's container (stdin passed through).
e2e_exec() {
  local svc="$1" cid; shift
  cid=$(e2e_cid "$svc")
  [[ -n "$cid" ]] || { e2e_log "no running container for service $svc"; return 1; }
  dk exec -i "$cid" "$@"
}

# Waits until CMD succeeds (every 0.5 s) or TIMEOUT seconds pass.
e2e_wait_for() {
  local timeout="$1" what="$2" i; shift 2
  for ((i = 0; i < timeout * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  e2e_log "timed out after ${timeout}s waiting for: $what"
  return 1
}

e2e_stack_deploy() {
  e2e_log "deploying stack $E2E_STACK"
  (cd "$E2E_LIB_DIR" && dk stack deploy --resolve-image never -c stack.yml "$E2E_STACK") >/dev/null \
    || e2e_die "docker stack deploy of $E2E_LIB_DIR/stack.yml failed"
  local svc
  for svc in "${E2E_SERVICES[@]}"; do
    e2e_wait_for 90 "a running task of ${E2E_STACK}_$svc" e2e_cid_nonempty "$svc" \
      || { dk service ps --no-trunc "${E2E_STACK}_$svc" >&2; e2e_die "service $svc did not start"; }
  done
  e2e_wait_for 30 "main.db created by admin" e2e_exec admin test -f /data/.ready \
    || e2e_die "admin did not create /data/main.db"
  e2e_wait_for 30 "dovecot answering doveadm" e2e_exec imap doveadm service status \
    || e2e_die "dovecot did not start in the imap service"
  e2e_log "stack $E2E_STACK is up"
}
e2e_cid_nonempty() { [[ -n "$(e2e_cid "$1")" ]]; }

# Removes the stack and its volumes; waits for the containers to go first.
e2e_stack_rm() {
  e2e_ping || return 0
  dk stack rm "$E2E_STACK" >/dev/null 2>&1
  e2e_wait_for 60 "containers of $E2E_STACK to stop" \
    e2e_no_containers
  local v
  for v in $(dk volume ls -q --filter "label=com.docker.stack.namespace=$E2E_STACK"); do
    dk volume rm -f "$v" >/dev/null 2>&1 || e2e_log "could not remove volume $v"
  done
}
e2e_no_containers() {
  [[ -z "$(dk ps -aq --filter "label=com.docker.stack.namespace=$E2E_STACK")" ]]
}

# The host path of stack volume VOL (e.g. mail), from the Engine API.
e2e_volume_path() { dk volume inspect -f '{{.Mountpoint}}' "${E2E_STACK}_$1"; }

# e2e_deliver RCPT MESSAGE-ID SUBJECT: delivers one message with dovecot's LDA.
e2e_deliver() {
  local rcpt="$1" msgid="$2" subject="$3"
  printf '%s\r\n' "From: sender@example.net" "To: $rcpt" "Subject: $subject" \
    "Message-ID: <$msgid>" "Date: $(date -R)" "" "Body of $subject." "" \
    | e2e_exec imap /usr/lib/dovecot/dovecot-lda -d "$rcpt" -f sender@example.net \
      2>>"$E2E_ROOT/deliver.log" \
    || { tail -5 "$E2E_ROOT/deliver.log" >&2
         e2e_log "dovecot-lda failed delivering $msgid to $rcpt"; return 1; }
}

# Prints the number of messages dovecot counts in all of USER's mailboxes.
e2e_count() {
  local out
  out=$(e2e_exec imap doveadm -f tab mailbox status -u "$1" messages '*' 2>&1) \
    || { e2e_log "doveadm mailbox status -u $1 failed: $out"; echo -1; return 1; }
  # tab format: a header line "mailbox<TAB>messages", then one line per mailbox.
  echo "$out" | awk -F'\t' 'NR > 1 { if ($NF !~ /^[0-9]+$/) bad = 1; s += $NF }
                              END { print bad ? -1 : s + 0 }'
}

# Prints how many of USER's messages carry Message-ID MSGID, found by dovecot's search.
e2e_count_msgid() {
  e2e_exec imap doveadm search -u "$1" mailbox '*' header Message-ID "$2" 2>/dev/null | wc -l
}

# e2e_sql SQL: runs SQL against main.db in the admin service, prints the result.
e2e_sql() { e2e_exec admin sqlite3 /data/main.db "$1"; }
