// storage/crypto/encrypted_backend.h
#include "storage/crypto/encrypted_backend.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "storage/crypto/envelope.h"
#include "storage/crypto/pack_name.h"
#include "storage/fs.h"
#include "storage/layout.h"
#include "storage/lock.h"

namespace mv::storage::crypto {

bool StoredInClear(const std::string& rel) {
  auto under = [&](std::string_view dir) {
    return rel.size() > dir.size() && rel.compare(0, dir.size(), dir) == 0;
  };
  return rel == "config" || under("keys/") || under("locks/") || under("tmp/");
}

namespace {

constexpr uint64_t kMacBytes = 32;  // what a sealed object's plaintext carries after its body
constexpr uint64_t kSealedChunk = kAgeChunk + kAgeTag;

bool IsPack(const std::string& rel) { return rel.compare(0, 6, "packs/") == 0; }

// What a lock of an encrypted repository records as its host (docs/ENCRYPTION.md "Locks").
std::string HostLabel(const std::array<uint8_t, 32>& auth, const std::string& host) {
  std::string msg = "mailvault lock host";
  msg.push_back('\0');
  msg += host;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                         auth.data());
  static const char* hex = "0123456789abcdef";
  std::string out = "keyed-";
  for (int i = 0; i < 12; i++) {
    out.push_back(hex[mac[i] >> 4]);
    out.push_back(hex[mac[i] & 15]);
  }
  return out;
}

// The plaintext size of an age file of `file` bytes whose payload starts at `payload`.
uint64_t PlainSize(uint64_t file, uint64_t payload) {
  if (file < payload + kAgeTag) return 0;
  uint64_t body = file - payload;
  uint64_t chunks = (body + kSealedChunk - 1) / kSealedChunk;
  return body - chunks * kAgeTag;
}

// An object encrypted to another recipient is not this repository's: say so, not "wrong key".
Status NotOurs(const Status& st, const std::string& path) {
  if (st.code() != Code::kInvalidArgument) return st;
  return Status::Corruption(
      "not encrypted to this repository's recipient (copied from another repository, or "
      "damaged); run `mailvault check`",
      path);
}

struct PackHead {
  AgeHeader header;
  uint64_t file_size = 0;
};

class DecryptingReader : public ObjectReader {
 public:
  DecryptingReader(std::unique_ptr<ObjectReader> in, AgeIdentity id, uint64_t file_size,
                   std::string path)
      : in_(std::move(in)), id_(id), file_size_(file_size), path_(std::move(path)) {}

  Result<size_t> Read(char* buf, size_t n) override {
    if (pos_ == plain_.size()) {
      if (!started_) {
        MV_RETURN_IF_ERROR(Start());
      } else if (next_ >= chunks_) {
        return size_t{0};
      }
      MV_RETURN_IF_ERROR(NextChunk());
      if (pos_ == plain_.size()) return size_t{0};
    }
    size_t k = std::min(n, plain_.size() - pos_);
    std::copy_n(plain_.data() + pos_, k, buf);
    pos_ += k;
    return k;
  }

