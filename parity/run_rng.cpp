// Fixture runner for rng/: seeded CPU draws must equal PyTorch's bit for bit.
#include <torch/torch.h>

#include "models/rng.h"
#include "parity/fixture.h"

namespace clipgen::parity {

static std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto x = s.find('x', start);
    out.push_back(std::stoll(s.substr(start, x == std::string::npos ? std::string::npos : x - start)));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return out;
}

void register_rng_runners() {
  runners()["rng"] = [](FixtureContext& ctx) {
    const auto& draws = ctx.fixture()["reference_draws"];
    std::vector<std::vector<int64_t>> seq_shapes = draws["shapes"].get<std::vector<std::vector<int64_t>>>();
    for (const auto& [name, ref] : ctx.outputs()) {
      // manual_seed_<s>__randn_<shape> | generator_<s>__randn_<shape> | manual_seed_<s>__sequence_<j>
      auto sep = name.find("__");
      auto head = name.substr(0, sep), tail = name.substr(sep + 2);
      uint64_t seed = std::stoull(head.substr(head.rfind('_') + 1));
      at::Tensor got;
      if (tail.rfind("randn_", 0) == 0) {
        auto gen = make_generator(seed);
        got = randn(parse_shape(tail.substr(6)), gen);
      } else {
        size_t j = std::stoul(tail.substr(tail.rfind('_') + 1));
        auto gen = make_generator(seed);
        for (size_t k = 0; k <= j; ++k) got = randn(seq_shapes.at(k), gen);
      }
      ctx.compare(name, got, ref, Tolerance::exact());
    }
  };
}

}  // namespace clipgen::parity
