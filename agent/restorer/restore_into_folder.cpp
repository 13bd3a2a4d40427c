// agent/restorer/restore_into_folder.h.
#include "agent/restorer/restore_into_folder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>
#include <unordered_map>

#include "agent/restorer/entries_restore.h"
#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"
#include "storage/fs.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

constexpr size_t kMaxFolderName = 200;  // bytes as given; a directory name is at most 255

// RFC 3501 5.1.3: printable ASCII stands for itself ('&' as "&-"); other characters are UTF-16
// in base64 with ',' for '/', between '&' and '-'.
std::string ModifiedUtf7(const std::u16string& units) {
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
  std::string out;
  for (size_t i = 0; i < units.size();) {
    char16_t c = units[i];
    if (c >= 0x20 && c <= 0x7e) {
      out += static_cast<char>(c);
      if (c == '&') out += '-';
      i++;
      continue;
    }
    std::string bytes;
    for (; i < units.size() && !(units[i] >= 0x20 && units[i] <= 0x7e); i++) {
      bytes += static_cast<char>(units[i] >> 8);
      bytes += static_cast<char>(units[i] & 0xff);
    }
    out += '&';
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char b : bytes) {
      acc = (acc << 8) | b;
      bits += 8;
      while (bits >= 6) {
        out += kB64[(acc >> (bits - 6)) & 0x3f];
        bits -= 6;
      }
    }
    if (bits > 0) out += kB64[(acc << (6 - bits)) & 0x3f];
    out += '-';
  }
  return out;
}

// UTF-8 to UTF-16; false on invalid UTF-8 (overlong forms, surrogates, beyond U+10FFFF).
bool Utf16Of(const std::string& s, std::u16string* out) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    uint32_t cp;
    int n;
    if (c < 0x80)
      cp = c, n = 1;
    else if ((c & 0xe0) == 0xc0)
      cp = c & 0x1f, n = 2;
    else if ((c & 0xf0) == 0xe0)
      cp = c & 0x0f, n = 3;
    else if ((c & 0xf8) == 0xf0)
      cp = c & 0x07, n = 4;
    else
      return false;
    if (i + n > s.size()) return false;
    for (int k = 1; k < n; k++) {
      unsigned char d = s[i + k];
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      *out += static_cast<char16_t>(0xd800 + (cp >> 10));
      *out += static_cast<char16_t>(0xdc00 + (cp & 0x3ff));
    } else {
      *out += static_cast<char16_t>(cp);
    }
    i += n;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Joined(const std::vector<std::string>& v, size_t max = 12) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; i++) s += (i ? ", " : "") + v[i];
  if (v.size() > max) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

// The mailbox name given must be a plain relative path: it is joined to live directories.
bool SafeMailbox(const std::string& m) {
  if (m.empty() || m[0] == '/') return false;
  for (size_t i = 0;;) {
    size_t e = m.find('/', i);
    std::string part = m.substr(i, e == std::string::npos ? std::string::npos : e - i);
    if (part.empty() || part == "." || part == "..") return false;
    if (e == std::string::npos) return true;
    i = e + 1;
  }
}

struct Selected {
  std::string folder;  // snapshot folder: "INBOX", ".Sent"
  FileEntry entry;
};

// The messages of `mailbox` in source `source` of the snapshot that the options select.
Status ScanSnapshot(storage::EntryCursor& cur, const std::string& source,
                    const std::string& mailbox, const std::set<std::string>& folders,
                    const std::set<std::string>& names, std::vector<Selected>* out,
                    std::set<std::string>* names_hit) {
  const std::string base = source + "/" + mailbox;
  FileEntry e;
  for (;;) {
    MV_ASSIGN_OR_RETURN(bool more, cur.Next(&e));
    if (!more) return Status::Ok();
    const std::string& p = e.path;
    bool on_way =
        base.compare(0, p.size(), p) == 0 && (p.size() == base.size() || base[p.size()] == '/');
    bool below =
        p.size() > base.size() && p.compare(0, base.size(), base) == 0 && p[base.size()] == '/';
    if (e.type == FileType::kDirectory) {
      if (!on_way && !below) cur.SkipChildren();
      continue;
    }
    if (!below || e.type != FileType::kRegular) continue;
    std::string rest = p.substr(base.size() + 1);
    std::string folder = "INBOX";
    if (rest[0] == '.') {
      auto slash = rest.find('/');
      if (slash == std::string::npos) continue;
      folder = rest.substr(0, slash);
      rest = rest.substr(slash + 1);
    }
    if (rest.rfind("cur/", 0) != 0 && rest.rfind("new/", 0) != 0) continue;
    std::string file = rest.substr(4);
    if (file.empty() || file.find('/') != std::string::npos) continue;
    if (!folders.empty() && !folders.count(folder)) continue;
    if (!names.empty()) {
      std::string unique(mailfiles::UniqueName(file));
      if (names.count(file))
        names_hit->insert(file);
      else if (names.count(unique))
        names_hit->insert(unique);
      else
        continue;
    }
    out->push_back({folder, e});
  }
}

