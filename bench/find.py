#!/usr/bin/env python3
"""find: "which snapshots hold this message" on a history of N days, mailvault vs restic.

One generated Mailu volume set; N simulated days, built unmeasured as bench/retention.py builds
them (each day every tool backs up the tree with that day's time, then gen_maildir.py --mutate
simulates a day of mail). Then, measured (wall seconds, peak RSS; each --repeat times):

  mailvault find --message-id ID          a message of day 1 that a later day deletes
  mailvault find --subject WORD           a word of that message's subject
  mailvault find --from ADDRESS           its sender
  mailvault history --mailbox M           its mailbox's folders across the N snapshots
  mailvault history --mailbox M --diff FIRST LAST
  restic find FILENAME                    the anchor: restic can only search by file name, so it
                                          is given the message's file name (what an operator
                                          would have to know first)

The goal (issue "incident restore"): find answers within 2 s on the 100k-message corpus with 30
snapshots. mailvault's answers are checked: the message is found, with its last snapshot.

  python3 bench/find.py                          # 50 users x 2000 messages, 30 days
  python3 bench/find.py --users 5 --messages 200 --days 5     # a quick run
"""
import argparse
import datetime
import email.parser
import email.policy
import json
import os
import platform
import random
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import measure  # noqa: E402
import retention  # noqa: E402
import tools as toolmod  # noqa: E402

say = bench.say


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--messages", "--messages-per-user", dest="messages", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="/tmp/mv-find")
    p.add_argument("--tools", default="mailvault,restic")
    p.add_argument("--mailvault-bin", default=os.environ.get(
        "MAILVAULT_BIN", os.path.join(bench.REPO_ROOT, "build", "agent", "mailvault")))
    p.add_argument("--corpus-gen", default=os.environ.get(
        "MAILVAULT_CORPUS_GEN",
        os.path.join(bench.REPO_ROOT, "..", "shared", "corpus", "gen_maildir.py")))
    p.add_argument("--timeout", type=float, default=3600)
    a = p.parse_args()
    a.files = 0
    a.start = (datetime.datetime.now(datetime.timezone.utc).date() -
               datetime.timedelta(days=a.days)).strftime("%Y-%m-%d")
    return a


def pick_message(vol, seed):
    """A message file of the tree now: (mailbox, relative path, Message-ID, subject, from)."""
    mail = os.path.join(vol, "mail")
    rng = random.Random(seed)
    boxes = sorted(os.listdir(mail))
    while True:
        box = rng.choice(boxes)
        cur = os.path.join(mail, box, "cur")
        names = sorted(os.listdir(cur))
        if not names:
            continue
        name = rng.choice(names)
        with open(os.path.join(cur, name), "rb") as f:
            msg = email.parser.BytesParser(policy=email.policy.default).parse(f, headersonly=True)
        mid = (msg.get("Message-ID") or "").strip()
        subject = str(msg.get("Subject") or "")
        words = [w for w in subject.split() if len(w) >= 6 and w.isalpha()]
        sender = msg.get("From")
        addr = sender.addresses[0].addr_spec if sender and sender.addresses else ""
        if mid and words and addr:
            return box, os.path.join(box, "cur", name), mid, words[0], addr


