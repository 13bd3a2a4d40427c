// storage/crypto/base64.h, on libsodium's codec.
#include "storage/crypto/base64.h"

#include <sodium.h>

#include <cstring>

namespace mv::storage::crypto {

std::string Base64(std::string_view bin, bool padded) {
  const int variant =
      padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bin.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool FromBase64(std::string_view text, bool padded, std::string* out) {
  const int variant =
      padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  out->assign(text.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(), text.data(),
                        text.size(), nullptr, &len, &end, variant) != 0 ||
      end != text.data() + text.size())
    return false;
  out->resize(len);
  return Base64(*out, padded) == text;
}

}  // namespace mv::storage::crypto
