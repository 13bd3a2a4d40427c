"""Light correctness check: does a restored tree hold what the source held?

A manifest maps each relative path to what a user would check: type, size, mode, uid, gid,
mtime (whole seconds: GNU tar keeps no more) and a SHA-1 of the content (or the symlink target).
Left out on purpose, because a correct backup tool is allowed to differ there:
  - the contents of Maildir tmp/ folders (delivery scratch space, skipped by design);
  - SQLite -wal/-shm/-journal side files (folded into the database by the online backup API);
  - the bytes and mtime of SQLite databases: an online-backup copy is a new file holding the same
    rows, so databases are compared by their SQL dump instead;
  - directory sizes and mtimes (directories change as their entries are written).
"""
import hashlib
import os
import sqlite3
import stat

SQLITE_MAGIC = b"SQLite format 3\x00"
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")


def _sha1(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def _is_sqlite(path):
    with open(path, "rb") as f:
        return f.read(16) == SQLITE_MAGIC


def _sqlite_dump_digest(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        h = hashlib.sha1()
        for line in con.iterdump():
            h.update(line.encode("utf-8", "surrogateescape") + b"\n")
        return "sql:" + h.hexdigest()
    finally:
        con.close()


def _in_maildir_tmp(dirpath):
    parent, base = os.path.split(dirpath)
    return base == "tmp" and os.path.isdir(os.path.join(parent, "cur"))


def manifest(root, subdirs):
    """Manifest of root/<each of subdirs>, keyed by path relative to root."""
    out = {}
    for sub in subdirs:
        top = os.path.join(root, sub)
        if not os.path.lexists(top):
            continue
        for dirpath, dirs, files in os.walk(top):
            rel_dir = os.path.relpath(dirpath, root)
            st = os.lstat(dirpath)
            out[rel_dir] = ("dir", 0, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0, "")
            if _in_maildir_tmp(dirpath):
                continue
            for n in files:
                if n.endswith(SIDE_SUFFIXES):
                    continue
                out[os.path.join(rel_dir, n)] = _entry(os.path.join(dirpath, n))
            for n in list(dirs):
                p = os.path.join(dirpath, n)
                if os.path.islink(p):   # os.walk lists symlinks to dirs as dirs
                    out[os.path.join(rel_dir, n)] = _entry(p)
    return out


def _entry(p):
    st = os.lstat(p)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return ("symlink", 0, 0, st.st_uid, st.st_gid, 0, os.readlink(p))
    if not stat.S_ISREG(st.st_mode):
        return ("special", 0, mode, st.st_uid, st.st_gid, 0, "")
    if st.st_size >= 16 and _is_sqlite(p):
        return ("sqlite", 0, mode, st.st_uid, st.st_gid, 0, _sqlite_dump_digest(p))
    return ("file", st.st_size, mode, st.st_uid, st.st_gid, int(st.st_mtime), _sha1(p))


FIELDS = ("type", "size", "mode", "uid", "gid", "mtime", "content")


def compare(expected, actual, limit=20):
    """Returns a list of human-readable differences (at most `limit`, plus a count line)."""
    diffs = []
    for path in sorted(set(expected) | set(actual)):
        e, a = expected.get(path), actual.get(path)
        if e == a:
            continue
        if a is None:
            diffs.append("missing from restore: %s" % path)
        elif e is None:
            diffs.append("extra in restore: %s" % path)
        else:
            what = ", ".join("%s %r != %r" % (f, x, y) for f, x, y in zip(FIELDS, e, a) if x != y)
            diffs.append("differs: %s (%s)" % (path, what))
    if len(diffs) > limit:
        diffs = diffs[:limit] + ["... and %d more differences" % (len(diffs) - limit)]
    return diffs
