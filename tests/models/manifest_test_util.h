// A model built from a real config has exactly the parameter names and shapes (and the parameter count) of
// its manifest in tests/data/manifests (generated from the reference Python models; see tests/data/README).
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "tests/test_util.h"

namespace clipgen::test {

// `manifest` relative to tests/data/manifests, e.g. "sd15/unet.json".
inline void expect_matches_manifest(const torch::nn::Module& m, const std::string& manifest) {
  auto j = io::read_json(manifest_dir(manifest));
  auto state = io::module_state(m);
  const auto& tensors = j["tensors"];
  EXPECT_EQ(state.size(), tensors.size()) << manifest;
  EXPECT_EQ(state.size(), j["num_state_dict_tensors"].get<size_t>()) << manifest;
  int64_t params = 0;
  for (const auto& [name, t] : state) {
    if (!tensors.contains(name)) ADD_FAILURE() << manifest << ": extra tensor " << name;
    params += t.numel();
  }
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    auto s = state.find(it.key());
    if (s == state.end()) {
      ADD_FAILURE() << manifest << ": missing " << it.key();
      continue;
    }
    EXPECT_EQ(s->second.sizes().vec(), it.value().get<std::vector<int64_t>>()) << manifest << ": " << it.key();
  }
  EXPECT_EQ(params, j["num_parameters"].get<int64_t>()) << manifest;
}

}  // namespace clipgen::test
