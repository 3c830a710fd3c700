#include "train/sampler.h"

#include <torch/torch.h>

#include "models/rng.h"

namespace clipgen::train {

at::Tensor sample_images(KeyframeModel& m, const std::vector<std::string>& prompts, const std::vector<uint64_t>& seeds,
                         const SampleOptions& opt) {
  torch::NoGradGuard ng;
  const auto dev = m.unet->conv_in->weight.device();
  const int64_t f = m.vae->downscale_factor();
  std::vector<at::Tensor> out;
  for (size_t i0 = 0; i0 < prompts.size(); i0 += static_cast<size_t>(opt.batch)) {
    const size_t i1 = std::min(prompts.size(), i0 + static_cast<size_t>(opt.batch));
    const auto n = static_cast<int64_t>(i1 - i0);
    std::vector<std::string> texts(prompts.begin() + static_cast<long>(i0), prompts.begin() + static_cast<long>(i1));
    texts.insert(texts.begin(), static_cast<size_t>(n), std::string());  // unconditional rows first
    const auto ids = m.tokenizer->encode_batch(texts).input_ids.to(dev);
    const auto ctx = m.text_encoder->forward(ids).last_hidden_state;
    std::vector<at::Tensor> lat;
    for (size_t i = i0; i < i1; ++i) {
      auto gen = make_generator(seeds[i]);
      lat.push_back(randn({1, m.unet->config().in_channels, opt.height / f, opt.width / f}, gen, dev));
    }
    auto x = torch::cat(lat);
    auto sched = schedulers::make_scheduler_for_sampler(m.scheduler, opt.sampler);
    sched->set_timesteps(opt.steps);
    x = x * sched->init_noise_sigma();
    for (int s = 0; s < sched->num_steps(); ++s) {
      const auto in = sched->scale_model_input(torch::cat({x, x}), s);
      const auto t = torch::full({2 * n}, sched->timestep(s), torch::TensorOptions().device(dev));
      const auto pred = m.unet->forward(in, t, ctx);
      const auto parts = pred.chunk(2);
      const auto guided = parts[0] + opt.guidance * (parts[1] - parts[0]);
      auto gen = make_generator(seeds[i0] ^ 0x5A3D1E);
      x = sched->step(guided, s, x, &gen).prev_sample;
    }
    const auto img = m.vae->decode(x / m.scaling_factor);
    out.push_back(to_u8_nhwc(img));
  }
  return torch::cat(out);
}

at::Tensor to_u8_nhwc(const at::Tensor& img) {
  return ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous().cpu();
}

std::vector<uint8_t> tile_grid(const at::Tensor& images, int columns, int& grid_w, int& grid_h) {
  const int n = static_cast<int>(images.size(0)), h = static_cast<int>(images.size(1)), w = static_cast<int>(images.size(2));
  const int rows = (n + columns - 1) / columns;
  grid_w = columns * (w + 1) - 1;
  grid_h = rows * (h + 1) - 1;
  std::vector<uint8_t> g(static_cast<size_t>(grid_w) * grid_h * 3, 255);
  const auto im = images.contiguous();
  const uint8_t* p = im.data_ptr<uint8_t>();
  for (int k = 0; k < n; ++k) {
    const int gx = (k % columns) * (w + 1), gy = (k / columns) * (h + 1);
    for (int y = 0; y < h; ++y)
      std::memcpy(&g[(static_cast<size_t>(gy + y) * grid_w + gx) * 3], p + (static_cast<size_t>(k) * h + y) * w * 3,
                  static_cast<size_t>(w) * 3);
  }
  return g;
}

}  // namespace clipgen::train