 private:
  Status Fill(std::string* out, uint64_t want) {
    while (out->size() < want) {
      size_t before = out->size();
      out->resize(want);
      MV_ASSIGN_OR_RETURN(size_t got, in_->Read(out->data() + before, want - before));
      out->resize(before + got);
      if (got == 0) break;
    }
    return Status::Ok();
  }
  Status Start() {
    started_ = true;
    uint64_t need = 256;
    for (;;) {
      MV_RETURN_IF_ERROR(Fill(&prefix_, std::min(need, file_size_)));
      auto h = AgeReadHeader(prefix_, id_, path_, &need);
      if (h.ok()) {
        header_ = *h;
        break;
      }
      if (h.status().code() != Code::kNotFound || need <= prefix_.size() || need > (1 << 20))
        return NotOurs(h.status(), path_);
    }
    if (file_size_ < header_.payload_offset + kAgeTag)
      return Status::Corruption("encrypted pack cut short after its header", path_);
    chunks_ = (file_size_ - header_.payload_offset + kSealedChunk - 1) / kSealedChunk;
    pending_ = prefix_.substr(header_.payload_offset);
    prefix_.clear();
    return Status::Ok();
  }
  Status NextChunk() {
    uint64_t left = file_size_ - AgeChunkOffset(header_, next_);
    uint64_t want = std::min(left, kSealedChunk);
    MV_RETURN_IF_ERROR(Fill(&pending_, want));
    if (pending_.size() < want)
      return Status::Corruption("encrypted pack is shorter than its listed size", path_);
    MV_ASSIGN_OR_RETURN(plain_,
                        AgeDecryptChunks(header_, file_size_, next_,
                                         std::string_view(pending_).substr(0, want), path_));
    pending_.erase(0, want);
    pos_ = 0;
    next_++;
    return Status::Ok();
  }

  std::unique_ptr<ObjectReader> in_;
  AgeIdentity id_;
  uint64_t file_size_;
  std::string path_;
  bool started_ = false;
  AgeHeader header_;
  std::string prefix_, pending_, plain_;
  size_t pos_ = 0;
  uint64_t next_ = 0, chunks_ = 0;
};

class EncryptedBackend : public Backend {
 public:
  EncryptedBackend(std::unique_ptr<Backend> inner, ObjectKeys keys, Env* env)
      : inner_(std::move(inner)), keys_(std::move(keys)), env_(env) {
    // One X25519 recipient makes a header of fixed length (every field has a fixed size), so an
    // empty file tells where the payload starts in every file this backend writes.
    auto empty = AgeEncrypt("", {keys_.recipient});
    payload_ = empty.ok() ? empty->size() - kAgeTag : 0;
  }

  std::string Describe(std::string_view rel) const override { return inner_->Describe(rel); }
  // Never a directory to read files from directly: everything goes through the decryption.
  const std::string& local_root() const override { return no_root_; }
  std::string ScratchDir() const override { return inner_->ScratchDir(); }
  Status Create() override { return inner_->Create(); }

  Result<std::vector<ObjectInfo>> List(const std::string& dir) const override {
    MV_ASSIGN_OR_RETURN(auto list, inner_->List(dir));
    for (auto& o : list) o.size = PlainSizeOf(o.name, o.size);
    return list;
  }
  Result<uint64_t> Size(const std::string& name) const override {
    MV_ASSIGN_OR_RETURN(uint64_t size, inner_->Size(name));
    return PlainSizeOf(name, size);
  }

  // A copy in a local cache below (storage/cached_backend.h) is not checked there: one that
  // does not authenticate here is evicted and the object read again from the repository.
  Result<std::string> Read(const std::string& name) const override {
    auto r = ReadOnce(name);
    if (r.ok() || r.status().code() != Code::kCorruption || StoredInClear(name)) return r;
    inner_->Evict(name);
    Forget(name);
    return ReadOnce(name);
  }
  Result<std::string> ReadAt(const std::string& name, uint64_t offset,
                             uint64_t length) const override {
    auto r = ReadAtOnce(name, offset, length);
    if (r.ok() || r.status().code() != Code::kCorruption || StoredInClear(name)) return r;
    inner_->Evict(name);
    Forget(name);
    return ReadAtOnce(name, offset, length);
  }

