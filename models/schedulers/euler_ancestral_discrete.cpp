#include "models/schedulers/euler_ancestral_discrete.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::schedulers {

namespace detail {
std::vector<float> euler_timesteps(const SchedulerConfig& c, int n);  // euler_discrete.cpp
double euler_init_noise_sigma(const SchedulerConfig& c, const std::vector<float>& sigmas);
at::Tensor euler_add_noise(const Scheduler& s, const std::vector<float>& sigmas, const at::Tensor& original,
                           const at::Tensor& noise, const at::Tensor& timesteps);
}  // namespace detail

EulerAncestralDiscreteScheduler::EulerAncestralDiscreteScheduler(SchedulerConfig cfg)
    : Scheduler(std::move(cfg), "EulerAncestralDiscreteScheduler") {
  if (cfg_.prediction_type == "sample") unsupported("prediction_type", "sample", "epsilon, v_prediction");
  if (cfg_.rescale_betas_zero_snr) {
    alphas_cumprod_[-1] = std::pow(2.0, -24);
    alphas_cumprod_values_.back() = alphas_cumprod_[-1].item<float>();
  }
}

void EulerAncestralDiscreteScheduler::set_timesteps(int n) {
  if (n < 1) throw Error(fmt::format("EulerAncestralDiscreteScheduler: num_inference_steps must be positive (got {})", n));
  std::vector<float> ts = detail::euler_timesteps(cfg_, n);
  const std::vector<float> table = detail::sigma_table(alphas_cumprod_);
  std::vector<float> sig;
  for (float t : ts) sig.push_back(static_cast<float>(detail::np_interp_index(t, table)));  // float64 interp → float32
  sig.push_back(0.0f);
  set_timestep_values(torch::tensor(ts, torch::kFloat));
  set_sigmas(torch::tensor(sig, torch::kFloat));
}

double EulerAncestralDiscreteScheduler::init_noise_sigma() const {
  if (sigma_values_.empty()) throw Error("EulerAncestralDiscreteScheduler::init_noise_sigma: call set_timesteps first");
  return detail::euler_init_noise_sigma(cfg_, sigma_values_);
}

at::Tensor EulerAncestralDiscreteScheduler::scale_model_input(const at::Tensor& sample, int i) const {
  check_index(i, "scale_model_input");
  const float s = sigma_at(i);
  return sample / std::sqrt(s * s + 1.0f);
}

StepOutput EulerAncestralDiscreteScheduler::step(const at::Tensor& model_output, int i, const at::Tensor& sample_in,
                                                 at::Generator* gen, const at::Tensor* noise) {
  check_index(i, "step");
  auto sample = sample_in.to(torch::kFloat);
  const float sigma = sigma_at(i);
  at::Tensor x0;
  if (cfg_.prediction_type == "epsilon") {
    x0 = sample - sigma * model_output;
  } else {  // v_prediction
    x0 = model_output * (-sigma / std::sqrt(sigma * sigma + 1.0f)) + sample / (sigma * sigma + 1.0f);
  }
  const float s_from = sigma, s_to = sigma_at(i + 1);
  const float sigma_up = std::sqrt(s_to * s_to * (s_from * s_from - s_to * s_to) / (s_from * s_from));
  const float sigma_down = std::sqrt(s_to * s_to - sigma_up * sigma_up);
  auto derivative = (sample - x0) / sigma;
  const float dt = sigma_down - sigma;
  auto prev = sample + derivative * dt;
  auto z = detail::draw_noise(model_output, gen, noise, "EulerAncestralDiscreteScheduler::step");
  prev = (prev + z * sigma_up).to(model_output.scalar_type());
  return {prev, x0};
}

at::Tensor EulerAncestralDiscreteScheduler::add_noise(const at::Tensor& original, const at::Tensor& noise,
                                                      const at::Tensor& timesteps) const {
  return detail::euler_add_noise(*this, sigma_values_, original, noise, timesteps);
}

}  // namespace clipgen::schedulers
