#!/usr/bin/env python3
"""mailvault vs restic, both writing to one local Ceph RGW (S3), on one generated Mailu volume set.

Starts a single-node RGW on loopback (tests/s3/rgw.sh: memstore, so the repositories live in
RAM), makes one bucket per tool, then in one run, tools alternating as in bench.py:
full backup; one gen_maildir.py --mutate day; incremental; no-op backup; restore of the latest
snapshot; restore of one mailbox (mailvault `--include mail/<mailbox>`, restic `--include
/mail/<mailbox>`). Every restore is checked against the source tree (bench/treecheck.py).

Measured per command: wall and CPU seconds and peak RSS (bench/measure.py), and on RGW's side
(its perf counters, `perf dump rgw` on its admin socket; nothing else uses this RGW) the
requests, the bytes PUT (up) and the bytes GET (down, object payload). mailvault's own count
(`--json`, "storage": backup, and restore since 45afc2d) is recorded next to RGW's.

Backups keep each tool's cache between nights (the same host). Restores start from an empty
cache (a new host: what an off-site restore is for): both tools download their index and
trees as well as the data.

  python3 bench/s3.py                               # 50 users x 2000 messages (~100k, ~3 GB)
  python3 bench/s3.py --users 5 --messages 200      # a quick run
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import tools as toolmod  # noqa: E402
import treecheck  # noqa: E402

say = bench.say
RGW_SH = os.path.join(bench.REPO_ROOT, "tests", "s3", "rgw.sh")
GIB = 1 << 30
OPS = [("full", "full backup"), ("incr", "incremental after --mutate"), ("noop", "no-op backup"),
       ("restore", "restore latest (empty cache)"),
       ("restore1", "restore one mailbox (empty cache)")]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--messages", "--messages-per-user", dest="messages", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="/tmp/mv-bench-s3",
                   help="work dir: corpus in OUT/vol, RGW in OUT/rgw, logs, results/s3-<date>.*")
    p.add_argument("--port", type=int, default=7490, help="RGW's port on 127.0.0.1")
    p.add_argument("--memstore-gib", type=float, default=0,
                   help="RGW's memstore capacity (RAM); default: 2.5 x the corpus + 1 GiB")
    p.add_argument("--mailbox", default="",
                   help="mailbox of the one-mailbox restore (default: the median one by size)")
    p.add_argument("--mailvault-bin", default=os.environ.get(
        "MAILVAULT_BIN", os.path.join(bench.REPO_ROOT, "build", "agent", "mailvault")))
    p.add_argument("--corpus-gen", default=os.environ.get(
        "MAILVAULT_CORPUS_GEN",
        os.path.join(bench.REPO_ROOT, "..", "shared", "corpus", "gen_maildir.py")))
    p.add_argument("--keep-corpus", action="store_true",
                   help="keep OUT/vol (mutated, so a later run regenerates it anyway)")
    p.add_argument("--timeout", type=float, default=3600)
    a = p.parse_args()
    a.files, a.repeat, a.keep_restores = 0, 1, False   # what bench.py's helpers read
    return a


class Rgw:
    """The RGW of tests/s3/rgw.sh under DIR: its credentials, counters and bucket sizes."""

    def __init__(self, work, port):
        self.dir = os.path.join(work, "rgw")
        self.port = port
        self.conf = os.path.join(self.dir, "ceph.conf")
        self.env = {}

    def start(self, memstore_bytes, log):
        env = dict(os.environ, MV_RGW_MEMSTORE_BYTES=str(int(memstore_bytes)))
        if measure.run_quiet(["bash", RGW_SH, "start", self.dir, str(self.port)], log, env=env):
            sys.exit("RGW did not start (see %s and %s/log)" % (log, self.dir))
        with open(os.path.join(self.dir, "env")) as f:
            self.env = dict(l.strip().split("=", 1) for l in f if "=" in l)
        self.endpoint = self.env["MV_S3_ENDPOINT"]

    def stop(self):
        subprocess.run(["bash", RGW_SH, "stop", self.dir], check=False)

    def keep_access_log(self, path):
        """Copies RGW's request lines (method, key, status, bytes sent) out of its debug log."""
        try:
            with open(os.path.join(self.dir, "log", "client.rgw.a.log"), errors="replace") as f, \
                    open(path, "w") as out:
                out.writelines(l for l in f if " beast: " in l)
        except OSError:
            pass

    def mb_cmd(self, bucket):
        return ["aws", "--endpoint-url", self.endpoint, "s3api", "create-bucket",
                "--bucket", bucket]

    def _json(self, cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def counters(self):
        """RGW's cumulative requests, PUT bytes and GET bytes since it started."""
        sock = os.path.join(self.dir, "run", "client.rgw.a.asok")
        d = self._json(["ceph", "--admin-daemon", sock, "perf", "dump", "rgw"])["rgw"]
        return {"requests": d["req"], "bytes_up": d["put_b"], "bytes_down": d["get_b"],
                "failed_requests": d["failed_req"]}

    def bucket(self, name):
        """(bytes, objects) stored in a bucket, from radosgw-admin bucket stats."""
        d = self._json(["radosgw-admin", "-c", self.conf, "bucket", "stats", "--bucket=" + name])
        main = (d or {}).get("usage", {}).get("rgw.main", {})
        return main.get("size", 0), main.get("num_objects", 0)

    def osd_rss_mb(self):
        try:
            with open(os.path.join(self.dir, "run", "osd.0.pid")) as f:
                pid = f.read().strip()
            with open("/proc/%s/status" % pid) as f:
                rss = [l.split()[1] for l in f if l.startswith("VmRSS:")]
            return int(rss[0]) / 1024.0
        except (OSError, IndexError, ValueError):
            return 0.0


class S3Mailvault(toolmod.Mailvault):
    """mailvault on s3:<endpoint>/<bucket>/repo; its --json report goes to logs/mailvault.json."""

    def __init__(self, work, vol, binary, rgw):
        super().__init__(work, vol, binary)
        self.rgw, self.bucket = rgw, "mv-bench-mailvault"
        self.repo = "s3:%s/%s/repo" % (rgw.endpoint, self.bucket)
        self.env.update(rgw.env)
        self.cache = os.path.join(work, "cache", "mailvault")
        self.cold_cache = os.path.join(work, "cache", "mailvault-restore")
        self.json_out = os.path.join(work, "logs", "mailvault.json")

    def fresh_repo_cmds(self):
        shutil.rmtree(self.cache, ignore_errors=True)
        return [self.rgw.mb_cmd(self.bucket), [self.bin, "init", "--repo", self.repo]]

    def _reporting(self, cmd, cache):
        # exec: the measured process is mailvault itself, with stdout (the JSON) to a file.
        return ["sh", "-c", 'exec "$@" > "$0"', self.json_out] + cmd + [
            "--cache-dir", cache, "--json"]

    def backup_cmd(self, kind):
        cmd, cwd = super().backup_cmd(kind)
        return self._reporting(cmd, self.cache), cwd

    def restore_cmd(self, target):
        shutil.rmtree(self.cold_cache, ignore_errors=True)
        return self._reporting(super().restore_cmd(target)[0], self.cold_cache), None

    def restore_one_cmd(self, target, mailbox):
        cmd, cwd = self.restore_cmd(target)
        return cmd + ["--include", "mail/" + mailbox], cwd

    def take_report(self):
        """The --json output of the last command (removed, so it is never taken twice)."""
        try:
            with open(self.json_out) as f:
                j = json.load(f)
        except (OSError, ValueError):
            j = None
        if os.path.lexists(self.json_out):
            os.remove(self.json_out)
        return j


class S3Restic(toolmod.Restic):
    def __init__(self, work, vol, rgw):
        super().__init__(work, vol)
        self.rgw, self.bucket = rgw, "mv-bench-restic"
        self.repo = "s3:%s/%s" % (rgw.endpoint, self.bucket)
        self.env.update(rgw.env, RESTIC_REPOSITORY=self.repo)
        self.cold_cache = os.path.join(work, "cache", "restic-restore")

    def fresh_repo_cmds(self):
        shutil.rmtree(self.env["RESTIC_CACHE_DIR"], ignore_errors=True)
        return [self.rgw.mb_cmd(self.bucket), ["restic", "init"]]

    def restore_cmd(self, target):
        shutil.rmtree(self.cold_cache, ignore_errors=True)
        cmd, cwd = super().restore_cmd(target)
        return cmd[:1] + ["--cache-dir", self.cold_cache] + cmd[1:], cwd

    def restore_one_cmd(self, target, mailbox):
        cmd, cwd = self.restore_cmd(target)
        return cmd + ["--include", "/mail/" + mailbox], cwd

    def take_report(self):
        return None


class S3Runner(bench.Runner):
    """bench.Runner, with RGW's counters read around every measured command."""

    def __init__(self, a, work, vol, logs, tl, rgw):
        super().__init__(a, work, vol, logs, tl)
        self.rgw = rgw
        self.ops["restore1"] = {}
        self.buckets = {t.name: {} for t in tl}
        self.osd_rss = {}
        self.before = None

    def settle(self):
        super().settle()
        self.before = self.rgw.counters()

    def record(self, op, t, r, why=None):
        if r is not None:
            after = self.rgw.counters()
            r.update({k: after[k] - self.before[k] for k in after})
            r["report"] = t.take_report()
            storage = (r["report"] or {}).get("storage")
            if storage:
                r["self"] = storage
        super().record(op, t, r, why)
        if r is not None and r["ok"]:
            say("%-9s %-7s %7d requests %9.1f MB up %9.1f MB down (RGW)" % (
                t.name, op, r["requests"], r["bytes_up"] / 1e6, r["bytes_down"] / 1e6))

    def measure_sizes(self, key):
        for t in self.tools:
            if t.name not in self.broken:
                self.buckets[t.name][key] = self.rgw.bucket(t.bucket)
        self.osd_rss[key] = self.rgw.osd_rss_mb()

    def restore_one(self, expected, mailbox):
        """Restores one mailbox of the latest snapshot; checks it against that part of the tree."""
        top = os.path.join("mail", mailbox)
        want = {p: e for p, e in expected.items() if p == top or p.startswith(top + os.sep)}
        for t in self.tools:
            if t.name in self.broken:
                self.record("restore1", t, None, why=self.broken[t.name])
                continue
            target = os.path.join(self.work, "restore", t.name)
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target)
            cmd, cwd = t.restore_one_cmd(target, mailbox)
            self.settle()
            r = measure.run_measured(cmd, self.log(t), cwd=cwd, env=t.env)
            self.record("restore1", t, r)
            got = treecheck.manifest(target, [top])
            diffs = treecheck.compare(want, got)
            self.verify[t.name + " one mailbox"] = "ok" if not diffs else "**MISMATCH**"
            self.diffs[t.name + " one mailbox"] = diffs
            for d in diffs:
                say("%s one mailbox: %s" % (t.name, d))
            shutil.rmtree(target, ignore_errors=True)


