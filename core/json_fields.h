// Fields of JSON documents kiln did not write (SBOMs and lockfiles in an image, a docker
// config.json): a field of an unexpected type reads as absent, where nlohmann's value() and get()
// would throw.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace kiln {

/// The string at `key` of `object`; "" when `object` is not an object, or the field is missing or
/// not a string.
inline std::string JsonStringField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// True only when the field at `key` of `object` is the boolean true.
inline bool JsonTrueField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace kiln
