// The repository (docs/FORMAT.md §1 layout, §8 write ordering). Opening checks the format
// version; reading never needs a lock; a backup holds the exclusive lock (storage/lock.h).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/backend.h"
#include "storage/blob_reader.h"
#include "storage/chunker.h"
#include "storage/entry_table.h"
#include "storage/env.h"
#include "storage/hash.h"
#include "storage/index.h"
#include "storage/pack.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

// The newest version this build reads and writes (docs/FORMAT.md): 7 is an encrypted repository
// (docs/ENCRYPTION.md), 8 one that may hold header records (§15), encrypted or not (its config's
// "encryption" entry says), 9 one whose encrypted packs are named by the hash of their age file
// (§14.2; a plain version-9 repository is a version-8 one). It reads every version from
// kOldestFormatVersion up to it; `init` writes it.
constexpr int kFormatVersion = 9;
constexpr int kOldestFormatVersion = 1;

// A repository file that could not be read (a damaged manifest or index file). It affects only
// what it describes; the rest of the repository is usable without it.
struct DamagedFile {
  std::string path;
  std::string reason;
};

// What AdoptOrphanPacks() did: packs it indexed, and files under packs/ that are not packs.
struct AdoptResult {
  size_t adopted = 0;
  std::vector<DamagedFile> rejected;  // left in place (never adopted); `check` reports them
};

// What RebuildIndex() found and wrote (`mailvault repair index`).
struct IndexRebuild {
  size_t packs = 0, blobs = 0;         // readable packs now indexed
  std::vector<DamagedFile> bad_packs;  // pack files that failed their hash or do not list
  std::vector<std::string> kept;       // missing or damaged packs whose old entries were kept
  std::vector<std::string> written;    // new index files
  std::vector<std::string> removed;    // old index files (removed after the new ones are durable)
};

// What the config file says (docs/FORMAT.md §1).
struct RepoConfig {
  std::string id;
  ChunkerParams chunker;
  std::string key_id;  // empty in version-1 repositories
  int version = 0;
  // Version 7 (docs/ENCRYPTION.md): "age-x25519" when the repository is encrypted, else empty;
  // then `recipient` is its age recipient (age1…) and `key_mode` "passphrase" or "recipient".
  std::string encryption;
  std::string recipient;
  std::string key_mode;
};
// Reads and parses `config` from `backend`; a missing one is kNotFound saying how to make one.
Result<RepoConfig> ReadRepoConfig(const Backend& backend);

// What Init writes for an encrypted repository (made by storage/crypto/repo_keys.h): the new
// repository's id (which its sealed objects are bound to), its content secret, the config's
// encryption fields, and the key files to write before config.
struct RepoEncryption {
  std::string id;
  std::string content_secret;
  std::string recipient;
  std::string key_mode;
  std::vector<std::pair<std::string, std::string>> key_files;  // name, bytes
};
// Parse the text of `config` and of `keys/default` (§1, §3); `path` is only for messages. Every
// malformed text is a Corruption or Unsupported status, never an exception.
Result<RepoConfig> ParseRepoConfig(std::string_view text, const std::string& path);
Result<std::string> ParseRepoKey(std::string_view text, const std::string& path);  // the secret
// The key fingerprint of §3 (config's key_id): names a content key without revealing it.
std::string KeyId(const KeyedHasher& h);

class Repository {
 public:
  // Creates an empty repository at `path` (which must not exist or be an empty directory).
  static Status Init(const std::string& path, Env* env = Env::Default());
  // The same in any backend (an S3 prefix that holds nothing yet). With `key_from`, the new
  // repository gets that repository's content key and chunker parameters (§3, §4), so the same
  // files have the same blob IDs in both and `mailvault copy` sends packs as they are; its own
  // ID is still new.
  static Status Init(Backend& backend, Env* env = Env::Default(),
                     const Repository* key_from = nullptr, const RepoEncryption* enc = nullptr);
  // Opens and loads the config and key; the index is loaded by what needs it (OpenBlobReader,
  // AdoptOrphanPacks, RebuildIndex). Every write to the repository (packs, index, manifests,
  // locks, tmp/) goes through `env`, which must outlive the Repository; reads do not.
  static Result<std::unique_ptr<Repository>> Open(const std::string& path,
                                                  Env* env = Env::Default());
  // The same over any backend (storage/backend.h), which the repository then owns. Local temp
  // files (packs being written) are written through `env`.
  // An encrypted repository (config "encryption") opens only with `content_secret`, from its
  // keys/secrets (storage/crypto/repo_keys.h), and `backend` decrypting what it reads; without,
  // Open fails with kAccessDenied.
  static Result<std::unique_ptr<Repository>> Open(std::unique_ptr<Backend> backend,
                                                  Env* env = Env::Default(),
                                                  const std::string* content_secret = nullptr);

  // What messages name: the directory, or the s3: URL.
  const std::string& path() const { return path_; }
  // Where the files are: every read and write of a repository file goes through it.
  Backend& backend() const { return *backend_; }
  // The exclusive lock (docs/FORMAT.md §9), held until the returned object is destroyed.
  Result<std::unique_ptr<HeldLock>> LockExclusive(const std::string& purpose,
                                                  const LockWait& wait = {},
                                                  std::string* took_over_stale = nullptr) const;
  // Reads pack `pack` (storage/pack.h ReadPack) from the backend; a pack that is not there is
  // kNotFound.
  Status ReadPackFile(const BlobId& pack, const PackReadOptions& opts, const PackWantFn& want,
                      const PackBlobFn& on_blob) const;
  // Lists pack `pack` (storage/pack.h ListPack), checking its hash.
  Result<PackInfo> ListPackFile(const BlobId& pack) const;
  Env* env() const { return env_; }
  const std::string& id() const { return id_; }
  // Whether the repository is encrypted (format version 7).
  bool encrypted() const { return encrypted_; }
  // Whether a pack's name is the hash of its age file (encrypted, version 9: §14.2), checked by
  // the backend when it reads a pack whole, rather than the XXH3 of its plaintext.
  bool pack_names_hash_age_file() const { return pack_names_hash_age_file_; }
  const KeyedHasher& hasher() const { return hasher_; }
  const Chunker& chunker() const { return chunker_; }

