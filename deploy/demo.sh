#!/usr/bin/env bash
# The main job on an embedded default: builds mailvault, makes a small Mailu-like volume set
# (Maildirs + SQLite users database + DKIM keys), backs it up, simulates a day of mail and backs
# up again (deduplicated), restores into a scratch folder, compares, verifies, and writes the
# integrity report. Prints what it did and DEMO OK / DEMO FAILED.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh --demo
M=$PWD/build/agent/mailvault
D=${MAILVAULT_DEMO_DIR:-/tmp/mailvault-demo}
rm -rf "$D"
mkdir -p "$D"
step() { printf '\n== %s\n' "$*"; }

step "sample Mailu volumes in $D/volumes"
bash deploy/sample-volume.sh "$D/volumes" 5 40
MAIL=$D/volumes/mailu_mail/_data DATA=$D/volumes/mailu_data/_data DKIM=$D/volumes/mailu_dkim/_data
SRC=(--source "mail=$MAIL" --source "data=$DATA" --source "dkim=$DKIM" --tag stack=mailu)
export MAILVAULT_REPO=$D/repo

step "mailvault init"
"$M" init
step "mailvault backup (first: everything is read)"
"$M" backup "${SRC[@]}"

step "a day of mail: a flag change, a move to Trash, a new message, a new user row"
inbox=$MAIL/user1@example.org
first=$(ls "$inbox/cur" | head -1)
mv "$inbox/cur/$first" "$inbox/cur/${first%%:2,*}:2,RS"
second=$(ls "$inbox/cur" | sed -n 2p)
mv "$inbox/cur/$second" "$inbox/.Trash/cur/$second"
printf 'From: a@example.net\nSubject: arrived today\n\nhello\n' > "$MAIL/user2@example.org/new/1800000000.M1P1.mailu-imap,S=45"
sqlite3 "$DATA/main.db" "INSERT INTO user VALUES('new@example.org','example.org','x',1,1);"

step "mailvault backup (second: only the new message and the database are read)"
"$M" backup "${SRC[@]}"
"$M" snapshots
step "mailvault diff (what changed between the two snapshots)"
"$M" diff $("$M" snapshots --json | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4) | tail -4

step "mailvault restore --snapshot latest --target $D/restore"
"$M" restore --snapshot latest --target "$D/restore"

step "compare the restored tree with the live one"
ok=1
if diff -r --exclude=tmp "$MAIL" "$D/restore/mail" >/dev/null && diff -r "$DKIM" "$D/restore/dkim" >/dev/null; then
  echo "Maildirs and DKIM keys: identical"
else
  echo "Maildirs or DKIM keys DIFFER"; ok=0
fi
live=$(sqlite3 "$DATA/main.db" 'select count(*) from user; select count(*) from alias;' | tr '\n' ' ')
back=$(sqlite3 "$D/restore/data/main.db" 'pragma integrity_check; select count(*) from user; select count(*) from alias;' | tr '\n' ' ')
echo "users/aliases live: $live restored (integrity, users, aliases): $back"
[[ "ok $live" == "$back" ]] || ok=0

if "$M" --help | grep -qE "^ +verify "; then
  step "mailvault verify --snapshot latest (restore to scratch, diff census and user tables)"
  "$M" verify --snapshot latest --source "mail=$MAIL" --source "data=$DATA" --source "dkim=$DKIM" || ok=0
fi
if "$M" --help | grep -qE "^ +report "; then
  step "mailvault report --out $D/report (the nightly integrity report)"
  "$M" report --out "$D/report" || ok=0
  ls -l "$D/report"
fi

if ((ok)); then echo; echo "DEMO OK: backed up, deduplicated, restored bit-exact and verified. Files in $D"
else echo; echo "DEMO FAILED (see above). Files in $D"; exit 1; fi
