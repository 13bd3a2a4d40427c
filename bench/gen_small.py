#!/usr/bin/env python3
"""A synthetic Mailu volume set of many small messages, for the memory bound at scale.

    gen_small.py --files N --out VOL [--seed S]        # VOL/mail, VOL/data/main.db, VOL/dkim
    gen_small.py --mutate VOL/mail --seed S             # one day: ~1% new, ~2% read, ~0.5% deleted

N message files (300-1500 bytes of text each) in Maildirs of 5,000 messages per mailbox
(INBOX, .Sent, .Trash, .Archive), dovecot's files in each mailbox, a small Mailu-like main.db
and one DKIM key. Deterministic in (N, seed): the same arguments give the same tree, mtimes
included. Unlike ../shared/corpus/gen_maildir.py, it writes millions of files in minutes.
"""
import argparse
import os
import random
import sqlite3
import sys

PER_MAILBOX = 5000
FOLDERS = ("", ".Sent", ".Trash", ".Archive")   # "" = INBOX
T0 = 1764547200   # 2025-12-01 00:00:00 UTC: message times and mtimes count from here
WORDS = ("mail backup restore folder message server quota alias domain delivery queue spam "
         "archive meeting report invoice weekly notes lunch project update draft reply").split()


def body(rng, size):
    out, n = [], 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def message(rng, i):
    text = body(rng, rng.randint(300, 1500))
    return ("From: user%d@example.org\nTo: someone@example.net\nSubject: note %d\n"
            "Message-ID: <%d.%d@example.org>\n\n%s\n" % (i % 97, i, i, rng.getrandbits(32), text))


def write(path, data, mtime):
    with open(path, "w") as f:
        f.write(data)
    os.utime(path, (mtime, mtime))


def generate(n, out, seed):
    rng = random.Random(seed)
    mail = os.path.join(out, "mail")
    mailboxes = max(1, (n + PER_MAILBOX - 1) // PER_MAILBOX)
    done = 0
    for b in range(mailboxes):
        box = os.path.join(mail, "user%05d@example.org" % b)
        count = min(PER_MAILBOX, n - done)
        for folder in FOLDERS:
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(box, folder, sub), exist_ok=True)
            if folder:
                write(os.path.join(box, folder, "maildirfolder"), "", T0)
        write(os.path.join(box, "dovecot-uidvalidity"), "%08x\n" % rng.getrandbits(32), T0)
        write(os.path.join(box, "subscriptions"), "Sent\nTrash\nArchive\n", T0)
        for k in range(count):
            i = done + k
            folder = FOLDERS[0] if k % 10 < 6 else FOLDERS[1 + k % 3]
            t = T0 + i
            if k % 20 == 0:
                name = os.path.join(box, folder, "new", "%d.M%dP%d.mx" % (t, i, b))
            else:
                name = os.path.join(box, folder, "cur", "%d.M%dP%d.mx:2,S" % (t, i, b))
            write(name, message(rng, i), t)
        done += count
        if b % 50 == 0:
            print("gen_small: %d/%d messages" % (done, n), file=sys.stderr, flush=True)
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    os.makedirs(os.path.join(out, "dkim"), exist_ok=True)
    db = sqlite3.connect(os.path.join(out, "data", "main.db"))
    db.execute("CREATE TABLE domain(name TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE user(email TEXT PRIMARY KEY, domain_name TEXT, password TEXT)")
    db.execute("INSERT INTO domain VALUES('example.org')")
    db.executemany("INSERT INTO user VALUES(?, 'example.org', '{BLF-CRYPT}x')",
                   [("user%05d@example.org" % b,) for b in range(mailboxes)])
    db.commit()
    db.close()
    write(os.path.join(out, "dkim", "example.org.dkim.key"),
          "-----BEGIN PRIVATE KEY-----\nsynthetic\n-----END PRIVATE KEY-----\n", T0)


def mutate(mail, seed):
    rng = random.Random(seed)
    boxes = sorted(os.listdir(mail))
    new = read = deleted = 0
    for b, name in enumerate(boxes):
        box = os.path.join(mail, name)
        inbox_new, inbox_cur = os.path.join(box, "new"), os.path.join(box, "cur")
        for f in sorted(os.listdir(inbox_new)):
            if rng.random() < 0.4:   # read: new/X -> cur/X:2,S (dovecot's rename)
                os.rename(os.path.join(inbox_new, f), os.path.join(inbox_cur, f + ":2,S"))
                read += 1
        for f in sorted(os.listdir(inbox_cur)):
            if rng.random() < 0.008:
                os.remove(os.path.join(inbox_cur, f))
                deleted += 1
        for k in range(PER_MAILBOX // 100):
            i = 10**9 + b * PER_MAILBOX + k
            write(os.path.join(inbox_new, "%d.M%dP%d.mx" % (T0 + 86400 + k, i, b)),
                  message(rng, i), T0 + 86400 + k)
            new += 1
    print("gen_small --mutate: %d new, %d read (renamed), %d deleted" % (new, read, deleted),
          file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--files", type=int)
    p.add_argument("--out")
    p.add_argument("--mutate")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.mutate:
        mutate(a.mutate, a.seed)
    elif a.files and a.out:
        generate(a.files, a.out, a.seed)
    else:
        p.error("give --files N --out VOL, or --mutate VOL/mail")


if __name__ == "__main__":
    main()
