#!/usr/bin/env bash
# Writes a fixture repository with the given mailvault binary, for tests/format_compat_test.cpp:
#   tests/data/make-fixture-repo.sh BINARY OUT_REPO OUT_SHA256
# Sources (all mtimes 2026-11-30 10:00:00 UTC): `mail` with one mailbox alice@example.org (INBOX
# with one read and one unread message, .Sent with one message and its maildirfolder file, a
# symlink link-to-cur -> cur) and `data` (main.db, a SQLite database with table user(email,
# password) and one row for alice; dkim/example.org.key with the user xattr user.fixture=dkim and
# a hard link dkim/example.org.key.link to it). Two snapshots, tag stack=fixture: the second adds
# new/1700000003.M4P1.host. OUT_SHA256 lists the sha256 of every regular file of the second
# snapshot except main.db, relative to the source root. Run once per format version; commit the
# result as tests/data/repo-v<N> (the repository directory is written fresh: keys are random).
# With MV_FIXTURE_PASSWORD_FILE set, the repository is encrypted with that passphrase (init
# --encrypt, format version 7).
set -euo pipefail
bin=$(realpath "$1") out=$2 sha=$3
[[ -e $out ]] && { echo "$out exists: remove it first" >&2; exit 2; }
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
m=$src/mail/alice@example.org
mkdir -p "$m"/{cur,new,tmp} "$m"/.Sent/{cur,new,tmp} "$src/data/dkim"
printf 'From: bob@example.org\nSubject: read\n\nhello alice\n' >"$m/cur/1700000000.M1P1.host:2,S"
printf 'From: carol@example.org\nSubject: unread\n\nare you there?\n' >"$m/new/1700000001.M2P1.host"
printf 'To: bob@example.org\nSubject: sent\n\nhi bob\n' >"$m/.Sent/cur/1700000002.M3P1.host:2,S"
: >"$m/.Sent/maildirfolder"
ln -s cur "$m/link-to-cur"
sqlite3 "$src/data/main.db" "CREATE TABLE user(email TEXT PRIMARY KEY, password TEXT);
  INSERT INTO user VALUES('alice@example.org', '{BLF-CRYPT}x');"
printf -- '-----BEGIN PRIVATE KEY-----\nfixture, not a real key\n-----END PRIVATE KEY-----\n' >"$src/data/dkim/example.org.key"
ln "$src/data/dkim/example.org.key" "$src/data/dkim/example.org.key.link"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.fixture", b"dkim")' "$src/data/dkim/example.org.key"
stamp() { find "$src" -exec touch -h -d '2026-11-30 10:00:00 UTC' {} +; }
stamp
if [[ -n ${MV_FIXTURE_PASSWORD_FILE:-} ]]; then
  export MAILVAULT_PASSWORD_FILE=$MV_FIXTURE_PASSWORD_FILE
  "$bin" init --repo "$out" --encrypt >/dev/null
else
  "$bin" init --repo "$out" >/dev/null
fi
"$bin" backup --repo "$out" --tag stack=fixture --source "mail=$src/mail" --source "data=$src/data" >/dev/null
printf 'From: dave@example.org\nSubject: later\n\nanother one\n' >"$m/new/1700000003.M4P1.host"
stamp
"$bin" backup --repo "$out" --tag stack=fixture --source "mail=$src/mail" --source "data=$src/data" >/dev/null
(cd "$src" && find . -type f ! -name main.db -printf '%P\n' | sort | sed 's#^#./#' | xargs -d '\n' sha256sum) >"$sha"
