#!/usr/bin/env bash
# Writes a small Mailu-like volume set, laid out as Docker keeps named volumes:
#   DIR/mailu_mail/_data/<user@domain>/{cur,new,tmp} + .Sent .Trash .Archive.2024 + dovecot files
#   DIR/mailu_data/_data/main.db   (SQLite, WAL mode: domain, user, alias)
#   DIR/mailu_dkim/_data/<domain>.dkim.key
# Deterministic; owned by uid/gid 8 (mail) like Mailu's, when run as root.
#   deploy/sample-volume.sh DIR [USERS] [MESSAGES_PER_USER]
set -euo pipefail
dir=${1:?usage: sample-volume.sh DIR [USERS] [MESSAGES_PER_USER]}
users=${2:-5}
per=${3:-40}
mail=$dir/mailu_mail/_data
data=$dir/mailu_data/_data
dkim=$dir/mailu_dkim/_data
mkdir -p "$mail" "$data" "$dkim"
words=(mailbox restore snapshot quarterly report meeting invoice server backup please review attached thanks regards tomorrow budget the and of to)
n=0
sql="PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS domain(name TEXT PRIMARY KEY, max_users INT);
CREATE TABLE IF NOT EXISTS user(email TEXT PRIMARY KEY, domain_name TEXT, password TEXT, quota_bytes INT, enabled INT);
CREATE TABLE IF NOT EXISTS alias(email TEXT PRIMARY KEY, destination TEXT);
INSERT OR REPLACE INTO domain VALUES('example.org', 100);"
for ((u = 0; u < users; u++)); do
  user="user$u@example.org"
  sql+="INSERT OR REPLACE INTO user VALUES('$user','example.org','{SHA512-CRYPT}\$6\$demo$u',1000000000,1);"
  for f in "" .Sent .Trash .Archive.2024; do
    d="$mail/$user${f:+/$f}"
    mkdir -p "$d/cur" "$d/new" "$d/tmp"
    [[ -n $f ]] && : > "$d/maildirfolder"
    printf '3 V1700000000 N1 G%s\n' "$u" > "$d/dovecot-uidlist"
  done
  printf 'Sent\nTrash\nArchive.2024\n' > "$mail/$user/subscriptions"
  for ((m = 0; m < per; m++)); do
    folders=("" .Sent .Trash .Archive.2024)
    f=${folders[m % 4]}
    body="From: sender$((n % 7))@example.net
To: $user
Subject: Sample message $n
Message-ID: <$n.demo@example.net>
Date: Mon, 1 Jun 2025 10:00:00 +0000

"
    for ((w = 0; w < 60 + (n % 9) * 40; w++)); do body+="${words[(n * 7 + w * 3) % ${#words[@]}]} "; done
    body+=$'\n'
    size=${#body}
    name="$((1700000000 + n * 37)).M$((n * 13))P$((1000 + n)).mailu-imap,S=$size"
    if ((m % 7 == 3)); then path="$mail/$user${f:+/$f}/new/$name"; else path="$mail/$user${f:+/$f}/cur/$name:2,S"; fi
    printf '%s' "$body" > "$path"
    n=$((n + 1))
  done
done
sql+="INSERT OR REPLACE INTO alias VALUES('postmaster@example.org','user0@example.org');"
sqlite3 "$data/main.db" "$sql" >/dev/null
printf -- '-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC (sample, not a real key)\n-----END PRIVATE KEY-----\n' > "$dkim/example.org.dkim.key"
if [[ $(id -u) -eq 0 ]]; then chown -R 8:8 "$mail"; fi
echo "$n messages for $users users in $dir"