// Live files by unique name, in every folder of the mailbox (cur/ and new/).
struct LiveFile {
  int folder_fd;    // index into LiveMailbox::fds
  std::string rel;  // "cur/<name>"
};
struct LiveMailbox {
  std::vector<int> fds;  // one per folder directory
  std::unordered_map<std::string, std::vector<LiveFile>> by_unique;
  std::set<std::string> dirs;  // the folder directories' names (".Sent"; "" is INBOX)
  ~LiveMailbox() {
    for (int fd : fds) ::close(fd);
  }
};

Status ScanLive(int mb_fd, const std::string& mb_path, LiveMailbox* live) {
  int dup = ::dup(mb_fd);
  DIR* d = dup < 0 ? nullptr : ::fdopendir(dup);
  if (!d)
    return Status::IOError("cannot list the live mailbox: " + std::string(strerror(errno)),
                           mb_path);
  std::vector<std::string> folder_dirs = {""};
  while (auto* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n.size() > 1 && n[0] == '.' && n != "..") folder_dirs.push_back(n);
    live->dirs.insert(n);
  }
  ::closedir(d);
  for (const auto& f : folder_dirs) {
    int fd =
        f.empty() ? ::dup(mb_fd) : ::openat(mb_fd, f.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) continue;  // not a directory (a file named ".x"): not a folder
    live->fds.push_back(fd);
    for (const char* sub : {"cur", "new"}) {
      int sfd = ::openat(fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      DIR* sd = sfd < 0 ? nullptr : ::fdopendir(sfd);
      if (!sd) {
        if (sfd >= 0) ::close(sfd);
        continue;
      }
      while (auto* de = ::readdir(sd)) {
        std::string n = de->d_name;
        if (n == "." || n == "..") continue;
        live->by_unique[std::string(mailfiles::UniqueName(n))].push_back(
            {static_cast<int>(live->fds.size() - 1), std::string(sub) + "/" + n});
      }
      ::closedir(sd);
    }
  }
  return Status::Ok();
}

// Whether a live file with the entry's unique name has its content (size, then keyed hash).
bool PresentLive(const LiveMailbox& live, const FileEntry& e, const std::string& file,
                 const storage::KeyedHasher& hasher) {
  auto it = live.by_unique.find(std::string(mailfiles::UniqueName(file)));
  if (it == live.by_unique.end()) return false;
  for (const auto& lf : it->second) {
    int fd = ::openat(live.fds[lf.folder_fd], lf.rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    bool same = false;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) == e.size) {
      storage::KeyedHasher::Stream h(hasher);
      std::string buf(1 << 16, '\0');
      ssize_t n;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0) h.Update(buf.data(), n);
      same = n == 0 && h.Final() == e.content;
    }
    ::close(fd);
    if (same) return true;
  }
  return false;
}

