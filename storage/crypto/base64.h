// Base64 for storage/crypto's files: padded in the JSON of key files, unpadded in age headers
// (as age writes it). Decoding accepts the canonical encoding only, as age requires.
#pragma once

#include <string>
#include <string_view>

namespace mv::storage::crypto {

std::string Base64(std::string_view bin, bool padded);
// False when `text` is not the canonical encoding of some bytes.
bool FromBase64(std::string_view text, bool padded, std::string* out);

}  // namespace mv::storage::crypto
