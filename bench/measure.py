"""Runs one command and measures it: wall seconds, user+sys CPU seconds, peak RSS.

CPU comes from wait4() on the direct child, whose rusage includes every descendant it reaped, so
a pipeline run under `bash -c 'a | b'` counts the CPU of all its members.

Peak RSS comes from /usr/bin/time (%M), which runs the command: Linux keeps a forked child's
pre-exec RSS in ru_maxrss, so measuring a command forked straight from this (large) Python process
would report Python's size. Forked from the small `time` process instead, the figure is the
command's own (for a pipeline: its largest member).
"""
import os
import signal
import subprocess
import threading
import time

TIMEOUT_S = 3600.0   # a command still running after this is killed (its process group) and failed


def _kill_group(pgid, log, timeout):
    log.write("\nbench: timed out after %.0f s, killing process group %d\n" % (timeout, pgid))
    log.flush()
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_measured(cmd, log_path, cwd=None, env=None, timeout=None):
    """Runs cmd (argv list) with stdout+stderr appended to log_path.

    timeout: seconds (None: TIMEOUT_S; 0: no limit) before its process group is killed.

    Returns a dict: ok, rc, wall_s, cpu_s, user_s, sys_s, rss_mb (and timed_out). A command that
    cannot start (missing binary) is reported as rc 127 with the reason in the log, never raised.
    """
    with open(log_path, "a") as log:
        log.write("\n$ %s%s\n" % (" ".join(cmd), "   (cwd %s)" % cwd if cwd else ""))
        log.flush()
        t0 = time.monotonic()
        rss_file = log_path + ".rss"
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + list(cmd)
        try:
            proc = subprocess.Popen(timed, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            log.write("cannot start: %s\n" % e)
            return {"ok": False, "rc": 127, "wall_s": 0.0, "cpu_s": 0.0, "user_s": 0.0,
                    "sys_s": 0.0, "rss_mb": 0.0, "error": str(e)}
        limit = TIMEOUT_S if timeout is None else timeout
        timer = threading.Timer(limit, _kill_group, (proc.pid, log, limit)) if limit else None
        if timer:
            timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    rc = proc.returncode
    rss_kb = 0.0
    try:
        with open(rss_file) as f:
            lines = [l for l in f.read().split() if l.isdigit()]
            rss_kb = float(lines[-1]) if lines else 0.0
        os.unlink(rss_file)
    except OSError:
        rss_kb = ru.ru_maxrss
    timed_out = bool(limit) and wall >= limit
    return {"ok": rc == 0, "rc": rc, "timed_out": timed_out, "wall_s": round(wall, 3),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "user_s": round(ru.ru_utime, 3),
            "sys_s": round(ru.ru_stime, 3), "rss_mb": round(rss_kb / 1024.0, 1)}


def run_quiet(cmd, log_path, cwd=None, env=None):
    """Runs an unmeasured setup command; returns its exit code (127 if it cannot start)."""
    return run_measured(cmd, log_path, cwd=cwd, env=env)["rc"]


def du_bytes(path):
    """Apparent size in bytes of a file or tree (like `du -sb`), 0 if it does not exist."""
    if not os.path.lexists(path):
        return 0
    if not os.path.isdir(path):
        return os.lstat(path).st_size
    total = 0
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            total += os.lstat(os.path.join(root, n)).st_size
    return total