  Result<std::string> ReadOnce(const std::string& name) const {
    if (StoredInClear(name)) return inner_->Read(name);
    if (!keys_.identity) {
      if (auto plain = ReadPlain(name)) return std::move(*plain);
    }
    MV_RETURN_IF_ERROR(CanRead(name));
    MV_ASSIGN_OR_RETURN(std::string file, inner_->Read(name));
    std::string path = Describe(name);
    if (IsPack(name)) {
      MV_RETURN_IF_ERROR(CheckName(name, file, path));
      auto plain = AgeDecrypt(file, *keys_.identity, path);
      if (!plain.ok()) return NotOurs(plain.status(), path);
      return std::move(plain).value();
    }
    auto plain = OpenObject(file, name, keys_.repository, *keys_.identity, keys_.auth, path);
    if (!plain.ok()) return NotOurs(plain.status(), path);
    return std::move(plain).value();
  }

  Result<std::unique_ptr<ObjectReader>> OpenReader(const std::string& name) const override {
    if (StoredInClear(name)) return inner_->OpenReader(name);
    if (!IsPack(name) || !keys_.identity) {
      MV_ASSIGN_OR_RETURN(std::string data, Read(name));
      return std::unique_ptr<ObjectReader>(new StringReader(std::move(data)));
    }
    MV_RETURN_IF_ERROR(CanRead(name));
    MV_ASSIGN_OR_RETURN(uint64_t size, inner_->Size(name));
    if (size <= kMaxPlainPack) {  // small (tree) packs: whole, so a bad cached copy is re-read
      MV_ASSIGN_OR_RETURN(std::string data, Read(name));
      return std::unique_ptr<ObjectReader>(new StringReader(std::move(data)));
    }
    MV_ASSIGN_OR_RETURN(auto in, inner_->OpenReader(name));
    BlobId id;
    if (keys_.pack_names_hash_age_file && layout::ParsePackRelPath(name, &id))
      in = NewNameCheckingReader(std::move(in), size, id, Describe(name));
    return std::unique_ptr<ObjectReader>(
        new DecryptingReader(std::move(in), *keys_.identity, size, Describe(name)));
  }

  Result<std::string> ReadAtOnce(const std::string& name, uint64_t offset, uint64_t length) const {
    if (StoredInClear(name)) return inner_->ReadAt(name, offset, length);
    std::string path = Describe(name);
    if (!IsPack(name) || !keys_.identity) {
      MV_ASSIGN_OR_RETURN(std::string data, Read(name));
      if (offset + length > data.size())
        return Status::Corruption("object is shorter than the range read from it", path);
      return data.substr(offset, length);
    }
    MV_RETURN_IF_ERROR(CanRead(name));
    if (length == 0) return std::string();
    MV_ASSIGN_OR_RETURN(auto head, Head(name));
    const AgeHeader& h = head->header;
    if (offset + length > PlainSize(head->file_size, h.payload_offset))
      return Status::Corruption("pack is shorter than the range read from it", path);
    uint64_t first = offset / kAgeChunk, last = (offset + length - 1) / kAgeChunk;
    uint64_t start = AgeChunkOffset(h, first);
    uint64_t end = std::min(head->file_size, AgeChunkOffset(h, last + 1));
    MV_ASSIGN_OR_RETURN(std::string sealed, inner_->ReadAt(name, start, end - start));
    MV_ASSIGN_OR_RETURN(std::string plain,
                        AgeDecryptChunks(h, head->file_size, first, sealed, path));
    uint64_t skip = offset - first * kAgeChunk;
    if (skip + length > plain.size())
      return Status::Corruption("pack is shorter than the range read from it", path);
    return plain.substr(skip, length);
  }

  Status Put(const std::string& name, std::string_view data) override {
    Forget(name);
    if (StoredInClear(name)) return inner_->Put(name, data);
    MV_ASSIGN_OR_RETURN(std::string sealed, Seal(name, data));
    MV_RETURN_IF_ERROR(inner_->Put(name, sealed));
    KeepPlain(name, data);
    return Status::Ok();
  }
  Status Overwrite(const std::string& name, std::string_view data) override {
    Forget(name);
    if (StoredInClear(name)) return inner_->Overwrite(name, data);
    MV_ASSIGN_OR_RETURN(std::string sealed, Seal(name, data));
    return inner_->Overwrite(name, sealed);
  }

