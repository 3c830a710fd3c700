#include "models/io/config_json.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace clipgen::io {

ConfigJson::ConfigJson(std::string source, std::string class_name)
    : source_(std::move(source)), class_name_(std::move(class_name)) {}

void ConfigJson::unsupported(const std::string& key, const nlohmann::json& value, const std::string& why) const {
  throw UnsupportedError(source_ + ": unsupported " + class_name_ + " config " + key + "=" + value.dump() +
                         (why.empty() ? "" : " (" + why + ")"));
}

std::vector<int64_t> ConfigJson::int_or_list(const nlohmann::json& value, const std::string& key) const {
  const char* expected = "expected an integer or a list of integers";
  if (value.is_number_integer()) return {value.get<int64_t>()};
  if (!value.is_array() || value.empty()) unsupported(key, value, expected);
  std::vector<int64_t> out;
  for (const auto& e : value) {
    if (!e.is_number_integer()) unsupported(key, value, expected);
    out.push_back(e.get<int64_t>());
  }
  return out;
}

int64_t ConfigJson::positive_int(const nlohmann::json& value, const std::string& key) const {
  if (!value.is_number_integer() || value.get<int64_t>() <= 0) unsupported(key, value, "expected a positive integer");
  return value.get<int64_t>();
}

}  // namespace clipgen::io
