// Reading a diffusers component's config.json into a model config (UNet2DConditionConfig::from_json, ...):
// the one error for a value clipgen does not support — "<file>: unsupported <Class> config <key>=<value>
// (<why>)", an UnsupportedError naming the key, never a silent misbehaviour — and the checked conversions
// the model configs share.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace clipgen::io {

class ConfigJson {
public:
  // `source`: the file (for messages); `class_name`: the diffusers class, e.g. "UNet2DConditionModel".
  ConfigJson(std::string source, std::string class_name);

  [[noreturn]] void unsupported(const std::string& key, const nlohmann::json& value, const std::string& why = "") const;
  // An int or a non-empty list of ints → list (a single int stays one entry).
  std::vector<int64_t> int_or_list(const nlohmann::json& value, const std::string& key) const;
  int64_t positive_int(const nlohmann::json& value, const std::string& key) const;

private:
  std::string source_, class_name_;
};

}  // namespace clipgen::io
