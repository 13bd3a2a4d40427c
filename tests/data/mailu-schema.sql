-- Mailu 2.0's SQLite schema for the tables that hold users (core/admin/mailu/models.py and the
-- migrations under core/admin/migrations, transcribed: the migrations need Mailu's Python
-- environment, which cannot be installed here). Column order as the migrations leave it.
CREATE TABLE domain (created_at DATE NOT NULL, updated_at DATE, comment VARCHAR(255),
  name VARCHAR(80) NOT NULL, max_users INTEGER NOT NULL, max_aliases INTEGER NOT NULL,
  max_quota_bytes BIGINT NOT NULL, signup_enabled BOOLEAN NOT NULL, PRIMARY KEY (name));
CREATE TABLE user (created_at DATE NOT NULL, updated_at DATE, comment VARCHAR(255),
  localpart VARCHAR(80) NOT NULL, domain_name VARCHAR(80) NOT NULL, password VARCHAR(255) NOT NULL,
  quota_bytes BIGINT NOT NULL, quota_bytes_used BIGINT NOT NULL, global_admin BOOLEAN NOT NULL,
  enabled BOOLEAN NOT NULL, enable_imap BOOLEAN NOT NULL, enable_pop BOOLEAN NOT NULL,
  forward_enabled BOOLEAN NOT NULL, forward_destination VARCHAR(255), forward_keep BOOLEAN NOT NULL,
  reply_enabled BOOLEAN NOT NULL, reply_subject VARCHAR(255), reply_body TEXT,
  reply_enddate DATE NOT NULL, reply_startdate DATE NOT NULL, displayed_name VARCHAR(160) NOT NULL,
  spam_enabled BOOLEAN NOT NULL, spam_mark_as_read BOOLEAN NOT NULL, spam_threshold INTEGER NOT NULL,
  change_pw_next_login BOOLEAN NOT NULL, allow_spoofing BOOLEAN NOT NULL,
  email VARCHAR(255) NOT NULL, PRIMARY KEY (email),
  FOREIGN KEY(domain_name) REFERENCES domain (name));
CREATE TABLE alias (created_at DATE NOT NULL, updated_at DATE, comment VARCHAR(255),
  localpart VARCHAR(80) NOT NULL, domain_name VARCHAR(80) NOT NULL, destination VARCHAR NOT NULL,
  wildcard BOOLEAN NOT NULL, email VARCHAR(255) NOT NULL, PRIMARY KEY (email),
  FOREIGN KEY(domain_name) REFERENCES domain (name));
CREATE TABLE token (created_at DATE NOT NULL, updated_at DATE, comment VARCHAR(255),
  id INTEGER NOT NULL, user_email VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL,
  ip VARCHAR(255), PRIMARY KEY (id),
  FOREIGN KEY(user_email) REFERENCES user (email) ON DELETE CASCADE);
CREATE TABLE fetch (created_at DATE NOT NULL, updated_at DATE, comment VARCHAR(255),
  id INTEGER NOT NULL, user_email VARCHAR(255) NOT NULL, protocol VARCHAR(4) NOT NULL,
  host VARCHAR(255) NOT NULL, port INTEGER NOT NULL, tls BOOLEAN NOT NULL,
  username VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL, keep BOOLEAN NOT NULL,
  last_check DATETIME, error VARCHAR(1023), scan BOOLEAN NOT NULL, folders VARCHAR,
  PRIMARY KEY (id), FOREIGN KEY(user_email) REFERENCES user (email) ON DELETE CASCADE);
CREATE TABLE manager (domain_name VARCHAR(80), user_email VARCHAR(255),
  FOREIGN KEY(domain_name) REFERENCES domain (name), FOREIGN KEY(user_email) REFERENCES user (email));