  Status PutFile(const std::string& local_path, const std::string& name) override {
    Forget(name);
    if (StoredInClear(name)) return inner_->PutFile(local_path, name);
    if (!IsPack(name)) {
      MV_ASSIGN_OR_RETURN(std::string data, fs::ReadFile(local_path));
      MV_RETURN_IF_ERROR(Put(name, data));
      return fs::RemoveFile(local_path, env_);
    }
    if (keys_.pack_names_hash_age_file)  // the name is known only once it is encrypted
      return Status::Invalid(
          "a finished plaintext pack cannot be stored under a name of this version-9 repository "
          "(a pack is written through NewPackSink)",
          Describe(name));
    // The pack is encrypted into a sibling temp file, which then takes its place.
    std::string enc_path = local_path + ".age";
    std::string plain;  // a small (tree) pack a write-only agent keeps for its next backup
    struct stat st_plain;
    if (!keys_.identity && !keys_.plain_cache.empty() &&
        ::stat(local_path.c_str(), &st_plain) == 0 &&
        static_cast<uint64_t>(st_plain.st_size) <= kMaxPlainPack) {
      auto data = fs::ReadFile(local_path);
      if (data.ok()) plain = std::move(data).value();
    }
    Status st = EncryptFile(local_path, enc_path);
    if (st.ok()) st = fs::RemoveFile(local_path, env_);
    if (st.ok()) st = inner_->PutFile(enc_path, name);
    if (!st.ok()) (void)::unlink(enc_path.c_str());
    if (st.ok() && !plain.empty()) KeepPlain(name, plain);
    return st;
  }

