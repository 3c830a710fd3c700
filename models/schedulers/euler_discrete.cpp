#include "models/schedulers/euler_discrete.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::schedulers {

namespace detail {
// Float32 train-timestep schedule of the Euler family (descending), numpy semantics.
std::vector<float> euler_timesteps(const SchedulerConfig& c, int n) {
  const int N = c.num_train_timesteps;
  std::vector<float> ts;
  if (c.timestep_spacing == "linspace") {
    auto v = np_linspace(0, N - 1, n);
    for (auto it = v.rbegin(); it != v.rend(); ++it) ts.push_back(static_cast<float>(*it));
  } else if (c.timestep_spacing == "leading") {
    const int64_t ratio = N / n;
    for (int i = n - 1; i >= 0; --i) ts.push_back(static_cast<float>(i * ratio) + static_cast<float>(c.steps_offset));
  } else {  // trailing
    for (double v : np_arange(N, 0, -static_cast<double>(N) / n)) ts.push_back(static_cast<float>(np_round(v)) - 1.0f);
  }
  return ts;
}

// σ_max² + 1 under a square root for leading spacing, σ_max otherwise (float32, as diffusers).
double euler_init_noise_sigma(const SchedulerConfig& c, const std::vector<float>& sigmas) {
  float m = 0;
  for (float s : sigmas) m = std::max(m, s);
  if (c.timestep_spacing == "linspace" || c.timestep_spacing == "trailing") return m;
  return std::sqrt(m * m + 1.0f);
}

at::Tensor euler_add_noise(const Scheduler& s, const std::vector<float>& sigmas, const at::Tensor& original,
                           const at::Tensor& noise, const at::Tensor& timesteps) {
  auto t = timesteps.to(torch::kCPU, torch::kDouble).flatten().contiguous();
  std::vector<float> sig;
  for (int64_t k = 0; k < t.numel(); ++k)
    sig.push_back(sigmas.at(static_cast<size_t>(s.index_for_timestep(t.data_ptr<double>()[k]))));
  std::vector<int64_t> bshape(static_cast<size_t>(original.dim()), 1);
  bshape[0] = -1;
  auto sigma = torch::tensor(sig, torch::kFloat).to(original.device(), original.scalar_type()).reshape(bshape);
  return original + noise * sigma;
}
}  // namespace detail

EulerDiscreteScheduler::EulerDiscreteScheduler(SchedulerConfig cfg) : Scheduler(std::move(cfg), "EulerDiscreteScheduler") {
  if (cfg_.interpolation_type != "linear" && cfg_.interpolation_type != "log_linear")
    unsupported("interpolation_type", cfg_.interpolation_type, "linear, log_linear");
  if (cfg_.timestep_type != "discrete" && cfg_.timestep_type != "continuous")
    unsupported("timestep_type", cfg_.timestep_type, "discrete, continuous");
  if (cfg_.rescale_betas_zero_snr) {
    // diffusers keeps the last ᾱ just above zero so σ stays finite.
    alphas_cumprod_[-1] = std::pow(2.0, -24);
    alphas_cumprod_values_.back() = alphas_cumprod_[-1].item<float>();
  }
}

