#!/usr/bin/env python3
"""Retention: mailvault forget+prune vs restic forget --prune vs borg prune + compact.

One generated Mailu volume set; N simulated days. Each day every tool backs up the tree with
that day's time (mailvault backup --time, restic backup --time, borg create --timestamp), then
gen_maildir.py --mutate simulates a day of mail (new, flagged, moved, deleted messages; seed
1000+day). The history is built unmeasured. Then, measured (wall seconds, peak RSS):

  mailvault forget --keep-daily D --keep-weekly W --prune
  mailvault forget ... --keep-deleted-mail 30d --prune   (on a copy; holds the deleted mail)
  restic    forget --keep-daily D --keep-weekly W --prune
  borg      prune  --keep-daily D --keep-weekly W    then    borg compact

and the repository size before and after, the snapshots kept, and (for reference) the peak
RSS of each tool's last backup of the same tree. Afterwards mailvault's repository is checked
(check --read-data) and its newest snapshot restored and compared with the tree, unmeasured.

borg's rules do not share snapshots between buckets (restic's and mailvault's do), so borg may
keep more archives for the same flags: the table says how many each kept.

  python3 bench/retention.py                 # 50 users x 2000 messages, 30 days
  python3 bench/retention.py --users 5 --messages 200 --days 10    # a quick run
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import measure  # noqa: E402
import tools as toolmod  # noqa: E402
import treecheck  # noqa: E402

say = bench.say


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--messages", "--messages-per-user", dest="messages", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--keep-daily", type=int, default=7)
    p.add_argument("--keep-weekly", type=int, default=4)
    p.add_argument("--keep-deleted-mail", default="30d",
                   help="also run mailvault's forget with this on a copy of its repository "
                        "('' to skip)")
    p.add_argument("--start", default="",
                   help="first day (UTC), YYYY-MM-DD (default: --days before today, so the "
                        "history ends yesterday and --keep-deleted-mail's period has not run "
                        "out for the mail it holds)")
    p.add_argument("--out", default="/tmp/mv-retention")
    p.add_argument("--tools", default="mailvault,restic,borg")
    p.add_argument("--mailvault-bin", default=os.environ.get(
        "MAILVAULT_BIN", os.path.join(bench.REPO_ROOT, "build", "agent", "mailvault")))
    p.add_argument("--corpus-gen", default=os.environ.get(
        "MAILVAULT_CORPUS_GEN",
        os.path.join(bench.REPO_ROOT, "..", "shared", "corpus", "gen_maildir.py")))
    p.add_argument("--timeout", type=float, default=3600)
    a = p.parse_args()
    a.files = 0  # bench.ensure_corpus: the realistic generator, not gen_small.py
    if not a.start:
        a.start = (datetime.datetime.now(datetime.timezone.utc).date() -
                   datetime.timedelta(days=a.days)).strftime("%Y-%m-%d")
    return a


def backup_cmd(t, day):
    """The tool's backup of vol/ recorded at `day` 03:00 UTC. Returns (argv, cwd)."""
    stamp = day.strftime("%Y-%m-%d") + " 03:00:00"
    if t.name == "mailvault":
        cmd, cwd = t.backup_cmd("incr")
        return cmd + ["--time", stamp], cwd
    if t.name == "restic":
        cmd, cwd = t.backup_cmd("incr")
        return cmd[:2] + ["--time", stamp] + cmd[2:], cwd
    if t.name == "borg":
        name = "day-" + day.strftime("%Y-%m-%d")
        return ["borg", "create", "--compression", "zstd,3", "--timestamp",
                day.strftime("%Y-%m-%dT03:00:00"), "::" + name, "."], t.vol
    raise SystemExit("no retention benchmark for tool %s" % t.name)


def retention_cmds(t, a):
    keep = ["--keep-daily", str(a.keep_daily), "--keep-weekly", str(a.keep_weekly)]
    if t.name == "mailvault":
        return [([t.bin, "forget", "--repo", t.repo] + keep + ["--prune"], None)]
    if t.name == "restic":
        return [(["restic", "forget", "--host", "mv-bench"] + keep + ["--prune"], None)]
    if t.name == "borg":
        return [(["borg", "prune"] + keep, None), (["borg", "compact"], None)]
    raise SystemExit(t.name)


