// age v1 (https://c2sp.org/age), X25519 recipients only.
#include "storage/crypto/age.h"

#include "storage/crypto/base64.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace mv::storage::crypto {
namespace {

constexpr std::string_view kVersionLine = "age-encryption.org/v1\n";
constexpr std::string_view kX25519Info = "age-encryption.org/v1/X25519";
constexpr size_t kFileKey = 16;
constexpr size_t kNonce = 16;

bool InitSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869) with one output block, which is all age needs.
std::array<uint8_t, 32> Hmac(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
  std::array<uint8_t, 32> out;
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}
std::string_view View(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}
std::array<uint8_t, 32> Hkdf(std::string_view ikm, std::string_view salt, std::string_view info) {
  static const char kZeros[32] = {};
  std::array<uint8_t, 32> prk = Hmac(salt.empty() ? std::string_view(kZeros, 32) : salt, ikm);
  std::string t(info);
  t.push_back('\x01');
  std::array<uint8_t, 32> okm = Hmac(View(prk.data(), prk.size()), t);
  sodium_memzero(prk.data(), prk.size());
  return okm;
}

// ChaCha20-Poly1305 (IETF, RFC 8439) with a 12-byte nonce, through OpenSSL's EVP interface:
// the same construction as libsodium's, about 1.7x as fast here (AVX2), which is most of what
// encrypting a pack costs (bench/README.md "Encryption"). One context per thread, reused.
EVP_CIPHER_CTX* AeadContext() {
  struct Ctx {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    ~Ctx() { EVP_CIPHER_CTX_free(c); }
  };
  thread_local Ctx ctx;
  return ctx.c;
}
// Seals `m` into `out` (m.size() + kAgeTag bytes); false only if OpenSSL fails.
bool SealInto(const std::array<uint8_t, 32>& key, const uint8_t nonce[12], std::string_view m,
              char* out) {
  EVP_CIPHER_CTX* c = AeadContext();
  int len = 0, fin = 0;
  auto* o = reinterpret_cast<unsigned char*>(out);
  return c && EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), nullptr, key.data(), nonce) == 1 &&
         EVP_EncryptUpdate(c, o, &len, reinterpret_cast<const unsigned char*>(m.data()),
                           static_cast<int>(m.size())) == 1 &&
         EVP_EncryptFinal_ex(c, o + len, &fin) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAgeTag), o + m.size()) ==
             1;
}
// Opens `c` (ciphertext and tag) into `out` (c.size() - kAgeTag bytes): false when it does not
// authenticate.
bool OpenInto(const std::array<uint8_t, 32>& key, const uint8_t nonce[12], std::string_view c,
              char* out) {
  if (c.size() < kAgeTag) return false;
  EVP_CIPHER_CTX* x = AeadContext();
  size_t n = c.size() - kAgeTag;
  int len = 0, fin = 0;
  auto* o = reinterpret_cast<unsigned char*>(out);
  unsigned char tag[kAgeTag];
  std::memcpy(tag, c.data() + n, kAgeTag);
  return x && EVP_DecryptInit_ex(x, EVP_chacha20_poly1305(), nullptr, key.data(), nonce) == 1 &&
         EVP_DecryptUpdate(x, o, &len, reinterpret_cast<const unsigned char*>(c.data()),
                           static_cast<int>(n)) == 1 &&
         EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAgeTag), tag) == 1 &&
         EVP_DecryptFinal_ex(x, o + len, &fin) == 1;
}
std::string Seal(const std::array<uint8_t, 32>& key, const uint8_t nonce[12], std::string_view m) {
  std::string c(m.size() + kAgeTag, '\0');
  if (!SealInto(key, nonce, m, c.data())) c.clear();
  return c;
}
bool Open(const std::array<uint8_t, 32>& key, const uint8_t nonce[12], std::string_view c,
          std::string* m) {
  if (c.size() < kAgeTag) return false;
  m->resize(c.size() - kAgeTag);
  return OpenInto(key, nonce, c, m->data());
}
void ChunkNonce(uint64_t counter, bool last, uint8_t nonce[12]) {
  std::memset(nonce, 0, 12);
  for (int i = 0; i < 8; i++) nonce[10 - i] = static_cast<uint8_t>(counter >> (8 * i));
  nonce[11] = last ? 1 : 0;
}

