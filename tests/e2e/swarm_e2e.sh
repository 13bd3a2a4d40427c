#!/bin/bash
# End-to-end test on a real Docker Swarm:
# a private dockerd in swarm mode, local images (no registry), a Mailu-like stack labelled for
# backupbot v2, real mail delivered by dovecot's LDA, then backup -> wipe -> restore with
# mailvault, checked with dovecot's own doveadm and sqlite3; then one backup by the sidecar
# image running as a service of the stack. Everything it starts is torn down on exit.
#
# Usage: swarm_e2e.sh [MAILVAULT_BIN]   (ctest passes $<TARGET_FILE:mailvault>)
# Needs root (it runs dockerd). Environment:
#   MAILVAULT_BIN  the mailvault binary when no argument is given (default: build/agent/mailvault
#                  under the source tree)
#   MV_TESTS       the GoogleTest binary whose DockerExecE2E tests run against this dockerd
#                  (default: tests/mv_tests in the build tree of the mailvault binary)
#   E2E_ROOT, E2E_CACHE, E2E_KEEP, E2E_SWARM_PORT, E2E_DATA_PORT: see tests/e2e/lib.sh
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SRC_DIR="$(cd "$E2E_LIB_DIR/../.." && pwd)"
MV="${1:-${MAILVAULT_BIN:-build/agent/mailvault}}"
[[ "$MV" == /* ]] || MV="$SRC_DIR/$MV"
REPO="$E2E_ROOT/repo"
DOMAIN=example.org

cleanup() {
  local rc=$?
  if [[ "${E2E_KEEP:-0}" == 1 ]]; then
    e2e_log "E2E_KEEP=1: leaving dockerd (DOCKER_HOST=$DOCKER_HOST) and stack $E2E_STACK running"
  else
    declare -F e2e_proxy_stop >/dev/null && e2e_proxy_stop
    e2e_stack_rm
    e2e_dockerd_stop
  fi
  ((rc != 0 && E2E_FAILED == 0)) && E2E_FAILED=1
  e2e_log "total $(($(date +%s) - E2E_T0)) s"
  e2e_summary
  ((E2E_FAILED == 0)) || exit 1
}
trap cleanup EXIT
trap 'e2e_die "interrupted"' INT TERM

[[ $EUID -eq 0 ]] || e2e_die "run as root: the test starts its own dockerd"
[[ -x "$MV" ]] || e2e_die "mailvault binary $MV not found: build it or set MAILVAULT_BIN"

# mv_run ARGS...: runs mailvault against the private engine, logging its output to $E2E_ROOT.
mv_run() {
  local log="$E2E_ROOT/mailvault-$1.log"
  e2e_log "mailvault $*"
  "$MV" "$@" >"$log.out" 2>"$log.err"
  local rc=$?
  sed 's/^/    | /' "$log.err" >&2
  return $rc
}

# ---- 1. a private dockerd in swarm mode ----
e2e_install_packages
e2e_dockerd_start
e2e_swarm_init
e2e_stack_rm   # leftovers of a run that was killed
rm -rf "$REPO"

# ---- 2. local images (the mail image is cached in $E2E_CACHE) ----
e2e_build_busybox
e2e_build_mailstack

# ---- 3. the Mailu-like stack ----
e2e_stack_deploy

# ---- 3b. the exec hook tests of the unit suite, against this dockerd (they skip without one) ----
MV_TESTS="${MV_TESTS:-$(dirname "$MV")/../tests/mv_tests}"
e2e_run_exec_tests() {
  local log="$E2E_ROOT/mv_tests-docker-exec.log"
  MAILVAULT_E2E_DOCKER_HOST="$DOCKER_HOST" MAILVAULT_E2E_CONTAINER="$(e2e_cid admin)" \
    "$MV_TESTS" --gtest_filter='DockerExecE2E.*' >"$log" 2>&1
  local rc=$?
  sed 's/^/    | /' "$log" >&2
  # A skip means the variables did not reach the test: that is a failure here.
  ((rc == 0)) && grep -q '^\[  PASSED  \] [1-9]' "$log" && ! grep -q '^\[  SKIPPED \]' "$log"
}
if [[ -x "$MV_TESTS" ]]; then
  e2e_check "DockerExecE2E.* (mv_tests) pass against the real dockerd, none skipped" e2e_run_exec_tests
else
  e2e_check "the unit test binary $MV_TESTS exists (set MV_TESTS)" false
fi

# ---- 4. real mail, then a backup ----
declare -A PRE
for user in alice bob carol; do
  n=$([[ $user == carol ]] && echo 2 || echo 3)
  for i in $(seq 1 "$n"); do
    e2e_deliver "$user@$DOMAIN" "$user-$i@e2e" "message $i for $user" || e2e_die "delivery failed"
  done
  PRE[$user]=$(e2e_count "$user@$DOMAIN")
done
e2e_check_eq "alice has 3 messages before the backup" 3 "${PRE[alice]}"
e2e_check_eq "bob has 3 messages before the backup" 3 "${PRE[bob]}"
e2e_check_eq "carol has 2 messages before the backup" 2 "${PRE[carol]}"
PRE_USERS=$(e2e_sql "SELECT email FROM user ORDER BY email" | tr '\n' ' ')

mv_run init --repo "$REPO" || e2e_die "mailvault init --repo $REPO failed"
mv_run backup --repo "$REPO" --json \
  || e2e_die "mailvault backup (stack mode, discovery from labels) failed; see $E2E_ROOT/mailvault-backup.log.*"
SNAP=$(grep -oE '"snapshot(_id)?"[[:space:]]*:[[:space:]]*"[0-9a-f]{8,}"' "$E2E_ROOT/mailvault-backup.log.out" \
       | head -1 | grep -oE '[0-9a-f]{8,}"$' | tr -d '"')
[[ -n "$SNAP" ]] || e2e_die "no snapshot id (\"snapshot_id\") in mailvault backup --json output"
e2e_log "snapshot $SNAP"
mv_run ls --repo "$REPO" --snapshot "$SNAP" || e2e_check "mailvault ls --snapshot $SNAP exits 0" false
e2e_check "the snapshot holds main.db" grep -q 'main\.db' "$E2E_ROOT/mailvault-ls.log.out"
e2e_check "the snapshot holds bob's Maildir" grep -q 'bob@example\.org' "$E2E_ROOT/mailvault-ls.log.out"
e2e_check "the snapshot leaves out the certs volume (label volumes.certs=false)" \
  not grep -q 'cert\.pem' "$E2E_ROOT/mailvault-ls.log.out"
e2e_check "the backup pre-hook ran in the admin container" e2e_exec admin test -s /data/.backup-prehook
e2e_check "the backup post-hook ran (removed the dump)" e2e_exec admin test ! -e /data/main.sql

# ---- 5. an incident: a deleted user row, a wiped Maildir, a lost message ----
e2e_sql "DELETE FROM user WHERE email = 'carol@$DOMAIN'" || e2e_die "could not delete carol's row"
e2e_exec imap rm -rf "/mail/alice@$DOMAIN" || e2e_die "could not wipe alice's Maildir"
LOST=$(e2e_exec imap sh -c "grep -l 'Message-ID: <bob-2@e2e>' /mail/bob@$DOMAIN/new/* /mail/bob@$DOMAIN/cur/* 2>/dev/null")
[[ -n "$LOST" ]] || e2e_die "could not find bob's message bob-2@e2e to delete"
e2e_exec imap rm -f "$LOST" || e2e_die "could not delete $LOST"
e2e_check_eq "the wipe removed carol's row" 0 "$(e2e_sql "SELECT count(*) FROM user WHERE email = 'carol@$DOMAIN'")"
e2e_check_eq "the wipe emptied alice's mailbox" 0 "$(e2e_count "alice@$DOMAIN")"
e2e_check_eq "the wipe took one of bob's messages" 2 "$(e2e_count "bob@$DOMAIN")"

# ---- 6. mail arrives after the backup; then restore ----
e2e_deliver "bob@$DOMAIN" "after-backup@e2e" "arrived after the backup" || e2e_die "delivery failed"
mv_run restore --repo "$REPO" --snapshot "$SNAP" </dev/null \
  || e2e_check "mailvault restore --snapshot $SNAP exits 0" false

# ---- 7. everything is back, and nothing newer was lost ----
e2e_check_eq "carol's user row is back" 1 "$(e2e_sql "SELECT count(*) FROM user WHERE email = 'carol@$DOMAIN'")"
e2e_check_eq "main.db holds the same users as before the wipe" "$PRE_USERS" \
  "$(e2e_sql "SELECT email FROM user ORDER BY email" | tr '\n' ' ')"
e2e_check_eq "main.db passes PRAGMA integrity_check" ok "$(e2e_sql 'PRAGMA integrity_check')"
e2e_check "the restore post-hook ran" e2e_exec admin test -s /data/.restore-posthook
e2e_check_eq "doveadm counts alice's messages as before the wipe" "${PRE[alice]}" "$(e2e_count "alice@$DOMAIN")"
e2e_check_eq "doveadm counts bob's messages as before the wipe, plus the later one" \
  "$((PRE[bob] + 1))" "$(e2e_count "bob@$DOMAIN")"
e2e_check_eq "doveadm counts carol's messages as before the wipe" "${PRE[carol]}" "$(e2e_count "carol@$DOMAIN")"
e2e_check_eq "bob's deleted message is back (doveadm search)" 1 "$(e2e_count_msgid "bob@$DOMAIN" bob-2@e2e)"
e2e_check_eq "the message delivered after the backup survived" 1 \
  "$(e2e_count_msgid "bob@$DOMAIN" after-backup@e2e)"
e2e_check_eq "restored Maildir files belong to uid/gid 8 (mail)" "" \
  "$(e2e_exec imap find /mail ! -user 8 -o ! -group 8 | head -3)"
e2e_deliver "alice@$DOMAIN" "after-restore@e2e" "after the restore" \
  && e2e_check_eq "dovecot delivers into the restored Maildir" "$((PRE[alice] + 1))" "$(e2e_count "alice@$DOMAIN")"

# ---- 7b. the agent's nightly retention: backup, forget by policy, prune, report, and the ----
# ---- off-site copy (a second repository sharing the key; against S3: tests/s3_repo_test.cpp) ----
BEFORE_AGENT=$(find "$REPO/snapshots" -maxdepth 1 -type f | wc -l)
OFFSITE="$E2E_ROOT/offsite"
rm -rf "$OFFSITE"  # E2E_ROOT outlives a run on the same machine
mv_run init --repo "$OFFSITE" --copy-key-from "$REPO" </dev/null \
  || e2e_check "mailvault init --copy-key-from exits 0" false
mv_run agent --repo "$REPO" --once --keep-last 1 --integrity-report "$E2E_ROOT/report" \
  --copy-to "$OFFSITE" </dev/null \
  || e2e_check "mailvault agent --once --keep-last 1 --copy-to exits 0" false
e2e_check_eq "the agent backed up, then kept only the newest snapshot of the stack" 1 \
  "$(find "$REPO/snapshots" -maxdepth 1 -type f | wc -l)"
e2e_check "there was an older snapshot to forget" test "$BEFORE_AGENT" -ge 1
e2e_check "the agent logged its retention" grep -q 'retention: kept 1 snapshot(s), removed' \
  "$E2E_ROOT/mailvault-agent.log.err"
e2e_check "the integrity report gives the space the prune gave back" \
  grep -q '^mailvault_prune_reclaimed_bytes ' "$E2E_ROOT/report/mailvault.prom"
mv_run check --repo "$REPO" --read-data || e2e_check "check --read-data after the agent's prune" false
e2e_check_eq "the agent copied the kept snapshot off-site, and only it" \
  "$(ls "$REPO/snapshots")" "$(ls "$OFFSITE/snapshots")"
e2e_check "the agent logged its copy" grep -q 'copy: 1 snapshot(s) to ' "$E2E_ROOT/mailvault-agent.log.err"
mv_run check --repo "$OFFSITE" --read-data || e2e_check "check --read-data of the off-site copy" false
mv_run verify --repo "$OFFSITE" --snapshot latest --against snapshot </dev/null \
  || e2e_check "verify of the off-site copy's snapshot" false

# ---- 7c. encrypted, public-key mode: the agent holds only a write-only key (docs/ENCRYPTION.md) ----
ENC="$E2E_ROOT/encrypted"
rm -rf "$ENC" "$E2E_ROOT/operator.txt" "$E2E_ROOT/agent.key" "$E2E_ROOT/agent-cache"
age-keygen -o "$E2E_ROOT/operator.txt" 2>/dev/null || e2e_die "age-keygen failed"
RCPT=$(age-keygen -y "$E2E_ROOT/operator.txt")
mv_run init --repo "$ENC" --recipient "$RCPT" --agent-key-out "$E2E_ROOT/agent.key" </dev/null \
  || e2e_check "mailvault init --recipient --agent-key-out exits 0" false
MAILVAULT_AGENT_KEY_FILE="$E2E_ROOT/agent.key" XDG_CACHE_HOME="$E2E_ROOT/agent-cache" \
  mv_run agent --repo "$ENC" --once </dev/null \
  || e2e_check "mailvault agent --once with only the agent key exits 0" false
e2e_check_eq "the agent wrote one snapshot into the encrypted repository" 1 \
  "$(find "$ENC/snapshots" -maxdepth 1 -type f | wc -l)"
e2e_check "no user address or message header is readable in the encrypted repository" \
  not grep -rqE "@$DOMAIN|Message-ID:" "$ENC"
e2e_check "the agent key checks every pack against its name (check without a key, FORMAT.md §14.2)" \
  "$MV" check --repo "$ENC" --agent-key-file "$E2E_ROOT/agent.key"
# (The wipe and the restore with the identity follow step 8b, from the sidecar's snapshot.)

# ---- 7d. incident restore on the running stack: bob deletes a folder through Dovecot; it comes ----
# ---- back as a new, subscribed folder, and nothing else in his mailbox changes (docs/RESTORE.md) ----
e2e_exec imap doveadm mailbox create -s -u "bob@$DOMAIN" Projects || e2e_die "doveadm mailbox create failed"
e2e_exec imap doveadm move -u "bob@$DOMAIN" Projects mailbox INBOX header Message-ID bob-1@e2e \
  || e2e_die "doveadm move failed"
mv_run backup --repo "$REPO" --json </dev/null || e2e_check "backup before the folder is deleted" false
BOB_BEFORE=$(e2e_count "bob@$DOMAIN")
e2e_exec imap doveadm mailbox delete -u "bob@$DOMAIN" Projects || e2e_die "doveadm mailbox delete failed"
e2e_check_eq "deleting the folder took its message" "$((BOB_BEFORE - 1))" "$(e2e_count "bob@$DOMAIN")"
mv_run restore --repo "$REPO" --snapshot latest --mailbox "bob@$DOMAIN" --folder Projects \
  --into-folder "Restored Projects" </dev/null \
  || e2e_check "mailvault restore --into-folder on the live stack exits 0" false
e2e_check_eq "doveadm sees the restored folder with the deleted folder's message" 1 \
  "$(e2e_exec imap doveadm -f tab mailbox status -u "bob@$DOMAIN" messages "Restored Projects" | awk -F'\t' 'NR > 1 { print $NF }')"
e2e_check "the restored folder is subscribed (doveadm mailbox list -s)" \
  e2e_exec imap sh -c "doveadm mailbox list -s -u bob@$DOMAIN | grep -qx 'Restored Projects'"
e2e_check_eq "bob's other mail is as it was: the mailbox counts what it had before the delete" \
  "$BOB_BEFORE" "$(e2e_count "bob@$DOMAIN")"
e2e_check_eq "the deleted folder's message is found once" 1 "$(e2e_count_msgid "bob@$DOMAIN" bob-1@e2e)"
e2e_check_eq "the restored folder belongs to uid/gid 8 (mail)" "" \
  "$(e2e_exec imap find "/mail/bob@$DOMAIN" ! -user 8 -o ! -group 8 | head -3)"
mv_run restore --repo "$REPO" --snapshot latest --mailbox "bob@$DOMAIN" --folder Projects \
  --into-folder "Restored Projects 2" </dev/null \
  || e2e_check "the same restore again exits 0" false
e2e_check "the same restore again adds nothing" \
  grep -q 'nothing to restore' "$E2E_ROOT/mailvault-restore.log.out"

# ---- 8. the sidecar image, run once as a service of the stack ----
source "$E2E_LIB_DIR/sidecar.sh"
e2e_sidecar_run
# ---- 8b. the image as a write-only sidecar, its agent key a swarm secret (deploy/agent-key.yml) ----
e2e_sidecar_agent_key_run
# ---- 8c. the identity, kept off the host, restores from the sidecar's encrypted snapshot the ----
# ---- wiped mailbox and the deleted user ----
ENC_SNAP=${E2E_SIDECAR_ENC_SNAP:-latest}
PRE_ENC_ALICE=$(e2e_count "alice@$DOMAIN")
e2e_sql "DELETE FROM user WHERE email = 'carol@$DOMAIN'" || e2e_die "could not delete carol's row"
e2e_exec imap rm -rf "/mail/alice@$DOMAIN" || e2e_die "could not wipe alice's Maildir"
e2e_check "the agent key cannot restore" \
  not "$MV" restore --repo "$ENC" --agent-key-file "$E2E_ROOT/agent.key" --snapshot "$ENC_SNAP"
e2e_check_eq "the failed restore changed nothing: alice's mailbox is still empty" 0 \
  "$(e2e_count "alice@$DOMAIN")"
mv_run restore --repo "$ENC" --identity-file "$E2E_ROOT/operator.txt" --snapshot "$ENC_SNAP" </dev/null \
  || e2e_check "mailvault restore --identity-file exits 0" false
e2e_check_eq "carol's user row is back from the encrypted repository" 1 \
  "$(e2e_sql "SELECT count(*) FROM user WHERE email = 'carol@$DOMAIN'")"
e2e_check_eq "doveadm counts alice's messages as the agent backed them up" "$PRE_ENC_ALICE" \
  "$(e2e_count "alice@$DOMAIN")"
mv_run verify --repo "$ENC" --identity-file "$E2E_ROOT/operator.txt" --snapshot "$ENC_SNAP" \
  --against snapshot </dev/null || e2e_check "verify of the encrypted snapshot with the identity" false


# ---- 9. teardown: the EXIT trap removes the stack and stops our dockerd by PID ----
