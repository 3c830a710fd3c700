#include <chrono>
#include <cstdio>
#include <torch/torch.h>
#include "configs/preset.h"
#include "stages/keyframe.h"
using namespace clipgen;
int main() {
  torch::set_num_threads(1);
  auto m = stages::load_sd_pipeline(configs::builtin_keyframe_model());
  stages::KeyframeRequest r; r.prompt = "a red ball over snow at sunset"; r.width = 64; r.height = 112; r.steps = 5;
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    stages::generate_keyframe(m, r);
    printf("%.3f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 4, 28, 16}); auto t = torch::full({2}, 500.0); auto c = torch::randn({2, 77, 64});
  for (int i = 0; i < 3; ++i) { auto t0 = std::chrono::steady_clock::now(); m.unet->forward(x, t, c); printf("unet %.4f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); }
  auto z = torch::randn({1,4,28,16});
  for (int i = 0; i < 2; ++i) { auto t0 = std::chrono::steady_clock::now(); m.vae->decode(z); printf("vae %.4f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); }
  auto ids = torch::zeros({1,77}, torch::kLong);
  for (int i = 0; i < 2; ++i) { auto t0 = std::chrono::steady_clock::now(); m.text_encoder->forward(ids); printf("te %.4f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); }
}
