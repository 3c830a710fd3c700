#include "models/io/state_dict.h"

#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"

namespace clipgen::io {

TensorMap module_state(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(true)) out.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.emplace(b.key(), b.value());
  return out;
}

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

static std::string shape_str(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

void load_state_dict(torch::nn::Module& module, const TensorMap& weights, const std::string& source,
                     const LoadOptions& options) {
  auto target = module_state(module);
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : weights) {
    auto it = target.find(name);
    if (it == target.end()) {
      bool ignored = false;
      for (const auto& suf : options.ignore_suffixes) ignored = ignored || ends_with(name, suf);
      if (!ignored) unexpected.push_back(name);
      continue;
    }
    if (it->second.sizes() != t.sizes())
      mismatched.push_back(name + " (checkpoint " + shape_str(t.sizes()) + ", model " + shape_str(it->second.sizes()) + ")");
  }
  for (const auto& [name, t] : target)
    if (!weights.count(name)) missing.push_back(name);
  if (!options.strict) missing.clear();
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "weights do not match the model:";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      msg += "\n  " + std::to_string(v.size()) + " " + what + ":";
      for (size_t i = 0; i < v.size() && i < 5; ++i) msg += "\n    " + v[i];
      if (v.size() > 5) msg += "\n    ... and " + std::to_string(v.size() - 5) + " more";
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("shape-mismatched", mismatched);
    std::string first = !mismatched.empty() ? mismatched[0] : !missing.empty() ? missing[0] : unexpected[0];
    throw ModelLoadError(source, first.substr(0, first.find(' ')), msg);
  }
  torch::NoGradGuard ng;
  for (auto& [name, p] : target) {
    const auto& src = weights.at(name);
    p.copy_(src);
  }
}

void load_weights_into(torch::nn::Module& module, const std::filesystem::path& folder_or_file,
                       const LoadOptions& options) {
  auto ws = open_weights(folder_or_file);
  load_state_dict(module, ws.tensors, ws.paths.size() == 1 ? ws.paths[0].string() : folder_or_file.string(), options);
}

}  // namespace clipgen::io
