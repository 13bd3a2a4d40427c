// Integers out of parsed JSON (config, keys, snapshot headers, lock files) without undefined
// behaviour. nlohmann's own conversion is a plain cast: 1e300 into an int is undefined, -1 into
// a uint64_t is silently 2^64-1. These accept only JSON integers that fit the type and throw
// std::out_of_range naming the field otherwise; every caller turns exceptions from parsing into
// a Corruption status. Internal to storage/.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace mv::storage {

template <typename T>
T JsonInt(const nlohmann::json& v, const char* field) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (std::in_range<T>(u)) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    auto i = v.get<int64_t>();
    if (std::in_range<T>(i)) return static_cast<T>(i);
  }
  throw std::out_of_range(std::string(field) + " is not an integer in range: " + v.dump());
}

// obj[key], which must exist.
template <typename T>
T JsonIntAt(const nlohmann::json& obj, const char* key) {
  return JsonInt<T>(obj.at(key), key);
}

// obj[key], or `missing` when obj has no such key.
template <typename T>
T JsonIntOr(const nlohmann::json& obj, const char* key, T missing) {
  if (!obj.is_object())
    throw std::out_of_range(std::string("not an object where ") + key + " was expected");
  auto it = obj.find(key);
  return it == obj.end() ? missing : JsonInt<T>(*it, key);
}

}  // namespace mv::storage