// Bech32 (BIP 173), without its 90-character limit, as age uses it.
constexpr char kCharset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
uint32_t Polymod(const std::vector<uint8_t>& v) {
  static const uint32_t kGen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
  uint32_t chk = 1;
  for (uint8_t x : v) {
    uint32_t top = chk >> 25;
    chk = (chk & 0x1ffffff) << 5 ^ x;
    for (int i = 0; i < 5; i++)
      if ((top >> i) & 1) chk ^= kGen[i];
  }
  return chk;
}
std::vector<uint8_t> HrpExpand(std::string_view hrp) {
  std::vector<uint8_t> v;
  for (char c : hrp) v.push_back(static_cast<uint8_t>(c) >> 5);
  v.push_back(0);
  for (char c : hrp) v.push_back(static_cast<uint8_t>(c) & 31);
  return v;
}
std::string Bech32Encode(std::string_view hrp, const uint8_t* data, size_t n) {
  std::vector<uint8_t> five;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | data[i];
    bits += 8;
    while (bits >= 5) five.push_back((acc >> (bits -= 5)) & 31);
  }
  if (bits > 0) five.push_back((acc << (5 - bits)) & 31);
  std::vector<uint8_t> v = HrpExpand(hrp);
  v.insert(v.end(), five.begin(), five.end());
  v.insert(v.end(), 6, 0);
  uint32_t mod = Polymod(v) ^ 1;
  std::string out(hrp);
  out.push_back('1');
  for (uint8_t x : five) out.push_back(kCharset[x]);
  for (int i = 0; i < 6; i++) out.push_back(kCharset[(mod >> (5 * (5 - i))) & 31]);
  return out;
}
// The 32 bytes of `text` with human-readable part `hrp` (lower case); false when it is not one.
bool Bech32Decode32(std::string_view text, std::string_view hrp, std::array<uint8_t, 32>* out) {
  bool lower = false, upper = false;
  std::string s;
  for (char c : text) {
    if (c >= 'a' && c <= 'z') lower = true;
    if (c >= 'A' && c <= 'Z') upper = true;
    s.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  }
  if (lower && upper) return false;
  size_t sep = s.rfind('1');
  if (sep == std::string::npos || s.substr(0, sep) != hrp || s.size() < sep + 7) return false;
  std::vector<uint8_t> five;
  for (size_t i = sep + 1; i < s.size(); i++) {
    const char* p = std::strchr(kCharset, s[i]);
    if (!p || !*p) return false;
    five.push_back(static_cast<uint8_t>(p - kCharset));
  }
  std::vector<uint8_t> v = HrpExpand(hrp);
  v.insert(v.end(), five.begin(), five.end());
  if (Polymod(v) != 1) return false;
  five.resize(five.size() - 6);
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t x : five) {
    acc = acc << 5 | x;
    bits += 5;
    if (bits >= 8) bytes.push_back(static_cast<uint8_t>(acc >> (bits -= 8)));
  }
  if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0 || bytes.size() != 32) return false;
  std::copy(bytes.begin(), bytes.end(), out->begin());
  return true;
}

// One X25519 stanza for `r`, wrapping `file_key`.
Result<std::string> X25519Stanza(const AgeRecipient& r, const uint8_t file_key[kFileKey]) {
  uint8_t eph[32], share[32], shared[32];
  randombytes_buf(eph, sizeof eph);
  crypto_scalarmult_base(share, eph);
  if (crypto_scalarmult(shared, eph, r.pub.data()) != 0) {
    sodium_memzero(eph, sizeof eph);
    return Status::Invalid("recipient " + FormatRecipient(r) +
                           " is not a usable X25519 public key (a low-order point)");
  }
  std::string salt = std::string(View(share, 32)) + std::string(View(r.pub.data(), 32));
  std::array<uint8_t, 32> key = Hkdf(View(shared, 32), salt, kX25519Info);
  static const uint8_t kZeroNonce[12] = {};
  std::string body = Seal(key, kZeroNonce, View(file_key, kFileKey));
  sodium_memzero(eph, sizeof eph);
  sodium_memzero(shared, sizeof shared);
  sodium_memzero(key.data(), key.size());
  // A 32-byte body is 43 characters: one line, shorter than 64.
  return "-> X25519 " + Base64(View(share, 32), false) + "\n" + Base64(body, false) + "\n";
}

