// storage/crypto/pack_name.h
#include "storage/crypto/pack_name.h"

#include <openssl/evp.h>

#include <cstring>

namespace mv::storage::crypto {

struct PackNameHash::State {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(md); }
};

PackNameHash::PackNameHash() : s_(std::make_unique<State>()) {
  EVP_DigestInit_ex(s_->md, EVP_sha256(), nullptr);
}
PackNameHash::~PackNameHash() = default;

void PackNameHash::Update(std::string_view bytes) {
  EVP_DigestUpdate(s_->md, bytes.data(), bytes.size());
}

BlobId PackNameHash::Final() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(s_->md, digest, &len);
  BlobId id;
  static_assert(sizeof(id.bytes) == 16);
  std::memcpy(id.bytes.data(), digest, 16);  // the first 128 bits of the SHA-256
  return id;
}

Status PackNameMismatch(const std::string& path) {
  return Status::Corruption(
      "pack content does not match its name (bit rot or tampering); run `mailvault check` to "
      "see what it affects",
      path);
}

namespace {

class NameCheckingReader final : public ObjectReader {
 public:
  NameCheckingReader(std::unique_ptr<ObjectReader> in, uint64_t size, const BlobId& name,
                     std::string path)
      : in_(std::move(in)), size_(size), name_(name), path_(std::move(path)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    MV_ASSIGN_OR_RETURN(size_t got, in_->Read(buf, n));
    if (done_) return got;
    hash_.Update(std::string_view(buf, got));
    read_ += got;
    if (read_ >= size_ || got == 0) {
      done_ = true;
      if (read_ != size_ || hash_.Final() != name_) return PackNameMismatch(path_);
    }
    return got;
  }

 private:
  std::unique_ptr<ObjectReader> in_;
  uint64_t size_;
  BlobId name_;
  std::string path_;
  PackNameHash hash_;
  uint64_t read_ = 0;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<ObjectReader> NewNameCheckingReader(std::unique_ptr<ObjectReader> in, uint64_t size,
                                                    const BlobId& name, std::string path) {
  return std::make_unique<NameCheckingReader>(std::move(in), size, name, std::move(path));
}

}  // namespace mv::storage::crypto