def pick_mailbox(vol, wanted):
    root = os.path.join(vol, "mail")
    sizes = sorted((measure.du_bytes(os.path.join(root, n)), n) for n in os.listdir(root)
                   if os.path.isdir(os.path.join(root, n)))
    if wanted:
        if wanted not in [n for _, n in sizes]:
            sys.exit("no mailbox %s in %s" % (wanted, root))
        return wanted, dict((n, b) for b, n in sizes)[wanted]
    b, n = sizes[len(sizes) // 2]
    return n, b


def packed_alone(t, work, mailbox, log):
    """What the mailbox alone takes in a fresh local repository of the tool (its compressed
    size there: mailvault's bytes_packed; restic's repository growth), unmeasured."""
    repo = os.path.join(work, "scratch", t.name)
    shutil.rmtree(repo, ignore_errors=True)
    src = os.path.join(t.vol, "mail", mailbox)
    if t.name == "mailvault":
        env = dict(t.env)
        if measure.run_quiet([t.bin, "init", "--repo", repo], log, env=env):
            return None
        out = subprocess.run([t.bin, "backup", "--repo", repo, "--source", "mail=" + src,
                              "--json"], capture_output=True, text=True, env=env)
        return json.loads(out.stdout)["bytes_packed"] if out.returncode == 0 else None
    env = dict(t.env, RESTIC_REPOSITORY=repo,
               RESTIC_CACHE_DIR=os.path.join(work, "scratch", "restic-cache"))
    if measure.run_quiet(["restic", "init"], log, env=env):
        return None
    empty = measure.du_bytes(repo)
    if measure.run_quiet(["restic", "backup", "--host", "mv-bench", "."], log, cwd=src, env=env):
        return None
    return measure.du_bytes(repo) - empty


def memstore_bytes(a, corpus_bytes):
    """RGW's memstore capacity; exits when the two repositories would not fit in free RAM."""
    if a.memstore_gib:
        cap = a.memstore_gib * GIB
    else:
        cap = max(4 * GIB, 2.5 * corpus_bytes + GIB)
    with open("/proc/meminfo") as f:
        avail = dict((l.split(":")[0], int(l.split()[1]) * 1024) for l in f)["MemAvailable"]
    # Both repositories hold ~1.5x the corpus; memstore's resident memory was ~1.9x what it
    # stores (8.0 GB for 4.2 GB, 100k-message corpus); plus the daemons themselves.
    need = 3 * corpus_bytes + GIB
    if need > avail - 2 * GIB:
        sys.exit("the repositories (~%.1f GiB of RAM in RGW's memstore) do not fit in the %.1f GiB "
                 "available: use a smaller corpus (--users 20 --messages 1000)"
                 % (need / GIB, avail / GIB))
    return cap


def size(n):
    return "%.1f MB" % (n / 1e6) if n >= 1e5 else "%.1f KB" % (n / 1e3)


def _cell(c, key, fmt):
    if c is None or c.get("status") != "ok":
        return report._fmt(c, key)   # "–", or FAILED / skipped and why
    return fmt(report.best(c, key))


def metric_table(results, key, title, fmt):
    """Rows are operations; columns mailvault, restic, restic / mailvault (bench's style)."""
    lines = ["### " + title, "", "| operation | mailvault | restic | restic / mailvault |",
             "|---|---|---|---|"]
    for op, label in OPS:
        mv, rs = (results["ops"].get(op, {}).get(t) for t in ("mailvault", "restic"))
        ratio = report._ratio(report.best(rs, key), report.best(mv, key))
        lines.append("| %s | %s | %s | %s |" % (label, _cell(mv, key, fmt), _cell(rs, key, fmt),
                                                report._fmt_ratio(ratio)))
    return lines + [""]


def self_count_rows(results):
    lines = ["| operation | requests | retries | up | down | cache hits (bytes) |",
             "|---|---|---|---|---|---|"]
    for op, label in OPS:
        c = results["ops"].get(op, {}).get("mailvault") or {}
        s = (c.get("samples") or [{}])[-1].get("self")
        if s:
            lines.append("| %s | %d | %d | %s | %s | %d (%s) |" % (
                label, s["requests"], s["retries"], size(s["bytes_up"]), size(s["bytes_down"]),
                s["cache_hits"], size(s["cache_bytes"])))
        else:
            lines.append("| %s | – (not in this binary's --json) | | | | |" % label)
    return lines


def markdown(results):
    cfg, c, mbx = results["config"], results["corpus"], results["mailbox"]
    out = ["## mailvault vs restic on S3 (Ceph RGW %s, memstore) — %s" % (
               results["rgw_version"], results["started"]), "",
           "Corpus: %d users x %d messages (seed %d), %d files, %.2f GB in vol/; then one "
           "`gen_maildir.py --mutate --seed 2` day before the incrementals. Machine: %s, %d cores; "
           "RGW on loopback, memstore %.1f GiB. Page cache warm. Versions: %s." % (
               cfg["users"], cfg["messages"], cfg["seed"], c["files"], c["bytes"] / 1e9,
               results["host"], results["cores"], cfg["memstore_bytes"] / GIB,
               "; ".join(results["versions"].values())),
           "Backups keep each tool's cache; restores start with an empty cache (a new host). "
           "Requests and bytes are RGW's count (perf counters: requests of any kind, object bytes "
           "PUT and GET). Ratios are restic / mailvault: above 1x mailvault is faster, lighter "
           "or transfers less.", ""]
    for key, title, fmt in (
            ("wall_s", "Wall seconds", lambda v: "%.2f" % v),
            ("cpu_s", "CPU seconds (user + sys)", lambda v: "%.2f" % v),
            ("rss_mb", "Peak RSS (MB, largest process)", lambda v: "%.0f" % v),
            ("requests", "S3 requests (RGW's count, any kind)", lambda v: "%d" % v),
            ("bytes_up", "Bytes up (RGW's count of object bytes PUT)", size),
            ("bytes_down", "Bytes down (RGW's count of object bytes GET)", size)):
        out += metric_table(results, key, title, fmt)
    out += ["### mailvault's own count (`--json` \"storage\", listings included)", ""]
    out += self_count_rows(results)
    out += ["", "### Buckets (bytes stored, objects)", "",
            "| after | mailvault | restic | restic / mailvault |", "|---|---|---|---|"]
    for key, label in (("full", "full backup"), ("incr", "incremental"), ("noop", "no-op")):
        mv = results["buckets"].get("mailvault", {}).get(key)
        rs = results["buckets"].get("restic", {}).get(key)
        cells = ["%s, %d" % (size(v[0]), v[1]) if v else "–" for v in (mv, rs)]
        out.append("| %s | %s | %s | %s |" % (label, cells[0], cells[1], report._fmt_ratio(
            report._ratio(rs and rs[0], mv and mv[0]))))
    restored = [report.best(results["ops"]["restore"].get(t), "bytes_down")
                for t in ("mailvault", "restic")]
    stored = [results["buckets"].get(t, {}).get("noop") for t in ("mailvault", "restic")]
    out.append("| restore latest: downloaded / stored | %s | %s | |" % tuple(
        "%.2fx" % (d / b[0]) if d is not None and b and b[0] else "–"
        for d, b in zip(restored, stored)))
    out.append("| restore verified | %s | %s | |" % tuple(
        "%s, one mailbox %s" % (results["verify"].get(t, "–"),
                                results["verify"].get(t + " one mailbox", "–"))
        for t in ("mailvault", "restic")))
    out += ["", "RGW's OSD resident memory (the memstore): " + ", ".join(
        "%s %.0f MB" % (k, v) for k, v in results["osd_rss_mb"].items()) + ".", "",
            "### One mailbox: `%s`, %s on disk" % (mbx["name"], size(mbx["bytes"])), "",
            "| | mailvault | restic |", "|---|---|---|"]
    packed = [mbx["packed_alone"].get(t) for t in ("mailvault", "restic")]
    down = [report.best(results["ops"]["restore1"].get(t), "bytes_down")
            for t in ("mailvault", "restic")]
    out.append("| its size alone in a fresh repository of the tool (compressed) | %s |" %
               " | ".join(size(p) if p is not None else "–" for p in packed))
    out.append("| downloaded by the one-mailbox restore | %s |" % " | ".join(
        size(d) if d is not None else "–" for d in down))
    out.append("| downloaded / its compressed size | %s |" % " | ".join(
        "%.1fx" % (d / p) if d is not None and p else "–" for d, p in zip(down, packed)))
    return "\n".join(out) + "\n"


def main():
    a = parse_args()
    measure.TIMEOUT_S = a.timeout
    work = os.path.abspath(a.out)
    vol, logs = os.path.join(work, "vol"), os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    for n in os.listdir(logs):
        os.remove(os.path.join(logs, n))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))   # so RGW is stopped
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    stamp_path, stamp = bench.ensure_corpus(a, work, vol, logs)
    corpus_bytes = measure.du_bytes(vol)
    cap = memstore_bytes(a, corpus_bytes)
    rgw = Rgw(work, a.port)
    say("starting RGW on 127.0.0.1:%d (memstore %.1f GiB) in %s" % (a.port, cap / GIB, rgw.dir))
    rgw.start(cap, os.path.join(logs, "rgw.log"))
    try:
        results = run(a, work, vol, logs, rgw, stamp_path, stamp)
        results["started"] = started
    finally:
        rgw.stop()
        rgw.keep_access_log(os.path.join(logs, "rgw-access.log"))
        for d in ("restore", "cache", "scratch", "rgw") + (() if a.keep_corpus else ("vol",)):
            shutil.rmtree(os.path.join(work, d), ignore_errors=True)
        if not a.keep_corpus and os.path.lexists(stamp_path):
            os.remove(stamp_path)
    results["config"]["memstore_bytes"] = cap
    md = markdown(results)
    out_dir = os.path.join(work, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "s3-%s.json" % started), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out_dir, "s3-%s.md" % started), "w") as f:
        f.write(md)
    print()
    print(md)
    say("results: %s/s3-%s.{json,md}; command logs: %s" % (out_dir, started, logs))
    failed = ["%s %s" % (t, op) for op, cells in results["ops"].items()
              for t, c in cells.items() if c["status"] in ("failed", "skipped")]
    bad = [t for t, v in results["verify"].items() if v != "ok"]
    if failed or bad:
        say("FAILED: %s" % ", ".join(failed + ["restore of %s differs" % t for t in bad]))
    return 1 if failed or bad else 0