Status Bad(const std::string& what, const std::string& path) {
  return Status::Corruption("not a valid age file: " + what, path);
}

}  // namespace

AgeIdentity GenerateAgeIdentity() {
  InitSodium();
  AgeIdentity id;
  randombytes_buf(id.secret.data(), id.secret.size());
  return id;
}

AgeRecipient RecipientOf(const AgeIdentity& id) {
  InitSodium();
  AgeRecipient r;
  crypto_scalarmult_base(r.pub.data(), id.secret.data());
  return r;
}

std::string FormatIdentity(const AgeIdentity& id) {
  std::string s = Bech32Encode("age-secret-key-", id.secret.data(), id.secret.size());
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

std::string FormatRecipient(const AgeRecipient& r) {
  return Bech32Encode("age", r.pub.data(), r.pub.size());
}

Result<AgeIdentity> ParseIdentity(std::string_view text, const std::string& what) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    AgeIdentity id;
    if (!Bech32Decode32(line, "age-secret-key-", &id.secret))
      return Status::Invalid(
          "not an age identity (expected a line AGE-SECRET-KEY-1…, as age-keygen writes; the "
          "line is not shown)",
          what);
    return id;
  }
  return Status::Invalid("holds no age identity (expected a line AGE-SECRET-KEY-1…)", what);
}

Result<AgeRecipient> ParseRecipient(std::string_view text) {
  AgeRecipient r;
  if (!Bech32Decode32(text, "age", &r.pub))
    return Status::Invalid("'" + std::string(text) +
                           "' is not an age X25519 recipient (age1…, as age-keygen prints)");
  return r;
}

Result<std::unique_ptr<AgeEncryptor>> AgeEncryptor::Create(
    const std::vector<AgeRecipient>& recipients, Sink out) {
  if (!InitSodium()) return Status::IOError("libsodium did not initialise");
  if (recipients.empty()) return Status::Invalid("no recipient to encrypt to");
  std::unique_ptr<AgeEncryptor> e(new AgeEncryptor());
  e->out_ = std::move(out);
  uint8_t file_key[kFileKey];
  randombytes_buf(file_key, sizeof file_key);
  std::string header(kVersionLine);
  for (const auto& r : recipients) {
    auto stanza = X25519Stanza(r, file_key);
    if (!stanza.ok()) {
      sodium_memzero(file_key, sizeof file_key);
      return stanza.status();
    }
    header += *stanza;
  }
  header += "---";
  std::array<uint8_t, 32> mac_key = Hkdf(View(file_key, kFileKey), "", "header");
  std::array<uint8_t, 32> mac = Hmac(View(mac_key.data(), 32), header);
  header += " " + Base64(View(mac.data(), 32), false) + "\n";
  uint8_t nonce[kNonce];
  randombytes_buf(nonce, sizeof nonce);
  e->payload_key_ = Hkdf(View(file_key, kFileKey), View(nonce, kNonce), "payload");
  sodium_memzero(file_key, sizeof file_key);
  sodium_memzero(mac_key.data(), mac_key.size());
  header.append(View(nonce, kNonce));
  MV_RETURN_IF_ERROR(e->out_(header));
  return e;
}

AgeEncryptor::~AgeEncryptor() { sodium_memzero(payload_key_.data(), payload_key_.size()); }

Status AgeEncryptor::SealChunk(std::string_view m, bool last) {
  uint8_t nonce[12];
  ChunkNonce(counter_++, last, nonce);
  sealed_.resize(m.size() + kAgeTag);
  if (!SealInto(payload_key_, nonce, m, sealed_.data()))
    return Status::IOError("age: ChaCha20-Poly1305 failed (OpenSSL)");
  return out_(sealed_);
}