// Adds `names` to the mailbox's `subscriptions` file the way Dovecot does (subscription-file.c):
// under its dot-lock "subscriptions.lock" (created exclusively, written, then renamed over the
// file). Version 2 files ("V\t2\n\n" first) separate levels with a tab.
Status Subscribe(int mb_fd, const std::string& mb_path, const std::vector<std::string>& names,
                 const struct stat& owner) {
  const std::string lock_path = mb_path + "/subscriptions.lock";
  int fd = -1;
  for (int tries = 0; tries < 50; tries++) {
    fd = ::openat(mb_fd, "subscriptions.lock", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd >= 0 || errno != EEXIST) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (fd < 0)
    return Status::IOError(errno == EEXIST ? "Dovecot holds its lock on the subscriptions file"
                                           : std::string(strerror(errno)),
                           lock_path);
  std::string old;
  int in = ::openat(mb_fd, "subscriptions", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat in_st {};
  if (in >= 0) {
    ::fstat(in, &in_st);
    char buf[65536];
    ssize_t n;
    while ((n = ::read(in, buf, sizeof buf)) > 0) old.append(buf, n);
    ::close(in);
  }
  static const std::string kV2 = "V\t2\n\n";
  bool v2 = in < 0 || old.rfind(kV2, 0) == 0;
  std::string content = in < 0 ? kV2 : old;
  if (!content.empty() && content.back() != '\n') content += '\n';
  std::set<std::string> have;
  for (size_t i = 0; i < content.size();) {
    size_t e = content.find('\n', i);
    have.insert(content.substr(i, e - i));
    i = e + 1;
  }
  for (std::string n : names) {
    if (v2) std::replace(n.begin(), n.end(), '.', '\t');
    if (!have.count(n)) content += n + "\n";
  }
  uid_t uid = in >= 0 ? in_st.st_uid : owner.st_uid;
  gid_t gid = in >= 0 ? in_st.st_gid : owner.st_gid;
  mode_t mode = in >= 0 ? (in_st.st_mode & 07777) : 0600;
  Status st = storage::fs::WriteAll(fd, content.data(), content.size(), lock_path);
  if (st.ok() && ::geteuid() == 0 && ::fchown(fd, uid, gid) != 0)
    st = Status::IOError("chown: " + std::string(strerror(errno)), lock_path);
  if (st.ok() && (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0))
    st = Status::IOError(strerror(errno), lock_path);
  ::close(fd);
  if (st.ok() && ::renameat(mb_fd, "subscriptions.lock", mb_fd, "subscriptions") != 0)
    st = Status::IOError("rename to subscriptions: " + std::string(strerror(errno)), lock_path);
  if (!st.ok()) ::unlinkat(mb_fd, "subscriptions.lock", 0);
  return st;
}

}  // namespace

Result<std::string> MaildirFolderDir(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid("--into-folder '" + name + "' " + why +
                           "; give a new folder name such as \"Restored 2026-11-30\" ('.' makes "
                           "a subfolder: \"Restored.Sent\")");
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > kMaxFolderName)
    return bad("is " + std::to_string(name.size()) + " bytes long (at most " +
               std::to_string(kMaxFolderName) + ")");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return bad("contains a control character");
    if (c == '/') return bad("contains '/' (Maildir++ folders nest with '.')");
    if (c == '*' || c == '%') return bad("contains an IMAP wildcard ('*' or '%')");
  }
  std::u16string units;
  if (!Utf16Of(name, &units)) return bad("is not valid UTF-8");
  if (name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos)
    return bad("has an empty level (a leading or trailing '.', or '..')");
  if (Lower(name.substr(0, name.find('.'))) == "inbox") return bad("starts with INBOX");
  std::string dir = "." + ModifiedUtf7(units);
  if (dir.size() > 255) return bad("is too long once encoded for the disk");
  return dir;
}

