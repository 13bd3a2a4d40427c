"""The tools under comparison: how each one initialises, backs up and restores DIR/vol.

Each tool backs up the same three sources of a Mailu volume set (vol/mail, vol/data, vol/dkim)
and restores the latest backup so that TARGET/mail, TARGET/data, TARGET/dkim mirror vol/.
A tool with full_only set has no incremental or no-op backup (tar).
"""
import os
import shutil

SOURCES = ("mail", "data", "dkim")


class Tool:
    name = "?"
    label = "?"
    full_only = False   # True: no incremental or no-op backup (tar)

    def __init__(self, work, vol):
        self.work = work          # DIR: everything this tool writes lives under DIR/repos
        self.vol = vol            # DIR/vol: what is backed up
        self.repo = os.path.join(work, "repos", self.name)
        self.env = dict(os.environ)
        self.count = 0

    def fresh_repo_cmds(self):
        """Removes any old repository; returns unmeasured setup commands (e.g. init)."""
        if os.path.isdir(self.repo):
            shutil.rmtree(self.repo)
        elif os.path.lexists(self.repo):
            os.remove(self.repo)
        os.makedirs(os.path.dirname(self.repo), exist_ok=True)
        return []

    def backup_cmd(self, kind):
        """Command for a backup; kind is 'full', 'incr' or 'noop'. Returns (argv, cwd)."""
        raise NotImplementedError

    def backup_done(self, ok):
        """Told whether the command from the last backup_cmd() succeeded."""

    def restore_cmd(self, target):
        raise NotImplementedError

    def verify_cmd(self, scratch):
        """Restore-and-compare of the latest backup, or None when the tool has none."""
        return None

    def check_cmd(self):
        """Repository check that reads all data, or None when the tool has none."""
        return None


class Mailvault(Tool):
    name, label = "mailvault", "mailvault"

    def __init__(self, work, vol, binary):
        super().__init__(work, vol)
        self.bin = binary

    def fresh_repo_cmds(self):
        super().fresh_repo_cmds()
        return [[self.bin, "init", "--repo", self.repo]]

    def backup_cmd(self, kind):
        cmd = [self.bin, "backup", "--repo", self.repo]
        for s in SOURCES:
            cmd += ["--source", "%s=%s" % (s, os.path.join(self.vol, s))]
        return cmd, None

    def restore_cmd(self, target):
        return [self.bin, "restore", "--repo", self.repo, "--snapshot", "latest",
                "--target", target], None

    def verify_cmd(self, scratch):
        return [self.bin, "verify", "--repo", self.repo, "--snapshot", "latest", "--against",
                "snapshot", "--scratch", scratch, "--quiet"]

    def check_cmd(self):
        return [self.bin, "check", "--repo", self.repo, "--read-data"]


class MailvaultEncrypted(Mailvault):
    """The same commands on an encrypted repository (init --encrypt, docs/ENCRYPTION.md): the
    cost of encryption is this column against the mailvault one."""
    name, label = "mailvault-enc", "mailvault (encrypted)"

    def __init__(self, work, vol, binary):
        super().__init__(work, vol, binary)
        self.passfile = os.path.join(work, "mailvault-enc.pass")
        self.env["MAILVAULT_PASSWORD_FILE"] = self.passfile

    def fresh_repo_cmds(self):
        super().fresh_repo_cmds()
        with open(self.passfile, "w") as f:
            f.write("mv-bench\n")
        return [[self.bin, "init", "--repo", self.repo, "--encrypt"]]


class Restic(Tool):
    name, label = "restic", "restic"

    def __init__(self, work, vol):
        super().__init__(work, vol)
        self.env.update(RESTIC_REPOSITORY=self.repo, RESTIC_PASSWORD="mv-bench",
                        RESTIC_CACHE_DIR=os.path.join(work, "cache", "restic"))

    def fresh_repo_cmds(self):
        super().fresh_repo_cmds()
        shutil.rmtree(self.env["RESTIC_CACHE_DIR"], ignore_errors=True)
        return [["restic", "init"]]

    def backup_cmd(self, kind):
        # "." from inside vol/ stores mail/, data/, dkim/ at the top of the snapshot.
        return ["restic", "backup", "--host", "mv-bench", "."], self.vol

    def restore_cmd(self, target):
        return ["restic", "restore", "latest", "--host", "mv-bench", "--target", target], None

    def check_cmd(self):
        return ["restic", "check", "--read-data"]


class Borg(Tool):
    name, label = "borg", "borg (zstd,3)"

    def __init__(self, work, vol):
        super().__init__(work, vol)
        self.env.update(BORG_REPO=self.repo, BORG_PASSPHRASE="mv-bench",
                        BORG_BASE_DIR=os.path.join(work, "cache", "borg"),
                        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
        self.last_archive = None   # newest archive that was written successfully
        self.pending = None

    def fresh_repo_cmds(self):
        super().fresh_repo_cmds()
        shutil.rmtree(self.env["BORG_BASE_DIR"], ignore_errors=True)
        return [["borg", "init", "--encryption=none"]]

    def backup_cmd(self, kind):
        self.count += 1
        self.pending = "%s-%d" % (kind, self.count)
        return ["borg", "create", "--compression", "zstd,3", "::" + self.pending, "."], self.vol

    def backup_done(self, ok):
        if ok:
            self.last_archive = self.pending

    def restore_cmd(self, target):
        return ["borg", "extract", "::" + (self.last_archive or "none")], target

    def check_cmd(self):
        return ["borg", "check", "--verify-data"]


class TarZstd(Tool):
    name, label = "tar", "tar \\| zstd -3 -T0"
    full_only = True

    def __init__(self, work, vol):
        super().__init__(work, vol)
        self.repo = os.path.join(work, "repos", "tar.tar.zst")

    def backup_cmd(self, kind):
        assert kind == "full", "tar makes full backups only"
        script = "tar -C %s -cf - . | zstd -3 -T0 -q > %s" % (_q(self.vol), _q(self.repo))
        return ["bash", "-o", "pipefail", "-c", script], None

    def restore_cmd(self, target):
        script = "zstd -dc %s | tar -x -C %s" % (_q(self.repo), _q(target))
        return ["bash", "-o", "pipefail", "-c", script], None


def _q(path):
    return "'" + path.replace("'", "'\\''") + "'"


def make_tools(names, work, vol, mailvault_bin):
    table = {"mailvault": lambda: Mailvault(work, vol, mailvault_bin),
             "mailvault-enc": lambda: MailvaultEncrypted(work, vol, mailvault_bin),
             "restic": lambda: Restic(work, vol), "borg": lambda: Borg(work, vol),
             "tar": lambda: TarZstd(work, vol)}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit("unknown tool(s) %s; choose from %s" % (unknown, ", ".join(table)))
    return [table[n]() for n in names]
