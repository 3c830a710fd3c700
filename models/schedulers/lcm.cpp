#include "models/schedulers/lcm.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::schedulers {

LCMScheduler::LCMScheduler(SchedulerConfig cfg) : Scheduler(std::move(cfg), "LCMScheduler") {
  final_alpha_cumprod_ = cfg_.set_alpha_to_one ? 1.0f : alphas_cumprod_values_.front();
}

void LCMScheduler::set_timesteps(int n) {
  const int N = cfg_.num_train_timesteps;
  const int original = cfg_.original_inference_steps;
  if (original < 1 || original > N)
    unsupported("original_inference_steps", std::to_string(original), fmt::format("1..{}", N));
  if (n < 1 || n > N) throw Error(fmt::format("LCMScheduler: num_inference_steps {} must be in [1, {}]", n, N));
  if (n > original)
    throw Error(fmt::format("LCMScheduler: num_inference_steps {} must not exceed original_inference_steps {}", n, original));
  // The distilled model's schedule: every k-th train timestep (k = N / original), walked from the end.
  const int64_t k = N / original;
  std::vector<int64_t> origin;  // descending
  for (int64_t j = original; j >= 1; --j) origin.push_back(j * k - 1);
  auto idx = detail::np_linspace(0, static_cast<double>(origin.size()), n, /*endpoint=*/false);
  std::vector<int64_t> ts;
  for (double v : idx) ts.push_back(origin.at(static_cast<size_t>(std::floor(v))));
  set_timestep_values(torch::tensor(ts, torch::kLong));
}

StepOutput LCMScheduler::step(const at::Tensor& model_output, int i, const at::Tensor& sample, at::Generator* gen,
                              const at::Tensor* noise) {
  check_index(i, "step");
  const auto t = static_cast<int64_t>(timestep(i));
  const int64_t prev_t = i + 1 < num_steps() ? static_cast<int64_t>(timestep(i + 1)) : t;
  const float a_t = alpha_cumprod_at(t);
  const float a_prev = prev_t >= 0 ? alpha_cumprod_at(prev_t) : final_alpha_cumprod_;
  const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
  // Consistency-model boundary scalings (σ_data = 0.5), float32 as diffusers.
  const float st = static_cast<float>(t) * static_cast<float>(cfg_.timestep_scaling);
  const float c_skip = 0.25f / (st * st + 0.25f);
  const float c_out = st / std::sqrt(st * st + 0.25f);
  at::Tensor x0;
  if (cfg_.prediction_type == "epsilon") {
    x0 = (sample - std::sqrt(b_t) * model_output) / std::sqrt(a_t);
  } else if (cfg_.prediction_type == "sample") {
    x0 = model_output;
  } else {
    x0 = std::sqrt(a_t) * sample - std::sqrt(b_t) * model_output;
  }
  if (cfg_.thresholding) x0 = detail::threshold_sample(x0, cfg_.dynamic_thresholding_ratio, cfg_.sample_max_value);
  else if (cfg_.clip_sample) x0 = x0.clamp(-cfg_.clip_sample_range, cfg_.clip_sample_range);
  auto denoised = c_out * x0 + c_skip * sample;
  at::Tensor prev = denoised;
  if (i != num_steps() - 1) {
    auto z = detail::draw_noise(model_output, gen, noise, "LCMScheduler::step");
    prev = std::sqrt(a_prev) * denoised + std::sqrt(b_prev) * z;
  }
  return {prev, denoised};
}

}  // namespace clipgen::schedulers