Status AgeEncryptor::Write(std::string_view data) {
  if (finished_) return Status::Invalid("age: write after finish");
  // A full chunk is sealed only once more follows: the last chunk must carry the last flag.
  // Whole chunks of `data` are sealed from where they are; only a partial one is copied.
  if (!buf_.empty()) {
    size_t take = std::min(data.size(), kAgeChunk - buf_.size());
    buf_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (data.empty()) return Status::Ok();  // buf_ may be full: the last chunk, or not
    MV_RETURN_IF_ERROR(SealChunk(buf_, false));
    buf_.clear();
  }
  while (data.size() > kAgeChunk) {
    MV_RETURN_IF_ERROR(SealChunk(data.substr(0, kAgeChunk), false));
    data.remove_prefix(kAgeChunk);
  }
  buf_.assign(data);
  return Status::Ok();
}

Status AgeEncryptor::Finish() {
  if (finished_) return Status::Invalid("age: finished twice");
  finished_ = true;
  return SealChunk(buf_, true);
}

uint64_t AgeEncryptor::FileSize(uint64_t plain, uint64_t header_bytes) {
  uint64_t chunks = plain == 0 ? 1 : (plain + kAgeChunk - 1) / kAgeChunk;
  return header_bytes + kNonce + plain + chunks * kAgeTag;
}

Result<std::string> AgeEncrypt(std::string_view plain,
                               const std::vector<AgeRecipient>& recipients) {
  std::string out;
  MV_ASSIGN_OR_RETURN(auto e, AgeEncryptor::Create(recipients, [&](std::string_view b) {
                        out.append(b);
                        return Status::Ok();
                      }));
  MV_RETURN_IF_ERROR(e->Write(plain));
  MV_RETURN_IF_ERROR(e->Finish());
  return out;
}

Result<AgeHeader> AgeReadHeader(std::string_view prefix, const AgeIdentity& identity,
                                const std::string& path, uint64_t* need) {
  *need = 0;
  if (!InitSodium()) return Status::IOError("libsodium did not initialise", path);
  auto more = [&]() -> Status {
    *need = std::max<uint64_t>(prefix.size() * 2, 4096);
    return Status::NotFound("the age header goes on past the bytes read", path);
  };
  if (prefix.size() < kVersionLine.size())
    return prefix == kVersionLine.substr(0, prefix.size()) ? more() : Bad("no age v1 header", path);
  if (prefix.substr(0, kVersionLine.size()) != kVersionLine) return Bad("no age v1 header", path);
  size_t pos = kVersionLine.size();
  const std::array<uint8_t, 32> our_pub = RecipientOf(identity).pub;
  std::array<uint8_t, kFileKey> file_key{};
  bool found = false;
  for (;;) {
    size_t nl = prefix.find('\n', pos);
    if (nl == std::string_view::npos) return more();
    std::string_view line = prefix.substr(pos, nl - pos);
    if (line.substr(0, 4) == "--- ") {
      if (!found)
        return Status::Invalid(
            "no X25519 stanza opens with this identity (recipient " +
                FormatRecipient(RecipientOf(identity)) +
                "): the file is for another identity (use the repository's identity file), or "
                "its header is damaged",
            path);
      std::string mac;
      if (!FromBase64(line.substr(4), false, &mac) || mac.size() != 32)
        return Bad("bad header MAC", path);
      std::array<uint8_t, 32> mac_key = Hkdf(View(file_key.data(), kFileKey), "", "header");
      std::array<uint8_t, 32> want = Hmac(View(mac_key.data(), 32), prefix.substr(0, pos + 3));
      if (sodium_memcmp(want.data(), mac.data(), 32) != 0)
        return Status::Corruption("age header does not authenticate (changed or damaged)", path);
      size_t payload = nl + 1;
      if (prefix.size() < payload + kNonce) return more();
      AgeHeader h;
      h.payload_offset = payload + kNonce;
      h.payload_key =
          Hkdf(View(file_key.data(), kFileKey), prefix.substr(payload, kNonce), "payload");
      sodium_memzero(file_key.data(), file_key.size());
      return h;
    }
    if (line.substr(0, 3) != "-> ") return Bad("expected a stanza or the MAC line", path);
    // The stanza's arguments, then its body: lines of 64 characters ending with a shorter one.
    std::vector<std::string_view> args;
    for (size_t a = 3; a <= line.size();) {
      size_t sp = line.find(' ', a);
      if (sp == std::string_view::npos) sp = line.size();
      args.push_back(line.substr(a, sp - a));
      a = sp + 1;
    }
    std::string body_b64;
    pos = nl + 1;
    for (;;) {
      size_t e = prefix.find('\n', pos);
      if (e == std::string_view::npos) return more();
      std::string_view bl = prefix.substr(pos, e - pos);
      if (bl.size() > 64) return Bad("stanza body line longer than 64 columns", path);
      body_b64.append(bl);
      pos = e + 1;
      if (bl.size() < 64) break;
    }
    if (found || args.empty() || args[0] != "X25519") continue;
    std::string share, body;
    if (args.size() != 2 || !FromBase64(args[1], false, &share) || share.size() != 32 ||
        !FromBase64(body_b64, false, &body) || body.size() != kFileKey + kAgeTag)
      return Bad("malformed X25519 stanza", path);
    uint8_t shared[32];
    if (crypto_scalarmult(shared, identity.secret.data(),
                          reinterpret_cast<const unsigned char*>(share.data())) != 0)
      return Bad("X25519 stanza with a low-order share", path);
    std::string salt = share + std::string(View(our_pub.data(), 32));
    std::array<uint8_t, 32> key = Hkdf(View(shared, 32), salt, kX25519Info);
    sodium_memzero(shared, sizeof shared);
    static const uint8_t kZeroNonce[12] = {};
    std::string fk;
    if (Open(key, kZeroNonce, body, &fk)) {  // not ours otherwise: another recipient's stanza
      std::copy(fk.begin(), fk.end(), file_key.begin());
      sodium_memzero(fk.data(), fk.size());
      found = true;
    }
    sodium_memzero(key.data(), key.size());
  }
}

