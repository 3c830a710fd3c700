// A minimal reader for the LDM/SGM `original_config.yaml` files that sit beside single-file checkpoints.
// yaml-cpp is private to clipgen_configs, and these files use a small YAML subset: block mappings by
// indentation, block sequences ("- "), flow sequences ([1, 2]) and flow mappings ({a: 1, b: 2}) on one
// line, scalars and comments. The result is flat: dotted path → scalar text, with sequence items as
// "-" path components (e.g. "model.params.conditioner_config.params.emb_models.-.params.outdim").
// Anything outside that subset (anchors, multi-line scalars) is skipped, never guessed.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clipgen::io {

class LdmYaml {
public:
  static LdmYaml parse(const std::string& text);
  // The value of the first key whose dotted path ends with `suffix` (matched on whole components).
  std::optional<std::string> find(const std::string& suffix) const;
  std::optional<int64_t> find_int(const std::string& suffix) const;
  std::optional<double> find_double(const std::string& suffix) const;
  std::optional<bool> find_bool(const std::string& suffix) const;
  // A flow sequence "[1, 2, 4]" → {1, 2, 4}; a scalar → one element.
  std::optional<std::vector<int64_t>> find_int_list(const std::string& suffix) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

private:
  std::vector<std::pair<std::string, std::string>> entries_;  // file order
};

}  // namespace clipgen::io