void EulerDiscreteScheduler::set_timesteps(int n) {
  if (n < 1) throw Error(fmt::format("EulerDiscreteScheduler: num_inference_steps must be positive (got {})", n));
  std::vector<float> ts = detail::euler_timesteps(cfg_, n);
  const std::vector<float> table = detail::sigma_table(alphas_cumprod_);  // σ(t), float32
  std::vector<float> log_table(table.size());
  for (size_t k = 0; k < table.size(); ++k) log_table[k] = std::log(table[k]);

  std::vector<double> sig;  // float64, like the numpy code
  if (cfg_.interpolation_type == "linear") {
    for (float t : ts) sig.push_back(detail::np_interp_index(t, table));
  } else {  // log_linear: n + 1 sigmas, geometric from σ_max to σ_min (float32)
    auto l = torch::linspace(std::log(table.back()), std::log(table.front()), n + 1, torch::kFloat).exp();
    for (int64_t k = 0; k < l.numel(); ++k) sig.push_back(l[k].item<float>());
  }
  std::vector<double> tsd(ts.begin(), ts.end());
  if (cfg_.use_karras_sigmas) {
    double smin = cfg_.sigma_min ? *cfg_.sigma_min : sig.back();
    double smax = cfg_.sigma_max ? *cfg_.sigma_max : sig.front();
    sig = detail::karras_sigmas(smin, smax, n);
    tsd.clear();
    for (double s : sig) tsd.push_back(detail::sigma_to_t(s, log_table));
  }
  std::vector<float> sig32(sig.begin(), sig.end());
  std::vector<float> t32;
  if (cfg_.timestep_type == "continuous" && cfg_.prediction_type == "v_prediction") {
    for (float s : sig32) t32.push_back(0.25f * std::log(s));  // c_noise = 0.25·ln σ
  } else {
    for (double t : tsd) t32.push_back(static_cast<float>(t));
  }
  sig32.push_back(0.0f);
  set_timestep_values(torch::tensor(t32, torch::kFloat));
  set_sigmas(torch::tensor(sig32, torch::kFloat));
}

double EulerDiscreteScheduler::init_noise_sigma() const {
  if (sigma_values_.empty()) throw Error("EulerDiscreteScheduler::init_noise_sigma: call set_timesteps first");
  return detail::euler_init_noise_sigma(cfg_, sigma_values_);
}

at::Tensor EulerDiscreteScheduler::scale_model_input(const at::Tensor& sample, int i) const {
  check_index(i, "scale_model_input");
  const float s = sigma_at(i);
  return sample / std::sqrt(s * s + 1.0f);  // c_in = 1/sqrt(σ² + 1)
}

StepOutput EulerDiscreteScheduler::step(const at::Tensor& model_output, int i, const at::Tensor& sample_in,
                                        at::Generator* gen, const at::Tensor* noise) {
  check_index(i, "step");
  auto sample = sample_in.to(torch::kFloat);
  const float sigma = sigma_at(i);
  const double s_churn = churn_.s_churn;
  const double gamma = (churn_.s_tmin <= sigma && sigma <= churn_.s_tmax)
                           ? std::min(s_churn / static_cast<double>(sigma_values_.size() - 1), std::sqrt(2.0) - 1)
                           : 0.0;
  // diffusers draws here unconditionally; without a generator or noise only a churn-free step can proceed.
  at::Tensor eps;
  if (gen || noise || gamma > 0) eps = detail::draw_noise(model_output, gen, noise, "EulerDiscreteScheduler::step") * churn_.s_noise;
  const float sigma_hat = sigma * static_cast<float>(gamma + 1);
  if (gamma > 0) sample = sample + eps * std::sqrt(sigma_hat * sigma_hat - sigma * sigma);
  at::Tensor x0;
  if (cfg_.prediction_type == "sample") {
    x0 = model_output;
  } else if (cfg_.prediction_type == "epsilon") {
    x0 = sample - sigma_hat * model_output;
  } else {  // v_prediction: c_out = -σ/sqrt(σ²+1), c_skip = 1/(σ²+1)
    x0 = model_output * (-sigma / std::sqrt(sigma * sigma + 1.0f)) + sample / (sigma * sigma + 1.0f);
  }
  auto derivative = (sample - x0) / sigma_hat;
  const float dt = sigma_at(i + 1) - sigma_hat;
  auto prev = (sample + derivative * dt).to(model_output.scalar_type());
  return {prev, x0};
}

at::Tensor EulerDiscreteScheduler::add_noise(const at::Tensor& original, const at::Tensor& noise,
                                             const at::Tensor& timesteps) const {
  return detail::euler_add_noise(*this, sigma_values_, original, noise, timesteps);
}

}  // namespace clipgen::schedulers