Result<std::string> AgeDecryptChunks(const AgeHeader& h, uint64_t file_size, uint64_t first,
                                     std::string_view sealed, const std::string& path) {
  if (file_size < h.payload_offset + kAgeTag)
    return Status::Corruption("age file cut short: no payload", path);
  const uint64_t payload = file_size - h.payload_offset;
  const uint64_t full = kAgeChunk + kAgeTag;
  // The last chunk: payload = n_full * full + rest, 0 < rest <= full (an empty plaintext is one
  // empty last chunk).
  const uint64_t last = (payload - 1) / full;
  std::string plain, m;
  plain.reserve(sealed.size());
  uint64_t off = 0;
  for (uint64_t k = first; off < sealed.size(); k++) {
    uint64_t n = std::min<uint64_t>(full, sealed.size() - off);
    if (k > last) return Status::Corruption("bytes after the last age chunk", path);
    uint8_t nonce[12];
    ChunkNonce(k, k == last, nonce);
    size_t at = plain.size();
    if (n >= kAgeTag) plain.resize(at + n - kAgeTag);
    if (n < kAgeTag || !OpenInto(h.payload_key, nonce, sealed.substr(off, n), plain.data() + at)) {
      ChunkNonce(k, k != last, nonce);
      bool flag_only = Open(h.payload_key, nonce, sealed.substr(off, n), &m);
      return Status::Corruption(flag_only ? "age file cut short (chunk " + std::to_string(k) +
                                                " is not the last one, yet the file ends there)"
                                          : "age chunk " + std::to_string(k) +
                                                " does not authenticate (changed or damaged)",
                                path);
    }
    if (k == last && n == kAgeTag && k > 0)
      return Status::Corruption("age file ends with an empty chunk", path);
    off += n;
  }
  return plain;
}

Result<std::string> AgeDecrypt(std::string_view file, const AgeIdentity& identity,
                               const std::string& path) {
  uint64_t need = 0;
  auto h = AgeReadHeader(file, identity, path, &need);
  if (!h.ok() && need > 0) return Status::Corruption("age file cut short in its header", path);
  MV_RETURN_IF_ERROR(h.status());
  return AgeDecryptChunks(*h, file.size(), 0, file.substr(h->payload_offset), path);
}

}  // namespace mv::storage::crypto
