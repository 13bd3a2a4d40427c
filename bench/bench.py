#!/usr/bin/env python3
"""mailvault vs restic vs borg vs tar|zstd on one generated Mailu volume set.

Order, so that every tool sees the same data: all full backups; one --mutate of the corpus;
all incrementals; all no-op backups; all restores (each verified); verify (mailvault's
restore-and-compare); check with data read (mailvault check --read-data, restic check
--read-data, borg check --verify-data). Tools alternate within each
operation. A failing tool is marked FAILED in the table; the others go on. Exit status 1 if
anything failed or a restored tree differs from its source.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure  # noqa: E402
import report  # noqa: E402
import tools as toolmod  # noqa: E402
import treecheck  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_GEN = os.path.join(REPO_ROOT, "bench", "gen_small.py")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--messages", "--messages-per-user", dest="messages", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1, help="corpus seed (corpus B: --users 200 "
                   "--messages 2500 --seed 7)")
    p.add_argument("--files", type=int, default=0,
                   help="instead of gen_maildir.py: N small messages from bench/gen_small.py "
                   "(e.g. 2000000), for memory at scale")
    p.add_argument("--out", default="/tmp/mv-bench",
                   help="work dir: corpus in OUT/vol, repos, logs, results/<date>.{json,md}")
    p.add_argument("--tools", default="mailvault,restic,borg,tar")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of full, no-op and restore per tool (incremental is once)")
    p.add_argument("--mailvault-bin", default=os.environ.get(
        "MAILVAULT_BIN", os.path.join(REPO_ROOT, "build", "agent", "mailvault")))
    p.add_argument("--corpus-gen", default=os.environ.get(
        "MAILVAULT_CORPUS_GEN", os.path.join(REPO_ROOT, "..", "shared", "corpus", "gen_maildir.py")))
    p.add_argument("--keep-restores", action="store_true", help="keep OUT/restore/<tool>")
    p.add_argument("--restore-fs", action="store_true",
                   help="restore (and verify) each time into a fresh ext4 file system (a loop-mounted image "
                   "in OUT; needs root): creating files where the previous restore's were just "
                   "deleted is several times slower on ext4, which made later restores of a "
                   "run slower than the first whatever the tool")
    p.add_argument("--timeout", type=float, default=3600,
                   help="seconds before one command is killed and marked failed")
    return p.parse_args()


def say(msg):
    print("[bench %s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), msg), flush=True)


def file_sha1(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def ensure_corpus(a, work, vol, logs):
    """Generates vol/ unless a pristine (not yet mutated) corpus with the same stamp is there."""
    if not os.path.isfile(a.corpus_gen):
        sys.exit("corpus generator not found at %s: set MAILVAULT_CORPUS_GEN or --corpus-gen"
                 % a.corpus_gen)
    stamp_path = os.path.join(work, "corpus.stamp")
    gen = SMALL_GEN if a.files else a.corpus_gen
    want = {"users": a.users, "messages": a.messages, "seed": a.seed, "files": a.files,
            "generator_sha1": file_sha1(gen), "state": "pristine"}
    try:
        with open(stamp_path) as f:
            if json.load(f) == want and os.path.isdir(os.path.join(vol, "mail")):
                say("reusing pristine corpus in %s (stamp matches)" % vol)
                return stamp_path, want
    except (OSError, ValueError):
        pass
    if os.path.lexists(stamp_path):
        os.remove(stamp_path)
    shutil.rmtree(vol, ignore_errors=True)
    if a.files:
        say("generating %d small messages into %s" % (a.files, vol))
        cmd = [sys.executable, SMALL_GEN, "--files", str(a.files), "--seed", str(a.seed),
               "--out", vol]
    else:
        say("generating corpus %dx%d (seed %d) into %s" % (a.users, a.messages, a.seed, vol))
        cmd = [sys.executable, a.corpus_gen, "--users", str(a.users), "--messages-per-user",
               str(a.messages), "--seed", str(a.seed), "--out", os.path.join(vol, "mail")]
    r = measure.run_measured(cmd, os.path.join(logs, "corpus.log"), timeout=0)
    if not r["ok"]:
        sys.exit("corpus generation failed (see %s)" % os.path.join(logs, "corpus.log"))
    say("corpus generated in %.1f s" % r["wall_s"])
    with open(stamp_path, "w") as f:
        json.dump(want, f)
    return stamp_path, want


def mutate_corpus(a, vol, logs, stamp_path, stamp):
    # Mark the corpus as used before touching it, so a later run never reuses a mutated tree.
    with open(stamp_path, "w") as f:
        json.dump(dict(stamp, state="mutated"), f)
    gen = SMALL_GEN if a.files else a.corpus_gen
    r = measure.run_measured([sys.executable, gen, "--mutate", os.path.join(vol, "mail"),
                              "--seed", "2"], os.path.join(logs, "corpus.log"),
                             timeout=0)
    if not r["ok"]:
        sys.exit("gen_maildir.py --mutate failed (see %s)" % os.path.join(logs, "corpus.log"))


def tool_versions(tl):
    cmds = {"mailvault": None, "restic": ["restic", "version"], "borg": ["borg", "--version"],
            "tar": ["zstd", "-V"]}
    out = {}
    for t in tl:
        cmd = [t.bin, "--version"] if t.name.startswith("mailvault") else cmds[t.name]
        out[t.name] = "%s: unavailable" % t.name
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, env=t.env, start_new_session=True)
        except OSError:
            continue
        try:
            text = proc.communicate(timeout=20)[0].strip(" *\n")
            if proc.returncode == 0 and text:
                out[t.name] = text.splitlines()[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
    return out


class Runner:
    def __init__(self, a, work, vol, logs, tl):
        self.a, self.work, self.vol, self.logs, self.tools = a, work, vol, logs, tl
        self.ops = {op: {} for op, _ in report.OPS}
        self.sizes = {t.name: {} for t in tl}
        self.verify = {}
        self.diffs = {}
        self.broken = {}   # tool -> why later operations are skipped

    def log(self, t):
        return os.path.join(self.logs, t.name + ".log")

    def record(self, op, t, r, why=None):
        cell = self.ops[op].setdefault(t.name, {"status": "ok", "samples": []})
        if r is None:
            cell.update(status="skipped", why=why)
            return
        if not r["ok"]:
            cell.update(status="failed", why="timed out" if r.get("timed_out") else "exit %d" % r["rc"])
            say("%s %s FAILED (exit %d); log: %s" % (t.name, op, r["rc"], self.log(t)))
            return
        cell["samples"].append(r)
        say("%-9s %-7s %7.2f s wall %7.2f s cpu %6.0f MB" % (
            t.name, op, r["wall_s"], r["cpu_s"], r["rss_mb"]))

    def settle(self):
        """Flushes dirty pages (unmeasured) so no tool pays for the previous one's writeback."""
        t0 = time.monotonic()
        os.sync()
        if time.monotonic() - t0 > 1:
            say("sync took %.1f s (not counted)" % (time.monotonic() - t0))

    def order(self, rep):
        return self.tools if rep % 2 == 0 else list(reversed(self.tools))

    def full(self):
        for rep in range(self.a.repeat):
            for t in self.order(rep):
                if self.ops["full"].get(t.name, {}).get("status", "ok") != "ok":
                    continue
                for cmd in t.fresh_repo_cmds():
                    rc = measure.run_quiet(cmd, self.log(t), env=t.env)
                    if rc != 0:
                        why = "not found: %s" % cmd[0] if rc == 127 else "init exit %d" % rc
                        self.broken[t.name] = "no full backup"
                        self.ops["full"][t.name] = {"status": "failed", "why": why, "samples": []}
                        say("%s init FAILED (%s); log: %s" % (t.name, why, self.log(t)))
                        break
                else:
                    cmd, cwd = t.backup_cmd("full")
                    self.settle()
                    r = measure.run_measured(cmd, self.log(t), cwd=cwd, env=t.env)
                    t.backup_done(r["ok"])
                    self.record("full", t, r)
                    if not r["ok"]:
                        self.broken[t.name] = "full backup failed"
        self.measure_sizes("full")

    def backup(self, kind, reps):
        for rep in range(reps):
            for t in self.order(rep):
                if t.full_only:
                    self.ops[kind][t.name] = {"status": "n/a"}
                elif t.name in self.broken:
                    self.record(kind, t, None, why=self.broken[t.name])
                else:
                    cmd, cwd = t.backup_cmd(kind)
                    self.settle()
                    r = measure.run_measured(cmd, self.log(t), cwd=cwd, env=t.env)
                    t.backup_done(r["ok"])
                    self.record(kind, t, r)
        self.measure_sizes(kind)

    def measure_sizes(self, key):
        for t in self.tools:
            if t.name not in self.broken:
                self.sizes[t.name][key] = measure.du_bytes(t.repo)

    def restore(self, expected_by_tool):
        for rep in range(self.a.repeat):
            last = rep == self.a.repeat - 1
            for t in self.order(rep):
                if t.name in self.broken:
                    self.record("restore", t, None, why=self.broken[t.name])
                    continue
                target = os.path.join(self.work, "restore", t.name)
                shutil.rmtree(target, ignore_errors=True)
                os.makedirs(target)
                image = self.fresh_fs(target) if self.a.restore_fs else None
                cmd, cwd = t.restore_cmd(target)
                self.settle()
                r = measure.run_measured(cmd, self.log(t), cwd=cwd, env=t.env)
                self.record("restore", t, r)
                if last and (r["ok"] or r["rc"] not in (127, -9)):
                    # A failed or partial restore is checked too: its differences say what broke.
                    self.check(t, target, expected_by_tool[t.name])
                if image:
                    subprocess.run(["umount", target], check=True)
                    os.unlink(image)
                if not self.a.keep_restores or not last:
                    shutil.rmtree(target, ignore_errors=True)

    def fresh_fs(self, target):
        """A new ext4 file system mounted at `target` (--restore-fs), sized for the corpus."""
        image = target + ".img"
        size = max(2 * measure.du_bytes(self.vol), 1 << 30)
        with open(image, "wb") as f:
            f.truncate(size)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-i", "4096", image], check=True)
        subprocess.run(["mount", "-o", "loop", image, target], check=True)
        os.rmdir(os.path.join(target, "lost+found"))  # an empty target, as without --restore-fs
        return image

    def readonly_op(self, op):
        """verify / check: commands that read the repository; repository growth is recorded."""
        for t in self.tools:
            cmd = t.verify_cmd(os.path.join(self.work, "scratch")) if op == "verify" else t.check_cmd()
            if cmd is None:
                self.ops[op][t.name] = {"status": "n/a"}
            elif t.name in self.broken:
                self.record(op, t, None, why=self.broken[t.name])
            else:
                scratch = os.path.join(self.work, "scratch")
                shutil.rmtree(scratch, ignore_errors=True)
                os.makedirs(scratch)
                # verify restores into the scratch directory: a fresh file system too.
                image = self.fresh_fs(scratch) if self.a.restore_fs and op == "verify" else None
                self.settle()
                r = measure.run_measured(cmd, self.log(t), env=t.env)
                self.record(op, t, r)
                if image:
                    subprocess.run(["umount", scratch], check=True)
                    os.unlink(image)
        shutil.rmtree(os.path.join(self.work, "scratch"), ignore_errors=True)
        self.measure_sizes(op)

    def check(self, t, target, expected):
        diffs = treecheck.compare(expected, treecheck.manifest(target, toolmod.SOURCES))
        self.verify[t.name] = "ok" if not diffs else "**MISMATCH**"
        self.diffs[t.name] = diffs
        if diffs:
            say("%s: RESTORED TREE DIFFERS FROM SOURCE (%s)" % (t.name, target))
            for d in diffs:
                say("  " + d)
        else:
            say("%s: restored tree matches source (%d entries)" % (t.name, len(expected)))


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
    stamp_path, stamp = ensure_corpus(a, work, vol, logs)
    tl = toolmod.make_tools([n for n in a.tools.split(",") if n], work, vol,
                            os.path.abspath(a.mailvault_bin))
    runner = Runner(a, work, vol, logs, tl)

    say("reading the corpus once (warms the page cache, records what restores must hold)")
    before = treecheck.manifest(vol, toolmod.SOURCES)
    say("full backups"); runner.full()  # noqa: E702
    say("mutating the corpus once (gen_maildir.py --mutate --seed 2)")
    mutate_corpus(a, vol, logs, stamp_path, stamp)
    after = treecheck.manifest(vol, toolmod.SOURCES)
    say("incremental backups"); runner.backup("incr", 1)  # noqa: E702
    say("no-op backups"); runner.backup("noop", a.repeat)  # noqa: E702
    say("restores")
    runner.restore({t.name: (before if t.full_only else after) for t in tl})
    say("verify (mailvault only: restic and borg have no restore-and-compare)")
    runner.readonly_op("verify")
    say("check --read-data")
    runner.readonly_op("check")

    files = sum(1 for v in before.values() if v[0] != "dir")
    results = {
        "started": started, "host": platform.node(), "cores": os.cpu_count(),
        "config": {"users": a.users, "messages": a.messages, "seed": a.seed, "files": a.files,
                   "repeat": a.repeat, "out": work,
                   "mailvault_bin": a.mailvault_bin, "warm_cache": True},
        "corpus": {"files": files, "bytes": measure.du_bytes(vol)},
        "tools": [t.name for t in tl], "labels": {t.name: t.label for t in tl},
        "versions": tool_versions(tl), "ops": runner.ops, "sizes": runner.sizes,
        "verify": runner.verify, "verify_diffs": runner.diffs,
    }
    md = report.markdown(results)
    out_dir = os.path.join(work, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, started + ".json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out_dir, started + ".md"), "w") as f:
        f.write(md)
    print()
    print(md)
    say("results: %s/%s.{json,md}; command logs: %s" % (out_dir, started, logs))
    failed = [(op, t) for op, cells in runner.ops.items() for t, c in cells.items()
              if c["status"] in ("failed", "skipped")]
    bad = [t for t, v in runner.verify.items() if v != "ok"]
    if bad:
        say("FAILED: restored tree differs from the source for: %s" % ", ".join(bad))
    if failed:
        say("FAILED operations: %s" % ", ".join("%s %s" % (t, op) for op, t in failed))
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())
