#include "models/schedulers/ddim.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::schedulers {

DDIMScheduler::DDIMScheduler(SchedulerConfig cfg) : Scheduler(std::move(cfg), "DDIMScheduler") {
  final_alpha_cumprod_ = cfg_.set_alpha_to_one ? 1.0f : alphas_cumprod_values_.front();
}

// Integer timesteps shared by DDIM-style schedules (descending). numpy semantics throughout.
static std::vector<int64_t> ddim_timesteps(const SchedulerConfig& c, int n) {
  const int N = c.num_train_timesteps;
  std::vector<int64_t> ts;
  if (c.timestep_spacing == "linspace") {
    for (double v : detail::np_linspace(0, N - 1, n)) ts.push_back(static_cast<int64_t>(detail::np_round(v)));
    std::reverse(ts.begin(), ts.end());
  } else if (c.timestep_spacing == "leading") {
    const int64_t ratio = N / n;
    for (int i = n - 1; i >= 0; --i) ts.push_back(i * ratio + c.steps_offset);
  } else {  // trailing
    for (double v : detail::np_arange(N, 0, -static_cast<double>(N) / n)) ts.push_back(static_cast<int64_t>(detail::np_round(v)) - 1);
  }
  return ts;
}

void DDIMScheduler::set_timesteps(int n) {
  if (n < 1 || n > cfg_.num_train_timesteps)
    throw Error(fmt::format("DDIMScheduler: num_inference_steps {} must be in [1, {}]", n, cfg_.num_train_timesteps));
  num_inference_steps_ = n;
  set_timestep_values(torch::tensor(ddim_timesteps(cfg_, n), torch::kLong));
}

StepOutput DDIMScheduler::step(const at::Tensor& model_output, int i, const at::Tensor& sample, at::Generator* gen,
                               const at::Tensor* noise) {
  check_index(i, "step");
  const auto t = static_cast<int64_t>(timestep(i));
  const int64_t prev_t = t - cfg_.num_train_timesteps / num_inference_steps_;
  // Scalars in float32, as diffusers' 0-dim tensors.
  const float a_t = alpha_cumprod_at(t);
  const float a_prev = prev_t >= 0 ? alpha_cumprod_at(prev_t) : final_alpha_cumprod_;
  const float b_t = 1.0f - a_t;
  at::Tensor x0, eps;
  if (cfg_.prediction_type == "epsilon") {
    x0 = (sample - std::sqrt(b_t) * model_output) / std::sqrt(a_t);
    eps = model_output;
  } else if (cfg_.prediction_type == "sample") {
    x0 = model_output;
    eps = (sample - std::sqrt(a_t) * x0) / std::sqrt(b_t);
  } else {  // v_prediction
    x0 = std::sqrt(a_t) * sample - std::sqrt(b_t) * model_output;
    eps = std::sqrt(a_t) * model_output + std::sqrt(b_t) * sample;
  }
  if (cfg_.thresholding) x0 = detail::threshold_sample(x0, cfg_.dynamic_thresholding_ratio, cfg_.sample_max_value);
  else if (cfg_.clip_sample) x0 = x0.clamp(-cfg_.clip_sample_range, cfg_.clip_sample_range);

  const float b_prev = 1.0f - a_prev;
  const float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
  const float std_dev = static_cast<float>(eta_) * std::sqrt(variance);
  auto direction = std::sqrt(1.0f - a_prev - std_dev * std_dev) * eps;
  auto prev = std::sqrt(a_prev) * x0 + direction;
  if (eta_ > 0) prev = prev + std_dev * detail::draw_noise(model_output, gen, noise, "DDIMScheduler::step");
  return {prev, x0};
}

}  // namespace clipgen::schedulers