def count_snapshots(t, log):
    """Snapshots (archives) in the tool's repository now, or -1 when listing fails."""
    out = log + ".list"
    if t.name == "mailvault":
        cmd = [t.bin, "snapshots", "--repo", t.repo, "--json"]
    elif t.name == "restic":
        cmd = ["restic", "snapshots", "--json"]
    else:
        cmd = ["borg", "list", "--json"]
    r = subprocess.run(cmd, env=t.env, capture_output=True, text=True)
    with open(out, "a") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        return -1
    j = json.loads(r.stdout or "null")
    if t.name == "borg":
        return len(j.get("archives", []))
    return len(j or [])


def mb(n):
    return "%.1f MB" % (n / 1e6)


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
    with open(stamp_path, "w") as f:  # the days mutate it: never reuse it afterwards
        json.dump(dict(stamp, state="mutated"), f)
    tl = toolmod.make_tools([n for n in a.tools.split(",") if n], work, vol,
                            os.path.abspath(a.mailvault_bin))
    for t in tl:
        for cmd in t.fresh_repo_cmds():
            if measure.run_quiet(cmd, os.path.join(logs, t.name + ".log"), env=t.env) != 0:
                sys.exit("%s: repository setup failed (see logs/%s.log)" % (t.name, t.name))
    env = dict(os.environ, TZ="UTC")
    for t in tl:
        t.env["TZ"] = "UTC"  # restic and borg read --time/--timestamp as local time
    first = datetime.datetime.strptime(a.start, "%Y-%m-%d")
    last_backup = {}
    for d in range(a.days):
        day = first + datetime.timedelta(days=d)
        for t in tl:
            cmd, cwd = backup_cmd(t, day)
            r = measure.run_measured(cmd, os.path.join(logs, t.name + ".log"), cwd=cwd, env=t.env)
            if not r["ok"]:
                sys.exit("%s: backup of day %d failed (see logs/%s.log)" % (t.name, d, t.name))
            last_backup[t.name] = r
        say("day %d/%d (%s): %s" % (d + 1, a.days, day.date(), ", ".join(
            "%s %.1f s" % (n, r["wall_s"]) for n, r in last_backup.items())))
        if d + 1 < a.days:
            r = measure.run_measured(
                [sys.executable, a.corpus_gen, "--mutate", os.path.join(vol, "mail"), "--seed",
                 str(1000 + d)], os.path.join(logs, "corpus.log"), env=env, timeout=0)
            if not r["ok"]:
                sys.exit("gen_maildir.py --mutate failed (see logs/corpus.log)")
    final_tree = treecheck.manifest(vol, toolmod.SOURCES)

    mv = next((t for t in tl if t.name == "mailvault"), None)
    held_repo = None
    if mv and a.keep_deleted_mail:
        held_repo = mv.repo + "-held"
        shutil.rmtree(held_repo, ignore_errors=True)
        shutil.copytree(mv.repo, held_repo, symlinks=True)

    rows = {}
    for t in tl:
        log = os.path.join(logs, t.name + ".log")
        before = measure.du_bytes(t.repo)
        snaps_before = count_snapshots(t, log)
        measure.run_quiet(["sync"], log)
        wall, rss, ok = 0.0, 0.0, True
        for cmd, cwd in retention_cmds(t, a):
            r = measure.run_measured(cmd, log, cwd=cwd, env=t.env)
            wall += r["wall_s"]
            rss = max(rss, r["rss_mb"])
            ok = ok and r["ok"]
        rows[t.name] = {"ok": ok, "wall_s": round(wall, 2), "rss_mb": rss,
                        "bytes_before": before, "bytes_after": measure.du_bytes(t.repo),
                        "snapshots_before": snaps_before,
                        "snapshots_after": count_snapshots(t, log),
                        "backup_rss_mb": last_backup[t.name]["rss_mb"]}
        say("%s: %s in %.1f s, %s -> %s" % (t.name, "ok" if ok else "FAILED", wall, mb(before),
                                             mb(rows[t.name]["bytes_after"])))

    held = None
    if held_repo:
        # The same forget and prune, holding what only the removed snapshots had.
        log = os.path.join(logs, "mailvault-held.log")
        before = measure.du_bytes(held_repo)
        out = os.path.join(logs, "mailvault-held.json")
        cmd = [mv.bin, "forget", "--repo", held_repo, "--keep-daily", str(a.keep_daily),
               "--keep-weekly", str(a.keep_weekly), "--keep-deleted-mail", a.keep_deleted_mail,
               "--prune", "--json"]
        r = measure.run_measured(["sh", "-c", '"$@" > %s' % out, "sh"] + cmd, log, env=mv.env)
        with open(out) as f:
            j = json.load(f) if r["ok"] else {}
        held = {"ok": r["ok"], "wall_s": round(r["wall_s"], 2), "rss_mb": r["rss_mb"],
                "bytes_before": before, "bytes_after": measure.du_bytes(held_repo),
                "messages": j.get("held_mail", {}).get("messages", -1),
                "message_bytes": j.get("held_mail", {}).get("bytes", -1)}
        target = os.path.join(work, "restore", "held")
        shutil.rmtree(target, ignore_errors=True)
        rr = subprocess.run([mv.bin, "restore", "--repo", held_repo, "--deleted-since",
                             a.start, "--target", target, "--json"],
                            capture_output=True, text=True, env=mv.env)
        held["restored"] = json.loads(rr.stdout)["files_written"] if rr.returncode == 0 else -1
        shutil.rmtree(target, ignore_errors=True)
        say("mailvault --keep-deleted-mail: held %d messages, %s -> %s" % (
            held["messages"], mb(before), mb(held["bytes_after"])))

    proof = {}
    if mv:
        log = os.path.join(logs, "mailvault.log")
        proof["check"] = measure.run_measured(
            [mv.bin, "check", "--repo", mv.repo, "--read-data"], log)["ok"]
        target = os.path.join(work, "restore", "mailvault")
        shutil.rmtree(target, ignore_errors=True)
        ok = measure.run_measured(mv.restore_cmd(target)[0], log)["ok"]
        diffs = treecheck.compare(final_tree, treecheck.manifest(target, toolmod.SOURCES)) \
            if ok else ["restore failed"]
        proof["restore_latest"] = "ok" if not diffs else "%d difference(s)" % len(diffs)
        shutil.rmtree(target, ignore_errors=True)

    lines = ["# Retention benchmark: %d days, --keep-daily %d --keep-weekly %d" %
             (a.days, a.keep_daily, a.keep_weekly), "",
             "Corpus %d users x %d messages (seed %d), one `gen_maildir.py --mutate` per day; "
             "warm page cache; %d cores; %s." % (a.users, a.messages, a.seed, os.cpu_count(),
                                                started), "",
             "| tool | snapshots before -> after | forget+prune wall s | peak RSS | "
             "repo before | repo after | last backup peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for t in tl:
        r = rows[t.name]
        lines.append("| %s | %d -> %d | %s | %.0f MB | %s | %s | %.0f MB |" % (
            t.label, r["snapshots_before"], r["snapshots_after"],
            "%.2f" % r["wall_s"] if r["ok"] else "FAILED", r["rss_mb"], mb(r["bytes_before"]),
            mb(r["bytes_after"]), r["backup_rss_mb"]))
    if held:
        lines.append("| mailvault --keep-deleted-mail %s | (same) | %s | %.0f MB | %s | %s | |" % (
            a.keep_deleted_mail, "%.2f" % held["wall_s"] if held["ok"] else "FAILED",
            held["rss_mb"], mb(held["bytes_before"]), mb(held["bytes_after"])))
    if mv:
        base = rows["mailvault"]
        lines += ["", "Ratios (peer / mailvault): " + ", ".join(
            "%s wall %.2fx, after %.2fx" % (n, r["wall_s"] / max(base["wall_s"], 1e-9),
                                            r["bytes_after"] / max(base["bytes_after"], 1))
            for n, r in rows.items() if n != "mailvault"),
                  "", "mailvault afterwards: check --read-data %s; newest snapshot restores %s."
                  % ("ok" if proof["check"] else "FAILED", proof["restore_latest"])]
    if held:
        lines += ["", "With --keep-deleted-mail %s: %d messages (%s) that only the removed "
                  "snapshots had are held; `restore --deleted-since %s` restored %d of them."
                  % (a.keep_deleted_mail, held["messages"], mb(held["message_bytes"]), a.start,
                     held["restored"])]
    md = "\n".join(lines) + "\n"
    out_dir = os.path.join(work, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "retention-" + started + ".json"), "w") as f:
        json.dump({"started": started, "host": platform.node(), "config": vars(a),
                   "rows": rows, "held": held, "proof": proof}, f, indent=1)
    with open(os.path.join(out_dir, "retention-" + started + ".md"), "w") as f:
        f.write(md)
    print()
    print(md)
    bad = [n for n, r in rows.items() if not r["ok"]]
    if mv and (not proof["check"] or proof["restore_latest"] != "ok"):
        bad.append("mailvault proof")
    if held and (not held["ok"] or held["restored"] != held["messages"]):
        bad.append("mailvault --keep-deleted-mail")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