  Result<std::unique_ptr<PackSink>> NewPackSink(const std::string& tmp_path, Env* env) override {
    MV_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp_path, 0600));
    auto sink = std::make_unique<EncryptingPackSink>(this, std::move(file), env);
    MV_RETURN_IF_ERROR(sink->Start());
    return std::unique_ptr<PackSink>(std::move(sink));
  }

  Status SyncDir(const std::string& dir) override { return inner_->SyncDir(dir); }
  Status Delete(const std::string& name) override {
    Forget(name);
    if (!keys_.plain_cache.empty()) (void)::unlink(fs::Join(keys_.plain_cache, name).c_str());
    return inner_->Delete(name);
  }
  // The lock records HMAC-SHA-256(A, "lock host" ‖ host name) instead of the host name: this
  // host still recognises its own stale lock, whoever holds the bucket learns no name.
  Result<std::unique_ptr<HeldLock>> LockExclusive(const std::string& purpose, const LockWait& wait,
                                                  std::string* took_over_stale) override {
    LockWait w = wait;
    if (w.host.empty()) w.host = HostLabel(keys_.auth, LockHostName());
    return inner_->LockExclusive(purpose, w, took_over_stale);
  }
  BackendStats stats() const override { return inner_->stats(); }
  void Evict(const std::string& name) const override {
    Forget(name);
    inner_->Evict(name);
  }
  void KeepReadPacks(uint64_t bytes) override { inner_->KeepReadPacks(bytes); }

 private:
  // A new pack, encrypted into the age file at the temp path as its bytes come (one write), and
  // named by what the repository's version names packs by.
  class EncryptingPackSink final : public PackSink {
   public:
    EncryptingPackSink(EncryptedBackend* b, std::unique_ptr<WritableFile> file, Env* env)
        : b_(b), path_(file->path()), file_(std::move(file)), env_(env) {}
    ~EncryptingPackSink() override {
      if (path_.empty()) return;
      enc_.reset();
      file_.reset();
      (void)env_->RemoveFile(path_);
    }
    Status Start() {
      MV_ASSIGN_OR_RETURN(enc_,
                          AgeEncryptor::Create({b_->keys_.recipient}, [this](std::string_view c) {
                            if (b_->keys_.pack_names_hash_age_file) stored_.Update(c);
                            return file_->Append(c);
                          }));
      keep_plain_ = !b_->keys_.identity && !b_->keys_.plain_cache.empty();
      return Status::Ok();
    }
    Status Append(std::string_view bytes) override {
      if (!b_->keys_.pack_names_hash_age_file) plain_hash_.Update(bytes.data(), bytes.size());
      if (keep_plain_) {  // a small (tree) pack a write-only agent keeps for its next backup
        if (plain_.size() + bytes.size() <= kMaxPlainPack) {
          plain_.append(bytes);
        } else {
          keep_plain_ = false;
          std::string().swap(plain_);
        }
      }
      return enc_->Write(bytes);
    }
    Result<BlobId> Close() override {
      MV_RETURN_IF_ERROR(enc_->Finish());
      MV_RETURN_IF_ERROR(file_->Sync());
      MV_RETURN_IF_ERROR(file_->Close());
      return b_->keys_.pack_names_hash_age_file ? stored_.Final() : plain_hash_.Final();
    }
    Status Commit(Backend&, const std::string& name) override {
      b_->Forget(name);
      MV_RETURN_IF_ERROR(b_->inner_->PutFile(path_, name));
      path_.clear();
      if (keep_plain_) b_->KeepPlain(name, plain_);
      return Status::Ok();
    }

   private:
    EncryptedBackend* b_;
    std::string path_;  // empty once committed
    std::unique_ptr<WritableFile> file_;
    Env* env_;
    std::unique_ptr<AgeEncryptor> enc_;
    PackNameHash stored_;
    PlainHashStream plain_hash_;
    bool keep_plain_ = false;
    std::string plain_;
  };

  class StringReader : public ObjectReader {
   public:
    explicit StringReader(std::string data) : data_(std::move(data)) {}
    Result<size_t> Read(char* buf, size_t n) override {
      size_t k = std::min(n, data_.size() - pos_);
      std::copy_n(data_.data() + pos_, k, buf);
      pos_ += k;
      return k;
    }

   private:
    std::string data_;
    size_t pos_ = 0;
  };

  // Version 9: a pack read whole must hash to its name.
  Status CheckName(const std::string& name, std::string_view file, const std::string& path) const {
    BlobId id;
    if (!keys_.pack_names_hash_age_file || !layout::ParsePackRelPath(name, &id))
      return Status::Ok();
    PackNameHash h;
    h.Update(file);
    return h.Final() == id ? Status::Ok() : PackNameMismatch(path);
  }

  uint64_t PlainSizeOf(const std::string& name, uint64_t size) const {
    if (StoredInClear(name)) return size;
    uint64_t plain = PlainSize(size, payload_);
    if (IsPack(name)) return plain;
    return plain >= kMacBytes ? plain - kMacBytes : 0;
  }

  Status CanRead(const std::string& name) const {
    if (keys_.identity) return Status::Ok();
    return Status::AccessDenied(
        "reading the repository's data needs its identity or a passphrase (--identity-file or "
        "--password-file): the key given can only write",
        Describe(name));
  }

  // The write-only cache (ObjectKeys::plain_cache): index files, manifests, small packs.
  static constexpr uint64_t kMaxPlainPack = 8u << 20;
  void KeepPlain(const std::string& name, std::string_view data) const {
    if (keys_.identity || keys_.plain_cache.empty()) return;
    if (!IsPack(name) && name.compare(0, 6, "index/") != 0 &&
        name.compare(0, 10, "snapshots/") != 0)
      return;
    // Best effort: a cache that cannot be written costs uploads, never a wrong snapshot.
    std::string path = fs::Join(keys_.plain_cache, name);
    if (!fs::MakeDirs(fs::Dirname(path), 0700, env_).ok()) return;
    std::string tmp = path + ".tmp-" + fs::RandomHex(8);
    auto file = env_->NewWritableFile(tmp, 0600);
    if (!file.ok()) return;
    Status st = (*file)->Append(data);
    Status closed = (*file)->Close();
    if (st.ok() && closed.ok() && env_->Rename(tmp, path).ok()) return;
    (void)env_->RemoveFile(tmp);
  }
  // The kept plaintext of `name` while the repository still has it (a prune elsewhere may have
  // removed it: then the copy goes too).
  std::optional<std::string> ReadPlain(const std::string& name) const {
    if (keys_.plain_cache.empty()) return std::nullopt;
    std::string path = fs::Join(keys_.plain_cache, name);
    if (!fs::Exists(path)) return std::nullopt;
    auto there = inner_->Size(name);
    if (!there.ok()) {
      if (there.status().code() == Code::kNotFound) (void)::unlink(path.c_str());
      return std::nullopt;
    }
    auto data = fs::ReadFile(path);
    if (!data.ok()) return std::nullopt;
    return std::move(data).value();
  }

  Result<std::string> Seal(const std::string& name, std::string_view data) const {
    if (IsPack(name)) return AgeEncrypt(data, {keys_.recipient});
    return SealObject(data, name, keys_.repository, keys_.recipient, keys_.auth);
  }

  Status EncryptFile(const std::string& from, const std::string& to) {
    int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "open pack to encrypt", from);
    auto in = NewFdReader(fd, from);
    MV_ASSIGN_OR_RETURN(auto out, env_->NewWritableFile(to));
    MV_ASSIGN_OR_RETURN(auto enc, AgeEncryptor::Create({keys_.recipient}, [&](std::string_view b) {
                          return out->Append(b);
                        }));
    std::string buf(1 << 20, '\0');
    for (;;) {
      MV_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
      if (n == 0) break;
      MV_RETURN_IF_ERROR(enc->Write(std::string_view(buf.data(), n)));
    }
    MV_RETURN_IF_ERROR(enc->Finish());
    MV_RETURN_IF_ERROR(out->Sync());
    return out->Close();
  }

  // The header of a pack and its size, read once per pack and kept for the run (a restore
  // reads several ranges of one pack).
  Result<std::shared_ptr<const PackHead>> Head(const std::string& name) const {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = heads_.find(name);
      if (it != heads_.end()) return it->second;
    }
    std::string path = Describe(name);
    MV_ASSIGN_OR_RETURN(uint64_t size, inner_->Size(name));
    uint64_t need = std::max<uint64_t>(payload_, 64);
    auto head = std::make_shared<PackHead>();
    head->file_size = size;
    for (;;) {
      MV_ASSIGN_OR_RETURN(std::string prefix, inner_->ReadAt(name, 0, std::min(need, size)));
      auto h = AgeReadHeader(prefix, *keys_.identity, path, &need);
      if (h.ok()) {
        head->header = *h;
        break;
      }
      if (h.status().code() != Code::kNotFound || need <= prefix.size() || need > (1 << 20))
        return NotOurs(h.status(), path);
    }
    std::lock_guard<std::mutex> g(mu_);
    if (heads_.size() >= 1024) heads_.clear();
    heads_[name] = head;
    return std::shared_ptr<const PackHead>(head);
  }
  void Forget(const std::string& name) const {
    std::lock_guard<std::mutex> g(mu_);
    heads_.erase(name);
  }

  std::unique_ptr<Backend> inner_;
  ObjectKeys keys_;
  Env* env_;
  uint64_t payload_ = 0;
  std::string no_root_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const PackHead>> heads_;
};

}  // namespace

std::unique_ptr<Backend> NewEncryptedBackend(std::unique_ptr<Backend> inner, ObjectKeys keys,
                                             Env* env) {
  return std::make_unique<EncryptedBackend>(std::move(inner), std::move(keys), env);
}

}  // namespace mv::storage::crypto