  // Index: the union of index/*, loaded by the first call that needs it. Rebuild-free: packs not
  // named by any index file (left by an interrupted backup) are adopted by AdoptOrphanPacks(). A
  // damaged index file is skipped and listed in damaged_index_files() (§6: derived data); its
  // packs become orphans, which are then listed (read-only, in memory) so that reads still find
  // every blob.
  //
  // Loads the index and returns a reader over it. The reader refers to this
  // repository, which must outlive it; packs a later WriteIndex or AdoptOrphanPacks indexes are
  // visible to it.
  Result<std::unique_ptr<BlobReader>> OpenBlobReader();
  // The same for a const repository (the index is loaded under a lock; no file changes).
  Result<std::unique_ptr<BlobReader>> OpenBlobReader() const;
  // Filled when the index is loaded (empty before).
  const std::vector<DamagedFile>& damaged_index_files() const { return damaged_index_; }
  // Index files and packs the key this repository was opened with may not read (kAccessDenied:
  // a write-only agent key, docs/ENCRYPTION.md, meeting objects written with the identity). They
  // are left out of the index, not reported as damage: what they hold is stored again when needed.
  size_t locked_objects() const { return locked_objects_; }
  Result<std::vector<BlobId>> ListPackFiles() const;
  // Lists orphan packs, checks each (its name is the hash of its bytes, §5) and writes one index
  // file adopting the good ones; a file that is not a pack is listed in `rejected`, never adopted.
  // Requires the exclusive lock.
  Result<AdoptResult> AdoptOrphanPacks();
  // Re-lists every pack (checking its hash) and replaces all index files by fresh ones: the new
  // files are durable before any old one is removed. With dry_run nothing is written. Requires the
  // exclusive lock.
  Result<IndexRebuild> RebuildIndex(bool dry_run);
  // Writes one index file naming `packs` (after their pack files are durable). §8 step 2.
  Status WriteIndex(const std::vector<PackInfo>& packs);
  // Writes one index file naming the packs of `parts` (durable packs, §8) without adding them to
  // the in-memory index, so a backup does not hold its new blobs' entries twice. Nothing when
  // every part is empty. Callers that read afterwards call DropIndex() first.
  Status WriteIndexFile(std::initializer_list<const std::vector<PackInfo>*> parts) const;
  // Forgets the in-memory index (and what loading it found), freeing it; the next
  // OpenBlobReader() reads the index files again, including those written since. No BlobReader
  // of this repository may be alive.
  void DropIndex();

  std::string PackPath(const BlobId& pack) const;
  std::string TmpDir() const;
  std::string PacksDir() const;
  // Removes temp files left by interrupted runs. Requires the exclusive lock.
  void CleanTmp() const;

  // Snapshots. Lists the readable ones, sorted by time, oldest first. A manifest whose header
  // cannot be read is left out and, when `damaged` is given, appended there (path, reason).
  Result<std::vector<SnapshotMeta>> ListSnapshots(
      std::vector<DamagedFile>* damaged = nullptr) const;
  // "latest" (the newest readable snapshot), a full ID, or a unique prefix (at least 4 hex
  // digits); an ID or prefix may name a damaged manifest, which LoadSnapshot then reports.
  Result<std::string> ResolveSnapshot(const std::string& ref) const;
  // A damaged manifest fails with kCorruption naming its file and `mailvault check`.
  Result<Snapshot> LoadSnapshot(const std::string& id) const;
  // The root tree record of a version-3 snapshot (§7.5); zero for a flat (version 1-2) one.
  // Reads the manifest only, not its trees.
  Result<BlobId> SnapshotRoot(const std::string& id) const;
  // The same entries in compact form, for change detection (storage/entry_table.h).
  Result<EntryTable> LoadEntryTable(const std::string& id) const;
  // The commit point (§8 step 3): writes snapshots/<id> atomically. Assigns meta.id if empty.
  Status CommitSnapshot(Snapshot& snap);

  // The BlobReader OpenBlobReader returns (repository.cpp); it reads index_ and the hasher.
  friend class IndexedBlobReader;

 private:
  Repository() = default;
  Status LoadIndex();                // idempotent
  Status LoadIndexForTrees() const;  // LoadIndex for a const reader of a version-3 snapshot
  mutable std::mutex index_mu_;
  std::unique_ptr<Backend> backend_;
  std::string path_;
  Env* env_ = Env::Default();
  std::string id_;
  bool encrypted_ = false;
  bool pack_names_hash_age_file_ = false;
  KeyedHasher hasher_{std::string(kSecretSize, '\0')};
  Chunker chunker_{""};
  Index index_;
  bool index_loaded_ = false;
  std::vector<DamagedFile> damaged_index_;
  size_t locked_objects_ = 0;
  // Packs no readable index file names: listed (and added to index_) once, adopted by a backup.
  Status ListOrphanPacks();
  bool orphans_listed_ = false;
  std::vector<PackInfo> orphans_;
  std::vector<DamagedFile> orphan_rejects_;
};

}  // namespace mv::storage