Result<IntoFolderResult> RestoreIntoFolder(const storage::BlobReader& blobs,
                                           const IntoFolderOptions& opts,
                                           const ProgressFn& progress) {
  IntoFolderResult res;
  MV_ASSIGN_OR_RETURN(std::string into_dir, MaildirFolderDir(opts.into));
  if (!SafeMailbox(opts.mailbox))
    return Status::Invalid("--mailbox '" + opts.mailbox +
                           "' is not a mailbox name (alice@example.org, as `mailvault ls` and "
                           "the census name it)");
  storage::SnapshotMeta meta;
  MV_ASSIGN_OR_RETURN(auto cursor, blobs.OpenEntries(opts.snapshot, &meta));
  const std::string sid = meta.id.substr(0, 8);

  // The mailbox and its folders, from the census.
  std::vector<std::string> sources, mailboxes, mb_folders;
  for (const auto& r : meta.census) {
    if (r.mailbox == opts.mailbox) {
      if (std::find(sources.begin(), sources.end(), r.source) == sources.end())
        sources.push_back(r.source);
      mb_folders.push_back(r.folder);
    } else if (mailboxes.empty() || mailboxes.back() != r.mailbox) {
      mailboxes.push_back(r.mailbox);
    }
  }
  if (sources.empty())
    return Status::NotFound(
        "mailbox " + opts.mailbox + " is not in snapshot " + sid +
        (mailboxes.empty() ? " (it has no Maildir)" : "; its mailboxes: " + Joined(mailboxes)));
  if (sources.size() > 1)
    return Status::Invalid("mailbox " + opts.mailbox + " is in several sources of snapshot " + sid +
                           " (" + Joined(sources) + "): restore one with --include");
  res.source = sources[0];
  std::set<std::string> folders;
  for (const auto& f : opts.folders) {
    std::string n = mailfiles::FolderArg(f);
    if (std::find(mb_folders.begin(), mb_folders.end(), n) == mb_folders.end())
      return Status::NotFound("folder " + f + " is not in mailbox " + opts.mailbox +
                              " in snapshot " + sid + "; its folders: " + Joined(mb_folders, 40));
    folders.insert(n);
  }
  std::set<std::string> names(opts.messages.begin(), opts.messages.end()), names_hit;
  std::vector<Selected> sel;
  MV_RETURN_IF_ERROR(
      ScanSnapshot(*cursor, res.source, opts.mailbox, folders, names, &sel, &names_hit));
  for (const auto& n : names)
    if (!names_hit.count(n))
      return Status::NotFound(
          "message " + n + " is not in mailbox " + opts.mailbox +
          (folders.empty()
               ? ""
               : " (folders " + Joined(std::vector<std::string>(folders.begin(), folders.end())) +
                     ")") +
          " in snapshot " + sid + " (`mailvault ls --snapshot " + sid + " " + res.source + "/" +
          opts.mailbox + "` lists them)");
  res.selected = sel.size();

  // The live mailbox.
  std::string source_dir;
  if (auto it = opts.source_dirs.find(res.source); it != opts.source_dirs.end())
    source_dir = it->second;
  else if (!opts.target.empty())
    source_dir = storage::fs::Join(opts.target, res.source);
  else
    return Status::Invalid("source '" + res.source + "' of snapshot " + sid +
                           " (which holds mailbox " + opts.mailbox +
                           ") has no live directory here");
  res.mailbox_dir = storage::fs::Join(source_dir, opts.mailbox);
  int src_fd = ::open(source_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int mb_fd = src_fd < 0 ? -1
                         : storage::fs::OpenBeneath(src_fd, opts.mailbox,
                                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  if (src_fd >= 0) ::close(src_fd);
  if (mb_fd < 0)
    return Status::NotFound(
        "the live mailbox is missing (" + std::string(strerror(err)) +
            "): --into-folder adds a folder to a mailbox that exists; to bring the whole mailbox "
            "back, restore it with --include " +
            res.source + "/" + opts.mailbox + " (or --user)",
        res.mailbox_dir);
  struct MbFd {
    int fd;
    ~MbFd() { ::close(fd); }
  } mb{mb_fd};
  struct stat mb_st;
  if (::fstat(mb_fd, &mb_st) != 0) return Status::IOError(strerror(errno), res.mailbox_dir);
  LiveMailbox live;
  MV_RETURN_IF_ERROR(ScanLive(mb_fd, res.mailbox_dir, &live));
  if (!live.dirs.count("cur") || !live.dirs.count("new") || !live.dirs.count("tmp"))
    return Status::Invalid(
        "the live mailbox has no cur/, new/ and tmp/: it is not a Maildir; "
        "check --mailbox and the target",
        res.mailbox_dir);

  // Where each snapshot folder goes: one folder into the new folder itself, several into
  // subfolders of it (INBOX into the folder itself).
  std::set<std::string> sel_folders;
  for (const auto& s : sel) sel_folders.insert(s.folder);
  bool single = sel_folders.size() <= 1 && (folders.size() <= 1);
  auto dest_of = [&](const std::string& folder) -> std::pair<std::string, std::string> {
    if (single || folder == "INBOX") return {opts.into, into_dir};
    return {opts.into + folder, into_dir + folder};  // folder is ".Sent": ".Into.Sent"
  };

  // Skip what the live mailbox has; a name twice in one destination is written once.
  std::vector<FileEntry> entries;
  std::map<std::string, size_t> folder_index;  // dest dir -> res.folders index
  std::set<std::pair<std::string, std::string>> dest_names;
  for (auto& s : sel) {
    std::string file = s.entry.path.substr(s.entry.path.rfind('/') + 1);
    std::string sub = s.entry.path.substr(s.entry.path.rfind('/') - 3, 3);  // cur or new
    if (PresentLive(live, s.entry, file, blobs.hasher())) {
      res.already_present++;
      continue;
    }
    auto [name, dir] = dest_of(s.folder);
    if (!dest_names.emplace(dir, std::string(mailfiles::UniqueName(file))).second) {
      res.already_present++;
      continue;
    }
    auto [it, fresh] = folder_index.try_emplace(dir, res.folders.size());
    if (fresh)
      res.folders.push_back({name, storage::fs::Join(res.mailbox_dir, dir), s.folder, 0, 0});
    else if (res.folders[it->second].from != s.folder)
      res.folders[it->second].from += ", " + s.folder;
    res.folders[it->second].messages++;
    res.folders[it->second].bytes += s.entry.size;
    FileEntry e = std::move(s.entry);
    e.path = "into/" + dir + "/" + sub + "/" + file;
    e.uid = mb_st.st_uid;
    e.gid = mb_st.st_gid;
    e.flags &= ~storage::kFlagHardLink;
    e.link_target.clear();
    if (opts.dry_run) res.would_write.push_back(name + "/" + sub + "/" + file);
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return res;  // nothing to add: the caller says so
  for (const auto& f : res.folders) {
    std::string d = f.dir.substr(res.mailbox_dir.size() + 1);
    if (live.dirs.count(d))
      return Status::Invalid(
          "folder '" + f.name + "' exists in the live mailbox and " +
              std::to_string(entries.size()) +
              " selected message(s) are not in the mailbox: a restore never writes into an "
              "existing folder; name a new one with --into-folder",
          f.dir);
  }
  if (opts.dry_run) return res;

  // Build the folders in the mailbox's tmp/ (same filesystem; Dovecot lists no folder there),
  // then rename each into place whole.
  const std::string stage_name = ".mailvault-into-" + storage::fs::RandomHex(8);
  const std::string stage = res.mailbox_dir + "/tmp/" + stage_name;
  int tmp_fd = ::openat(mb_fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tmp_fd < 0 || ::mkdirat(tmp_fd, stage_name.c_str(), 0700) != 0) {
    int e = errno;
    if (tmp_fd >= 0) ::close(tmp_fd);
    return Status::IOError("cannot make the staging directory: " + std::string(strerror(e)), stage);
  }
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (const auto& f : res.folders) {
    std::string d = f.dir.substr(res.mailbox_dir.size() + 1);
    for (const char* sub : {"", "/cur", "/new", "/tmp"}) {
      FileEntry e;
      e.path = "into/" + d + sub;
      e.type = FileType::kDirectory;
      e.mode = mb_st.st_mode & 07777;
      e.uid = mb_st.st_uid;
      e.gid = mb_st.st_gid;
      e.mtime_ns = now_ns;
      entries.push_back(std::move(e));
    }
  }
  FileEntry root;
  root.path = "into";
  root.type = FileType::kDirectory;
  root.mode = 0700;
  root.mtime_ns = now_ns;
  root.uid = mb_st.st_uid;
  root.gid = mb_st.st_gid;
  entries.push_back(std::move(root));
  SortInWalkOrder(&entries);
  storage::SnapshotMeta m;
  m.id = meta.id;
  m.sources.push_back({"into", stage});
  for (const auto& e : entries)
    if (e.type == FileType::kRegular) m.files++, m.bytes += e.size;
  RestoreOptions ro;
  ro.source_targets["into"] = stage;
  ro.threads = opts.threads;
  auto rr = RestoreEntries(blobs, std::move(entries), std::move(m), ro, progress);
  auto cleanup = [&] {
    (void)storage::fs::RemoveTree(stage);  // best effort: a leftover in tmp/ is harmless
    ::close(tmp_fd);
  };
  if (!rr.ok()) {
    cleanup();
    return rr.status();
  }
  res.restore = std::move(*rr);
  int stage_fd = ::openat(tmp_fd, stage_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  Status moved = Status::Ok();
  std::vector<std::string> made;
  for (auto& f : res.folders) {
    std::string d = f.dir.substr(res.mailbox_dir.size() + 1);
    int ffd = ::openat(stage_fd, d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    int mk = ffd < 0
                 ? -1
                 : ::openat(ffd, "maildirfolder", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (mk >= 0) {
      if (::geteuid() == 0) (void)::fchown(mk, mb_st.st_uid, mb_st.st_gid);
      ::fsync(mk);
      ::close(mk);
    }
    if (ffd >= 0) {
      ::fsync(ffd);
      ::close(ffd);
    }
    if (mk < 0 || ::renameat2(stage_fd, d.c_str(), mb_fd, d.c_str(), RENAME_NOREPLACE) != 0) {
      moved = Status::IOError(
          "cannot move the new folder into the mailbox: " + std::string(strerror(errno)) +
              (errno == EEXIST ? " (a folder of that name appeared meanwhile; "
                                 "run again with another --into-folder)"
                               : ""),
          f.dir);
      break;
    }
    made.push_back(f.name);
  }
  if (stage_fd >= 0) ::close(stage_fd);
  ::fsync(mb_fd);
  cleanup();
  if (!moved.ok()) {
    if (made.empty()) return moved;
    res.restore.problems.push_back({moved.message(), "not moved into the mailbox"});
  }
  res.folders.resize(made.size());
  Status sub = Subscribe(mb_fd, res.mailbox_dir, made, mb_st);
  res.subscribed = sub.ok();
  if (!sub.ok()) res.subscribe_problem = sub.ToString();
  return res;
}

}  // namespace mv::agent
