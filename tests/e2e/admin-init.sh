#!/bin/sh
# PID 1 of the e2e admin service: creates a Mailu-like main.db once (tables domain, user,
# alias, in WAL mode like a busy admin app), then idles. sh ignores nothing: the trap makes
# SIGTERM end it at once (a bare `sleep` as PID 1 would ignore it until the grace period).
set -e
if [ ! -f /data/main.db ]; then
  sqlite3 /data/main.db <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE domain (name TEXT PRIMARY KEY, max_users INTEGER NOT NULL DEFAULT -1,
                     comment TEXT);
CREATE TABLE user (email TEXT PRIMARY KEY, localpart TEXT NOT NULL,
                   domain_name TEXT NOT NULL REFERENCES domain(name), password TEXT NOT NULL,
                   quota_bytes INTEGER NOT NULL DEFAULT 1000000000,
                   enabled INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL);
CREATE TABLE alias (email TEXT PRIMARY KEY, localpart TEXT NOT NULL,
                    domain_name TEXT NOT NULL REFERENCES domain(name), destination TEXT NOT NULL);
INSERT INTO domain(name, comment) VALUES ('example.org', 'e2e');
INSERT INTO user(email, localpart, domain_name, password, created_at) VALUES
  ('alice@example.org', 'alice', 'example.org', '{BLF-CRYPT}x', '2026-01-01'),
  ('bob@example.org', 'bob', 'example.org', '{BLF-CRYPT}y', '2026-01-02'),
  ('carol@example.org', 'carol', 'example.org', '{BLF-CRYPT}z', '2026-01-03');
INSERT INTO alias(email, localpart, domain_name, destination) VALUES
  ('postmaster@example.org', 'postmaster', 'example.org', 'alice@example.org');
SQL
fi
touch /data/.ready
trap 'exit 0' TERM INT
while :; do sleep 1 & wait $!; done