def main():
    a = parse_args()
    measure.TIMEOUT_S = a.timeout
    work = os.path.abspath(a.out)
    vol = os.path.join(work, "vol")
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    for n in os.listdir(logs):
        os.remove(os.path.join(logs, n))
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    stamp_path, stamp = bench.ensure_corpus(a, work, vol, logs)
    with open(stamp_path, "w") as f:
        json.dump(dict(stamp, state="mutated"), f)
    tl = toolmod.make_tools([n for n in a.tools.split(",") if n], work, vol,
                            os.path.abspath(a.mailvault_bin))
    for t in tl:
        t.env["TZ"] = "UTC"
        for cmd in t.fresh_repo_cmds():
            if measure.run_quiet(cmd, os.path.join(logs, t.name + ".log"), env=t.env) != 0:
                sys.exit("%s: repository setup failed (see logs/%s.log)" % (t.name, t.name))
    box, rel, mid, word, sender = pick_message(vol, a.seed)
    say("the message: %s (%s), subject word %r, from %s" % (rel, mid, word, sender))
    first = datetime.datetime.strptime(a.start, "%Y-%m-%d")
    present_until = None
    for d in range(a.days):
        day = first + datetime.timedelta(days=d)
        for t in tl:
            cmd, cwd = retention.backup_cmd(t, day)
            r = measure.run_measured(cmd, os.path.join(logs, t.name + ".log"), cwd=cwd, env=t.env)
            if not r["ok"]:
                sys.exit("%s: backup of day %d failed (see logs/%s.log)" % (t.name, d, t.name))
        here = os.path.exists(os.path.join(vol, "mail", rel))
        if here:
            present_until = d
        if d == a.days // 2 and here:  # the incident: the message is deleted half-way
            os.remove(os.path.join(vol, "mail", rel))
        say("day %d/%d backed up" % (d + 1, a.days))
        if d + 1 < a.days:
            r = measure.run_measured(
                [sys.executable, a.corpus_gen, "--mutate", os.path.join(vol, "mail"), "--seed",
                 str(1000 + d)], os.path.join(logs, "corpus.log"), timeout=0)
            if not r["ok"]:
                sys.exit("gen_maildir.py --mutate failed (see logs/corpus.log)")

    rows, ok_all = {}, True
    mv = next(t for t in tl if t.name == "mailvault")
    snaps = json.loads(subprocess.run([mv.bin, "snapshots", "--repo", mv.repo, "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    ops = [
        ("mailvault find --message-id", [mv.bin, "find", "--repo", mv.repo, "--message-id", mid,
                                         "--json"], "mailvault"),
        ("mailvault find --subject", [mv.bin, "find", "--repo", mv.repo, "--subject", word,
                                      "--json"], "mailvault"),
        ("mailvault find --from", [mv.bin, "find", "--repo", mv.repo, "--from", sender, "--json"],
         "mailvault"),
        ("mailvault history --mailbox", [mv.bin, "history", "--repo", mv.repo, "--mailbox", box,
                                         "--json"], "mailvault"),
        ("mailvault history --diff", [mv.bin, "history", "--repo", mv.repo, "--mailbox", box,
                                      "--diff", snaps[0]["id"], snaps[-1]["id"], "--json"],
         "mailvault"),
    ]
    rs = next((t for t in tl if t.name == "restic"), None)
    if rs:
        ops.append(("restic find FILENAME", ["restic", "find", "--host", "mv-bench",
                                             os.path.basename(rel)], "restic"))
    for label, cmd, tool in ops:
        t = next(x for x in tl if x.name == tool)
        log = os.path.join(logs, tool + "-find.log")
        runs = [measure.run_measured(cmd, log, env=t.env) for _ in range(a.repeat)]
        ok = all(r["ok"] for r in runs)
        walls = [r["wall_s"] for r in runs]
        rows[label] = {"ok": ok, "wall_min_s": round(min(walls), 3),
                       "wall_median_s": round(statistics.median(walls), 3),
                       "rss_mb": max(r["rss_mb"] for r in runs)}
        ok_all = ok_all and ok
        say("%s: %s, median %.3f s, %.0f MB" % (label, "ok" if ok else "FAILED",
                                                rows[label]["wall_median_s"],
                                                rows[label]["rss_mb"]))
    # The answer is right: the message, with the snapshot it was last in.
    out = subprocess.run(ops[0][1], capture_output=True, text=True)
    found = json.loads(out.stdout or "{}").get("messages", [])
    last_expected = snaps[present_until]["id"] if present_until is not None else ""
    unique = os.path.basename(rel).split(":2,")[0]
    here = [m for m in found if m["mailbox"] == box and m["folder"] == "INBOX" and
            m["name"] == unique]  # a day may also have moved it (to .Trash): another place
    answer_ok = len(here) == 1 and here[0]["last_snapshot"] == last_expected
    say("find's answer: %d place(s); in INBOX until snapshot %s (expected %s): %s" % (
        len(found), here[0]["last_snapshot"][:8] if here else "-", last_expected[:8],
        "right" if answer_ok else "WRONG"))
    ok_all = ok_all and answer_ok

    res = {"started": started, "host": platform.node(), "cpus": os.cpu_count(),
           "corpus": stamp, "days": a.days, "snapshots": len(snaps), "repeat": a.repeat,
           "message": {"path": rel, "message_id": mid, "present_until_day": present_until},
           "answer_right": answer_ok, "rows": rows}
    rdir = os.path.join(bench.REPO_ROOT, "bench", "results")
    os.makedirs(rdir, exist_ok=True)
    base = os.path.join(rdir, "find-" + started)
    with open(base + ".json", "w") as f:
        json.dump(res, f, indent=2)
    lines = ["# find on %d snapshots of %dx%d messages (%s)" % (len(snaps), a.users, a.messages,
                                                               started), "",
             "| operation | median s | min s | peak RSS |", "|---|---|---|---|"]
    for label, r in rows.items():
        lines.append("| %s | %s | %s | %.0f MB |" % (
            label, r["wall_median_s"] if r["ok"] else "FAILED", r["wall_min_s"], r["rss_mb"]))
    lines += ["", "find's answer (the message and its last snapshot): %s" %
              ("right" if answer_ok else "WRONG")]
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    say("results: %s.{json,md}" % base)
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