def run(a, work, vol, logs, rgw, stamp_path, stamp):
    binary = os.path.abspath(a.mailvault_bin)
    tl = [S3Mailvault(work, vol, binary, rgw), S3Restic(work, vol, rgw)]
    runner = S3Runner(a, work, vol, logs, tl, rgw)
    say("reading the corpus once (warms the page cache)")
    before = treecheck.manifest(vol, toolmod.SOURCES)
    corpus = {"files": sum(1 for v in before.values() if v[0] != "dir"),
              "bytes": measure.du_bytes(vol)}
    say("full backups"); runner.full()  # noqa: E702
    say("mutating the corpus once (gen_maildir.py --mutate --seed 2)")
    bench.mutate_corpus(a, vol, logs, stamp_path, stamp)
    after = treecheck.manifest(vol, toolmod.SOURCES)
    say("incremental backups"); runner.backup("incr", 1)  # noqa: E702
    say("no-op backups"); runner.backup("noop", 1)  # noqa: E702
    say("restores (empty caches)"); runner.restore({t.name: after for t in tl})  # noqa: E702
    mailbox, mailbox_bytes = pick_mailbox(vol, a.mailbox)
    say("restores of one mailbox: %s (%.1f MB)" % (mailbox, mailbox_bytes / 1e6))
    runner.restore_one(after, mailbox)
    say("the mailbox alone in a fresh local repository of each tool (its compressed size)")
    packed = {t.name: packed_alone(t, work, mailbox, runner.log(t)) for t in tl}
    return {
        "host": platform.node(), "cores": os.cpu_count(),
        "config": {"users": a.users, "messages": a.messages, "seed": a.seed, "out": work,
                   "port": a.port, "mailvault_bin": binary, "warm_cache": True},
        "corpus": corpus,
        "rgw_version": subprocess.run(["radosgw", "--version"], capture_output=True,
                                      text=True).stdout.split(" (")[0].replace("ceph version ", ""),
        "versions": bench.tool_versions(tl), "ops": runner.ops, "buckets": runner.buckets,
        "osd_rss_mb": runner.osd_rss, "verify": runner.verify, "verify_diffs": runner.diffs,
        "mailbox": {"name": mailbox, "bytes": mailbox_bytes, "packed_alone": packed},
    }


if __name__ == "__main__":
    sys.exit(main())
