#include "models/schedulers/dpm_solver_multistep.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::schedulers {

namespace {
struct AlphaSigma {
  float alpha, sigma, lambda;
};
// σ (VE) → (α_t, σ_t) of the VP process and λ = ln α_t − ln σ_t, in float32 as diffusers.
AlphaSigma alpha_sigma(float s) {
  const float a = 1.0f / std::sqrt(s * s + 1.0f);
  const float st = s * a;
  return {a, st, std::log(a) - std::log(st)};
}
}  // namespace

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(SchedulerConfig cfg)
    : Scheduler(std::move(cfg), "DPMSolverMultistepScheduler") {
  // diffusers maps the legacy names deis → dpmsolver++ and logrho/bh1/bh2 → midpoint.
  if (cfg_.algorithm_type == "deis") cfg_.algorithm_type = "dpmsolver++";
  if (cfg_.solver_type == "logrho" || cfg_.solver_type == "bh1" || cfg_.solver_type == "bh2") cfg_.solver_type = "midpoint";
  if (cfg_.algorithm_type != "dpmsolver++" && cfg_.algorithm_type != "dpmsolver")
    unsupported("algorithm_type", cfg_.algorithm_type, "dpmsolver++, dpmsolver");
  if (cfg_.solver_type != "midpoint" && cfg_.solver_type != "heun") unsupported("solver_type", cfg_.solver_type, "midpoint, heun");
  if (cfg_.solver_order < 1 || cfg_.solver_order > 3) unsupported("solver_order", std::to_string(cfg_.solver_order), "1, 2, 3");
  if (cfg_.final_sigmas_type != "zero" && cfg_.final_sigmas_type != "sigma_min")
    unsupported("final_sigmas_type", cfg_.final_sigmas_type, "zero, sigma_min");
  if (cfg_.algorithm_type == "dpmsolver" && cfg_.final_sigmas_type == "zero")
    unsupported("final_sigmas_type", "zero", "sigma_min with algorithm_type dpmsolver");
  if (cfg_.variance_type && *cfg_.variance_type != "learned" && *cfg_.variance_type != "learned_range")
    unsupported("variance_type", *cfg_.variance_type, "null, learned, learned_range");
  if (cfg_.rescale_betas_zero_snr) {
    alphas_cumprod_[-1] = std::pow(2.0, -24);
    alphas_cumprod_values_.back() = alphas_cumprod_[-1].item<float>();
  }
}

void DPMSolverMultistepScheduler::set_timesteps(int n) {
  const int N = cfg_.num_train_timesteps;
  if (n < 1) throw Error(fmt::format("DPMSolverMultistepScheduler: num_inference_steps must be positive (got {})", n));
  // last_timestep = N - searchsorted(flip(λ_t), lambda_min_clipped)
  auto lambda_t = torch::log(torch::sqrt(alphas_cumprod_)) - torch::log(torch::sqrt(1 - alphas_cumprod_));
  auto flipped = torch::flip(lambda_t, {0}).contiguous();
  int64_t clipped = 0;
  for (int64_t k = 0; k < flipped.numel(); ++k)
    if (static_cast<double>(flipped.data_ptr<float>()[k]) < cfg_.lambda_min_clipped) clipped = k + 1;
  const int64_t last = N - clipped;

  std::vector<double> ts;  // descending, float64 until the int64 cast
  if (cfg_.timestep_spacing == "linspace") {
    auto v = detail::np_linspace(0, static_cast<double>(last - 1), n + 1);
    for (int k = n; k >= 1; --k) ts.push_back(detail::np_round(v[static_cast<size_t>(k)]));
  } else if (cfg_.timestep_spacing == "leading") {
    const int64_t ratio = last / (n + 1);
    for (int k = n; k >= 1; --k) ts.push_back(static_cast<double>(k * ratio + cfg_.steps_offset));
  } else {  // trailing
    for (double v : detail::np_arange(static_cast<double>(last), 0, -static_cast<double>(N) / n)) ts.push_back(detail::np_round(v) - 1);
  }
  const std::vector<float> table = detail::sigma_table(alphas_cumprod_);
  std::vector<float> log_table(table.size());
  for (size_t k = 0; k < table.size(); ++k) log_table[k] = std::log(table[k]);

  std::vector<double> sig;
  if (cfg_.use_karras_sigmas) {
    sig = detail::karras_sigmas(table.front(), table.back(), n);
    ts.clear();
    for (double s : sig) ts.push_back(detail::np_round(detail::sigma_to_t(s, log_table)));
  } else if (cfg_.use_lu_lambdas) {
    // Lu et al. (DPM-Solver++): uniform in λ = ln σ between the table's ends.
    auto ramp = detail::np_linspace(0, 1, n);
    const double lmin = log_table.front(), lmax = log_table.back();
    ts.clear();
    for (double r : ramp) {
      double s = std::exp(lmax + r * (lmin - lmax));
      sig.push_back(s);
      ts.push_back(detail::np_round(detail::sigma_to_t(s, log_table)));
    }
  } else {
    for (double t : ts) sig.push_back(detail::np_interp_index(t, table));
  }
  float last_sigma = 0.0f;
  if (cfg_.final_sigmas_type == "sigma_min") {
    const float a0 = alphas_cumprod_values_.front();
    last_sigma = std::sqrt((1 - a0) / a0);
  }
  std::vector<float> sig32(sig.begin(), sig.end());
  sig32.push_back(last_sigma);
  std::vector<int64_t> ts64;
  for (double t : ts) ts64.push_back(static_cast<int64_t>(t));
  set_timestep_values(torch::tensor(ts64, torch::kLong));
  set_sigmas(torch::tensor(sig32, torch::kFloat));
  model_outputs_.assign(static_cast<size_t>(cfg_.solver_order), at::Tensor());
  lower_order_nums_ = 0;
  next_index_ = -1;
}

at::Tensor DPMSolverMultistepScheduler::convert_model_output(const at::Tensor& model_output, int i, const at::Tensor& sample) const {
  const auto as = alpha_sigma(sigma_at(i));
  const bool learned = cfg_.variance_type.has_value();
  if (cfg_.algorithm_type == "dpmsolver++") {
    at::Tensor x0;
    if (cfg_.prediction_type == "epsilon") {
      auto eps = learned ? model_output.slice(1, 0, 3) : model_output;
      x0 = (sample - as.sigma * eps) / as.alpha;
    } else if (cfg_.prediction_type == "sample") {
      x0 = model_output;
    } else {
      x0 = as.alpha * sample - as.sigma * model_output;
    }
    if (cfg_.thresholding) x0 = detail::threshold_sample(x0, cfg_.dynamic_thresholding_ratio, cfg_.sample_max_value);
    return x0;
  }
  at::Tensor eps;  // dpmsolver works on ε
  if (cfg_.prediction_type == "epsilon") {
    eps = learned ? model_output.slice(1, 0, 3) : model_output;
  } else if (cfg_.prediction_type == "sample") {
    eps = (sample - as.alpha * model_output) / as.sigma;
  } else {
    eps = as.alpha * model_output + as.sigma * sample;
  }
  if (cfg_.thresholding) {
    auto x0 = (sample - as.sigma * eps) / as.alpha;
    x0 = detail::threshold_sample(x0, cfg_.dynamic_thresholding_ratio, cfg_.sample_max_value);
    eps = (sample - as.alpha * x0) / as.sigma;
  }
  return eps;
}

at::Tensor DPMSolverMultistepScheduler::first_order(const at::Tensor& m0, int i, const at::Tensor& sample) const {
  const auto t = alpha_sigma(sigma_at(i + 1)), s = alpha_sigma(sigma_at(i));
  const float h = t.lambda - s.lambda;
  if (cfg_.algorithm_type == "dpmsolver++") return (t.sigma / s.sigma) * sample - (t.alpha * (std::exp(-h) - 1.0f)) * m0;
  return (t.alpha / s.alpha) * sample - (t.sigma * (std::exp(h) - 1.0f)) * m0;
}

at::Tensor DPMSolverMultistepScheduler::second_order(int i, const at::Tensor& sample) const {
  const auto t = alpha_sigma(sigma_at(i + 1)), s0 = alpha_sigma(sigma_at(i)), s1 = alpha_sigma(sigma_at(i - 1));
  const auto& m0 = model_outputs_[model_outputs_.size() - 1];
  const auto& m1 = model_outputs_[model_outputs_.size() - 2];
  const float h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda;
  const float r0 = h0 / h;
  const auto& D0 = m0;
  auto D1 = (1.0f / r0) * (m0 - m1);
  if (cfg_.algorithm_type == "dpmsolver++") {
    const float c = t.alpha * (std::exp(-h) - 1.0f);
    if (cfg_.solver_type == "midpoint") return (t.sigma / s0.sigma) * sample - c * D0 - (0.5f * c) * D1;
    return (t.sigma / s0.sigma) * sample - c * D0 + (t.alpha * ((std::exp(-h) - 1.0f) / h + 1.0f)) * D1;
  }
  const float c = t.sigma * (std::exp(h) - 1.0f);
  if (cfg_.solver_type == "midpoint") return (t.alpha / s0.alpha) * sample - c * D0 - (0.5f * c) * D1;
  return (t.alpha / s0.alpha) * sample - c * D0 - (t.sigma * ((std::exp(h) - 1.0f) / h - 1.0f)) * D1;
}

at::Tensor DPMSolverMultistepScheduler::third_order(int i, const at::Tensor& sample) const {
  const auto t = alpha_sigma(sigma_at(i + 1)), s0 = alpha_sigma(sigma_at(i)), s1 = alpha_sigma(sigma_at(i - 1)),
             s2 = alpha_sigma(sigma_at(i - 2));
  const size_t n = model_outputs_.size();
  const auto &m0 = model_outputs_[n - 1], &m1 = model_outputs_[n - 2], &m2 = model_outputs_[n - 3];
  const float h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda, h1 = s1.lambda - s2.lambda;
  const float r0 = h0 / h, r1 = h1 / h;
  const auto& D0 = m0;
  auto D1_0 = (1.0f / r0) * (m0 - m1), D1_1 = (1.0f / r1) * (m1 - m2);
  auto D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1);
  auto D2 = (1.0f / (r0 + r1)) * (D1_0 - D1_1);
  if (cfg_.algorithm_type == "dpmsolver++") {
    const float e = std::exp(-h) - 1.0f;
    return (t.sigma / s0.sigma) * sample - (t.alpha * e) * D0 + (t.alpha * (e / h + 1.0f)) * D1 -
           (t.alpha * ((e + h) / (h * h) - 0.5f)) * D2;
  }
  const float e = std::exp(h) - 1.0f;
  return (t.alpha / s0.alpha) * sample - (t.sigma * e) * D0 - (t.sigma * (e / h - 1.0f)) * D1 -
         (t.sigma * ((e - h) / (h * h) - 0.5f)) * D2;
}

StepOutput DPMSolverMultistepScheduler::step(const at::Tensor& model_output, int i, const at::Tensor& sample_in,
                                             at::Generator*, const at::Tensor*) {
  check_index(i, "step");
  if (next_index_ >= 0 && i != next_index_)
    throw Error(fmt::format("DPMSolverMultistepScheduler::step: multistep state expects step {} next, got {}", next_index_, i));
  next_index_ = i + 1;
  const int len = num_steps();
  const bool lower_final = i == len - 1 && (cfg_.euler_at_final || (cfg_.lower_order_final && len < 15) ||
                                            cfg_.final_sigmas_type == "zero");
  const bool lower_second = i == len - 2 && cfg_.lower_order_final && len < 15;
  auto converted = convert_model_output(model_output, i, sample_in);
  model_outputs_.erase(model_outputs_.begin());
  model_outputs_.push_back(converted);
  auto sample = sample_in.to(torch::kFloat);
  at::Tensor prev;
  if (cfg_.solver_order == 1 || lower_order_nums_ < 1 || lower_final) prev = first_order(converted, i, sample);
  else if (cfg_.solver_order == 2 || lower_order_nums_ < 2 || lower_second) prev = second_order(i, sample);
  else prev = third_order(i, sample);
  if (lower_order_nums_ < cfg_.solver_order) ++lower_order_nums_;
  return {prev.to(converted.scalar_type()), converted};
}

at::Tensor DPMSolverMultistepScheduler::add_noise(const at::Tensor& original, const at::Tensor& noise,
                                                  const at::Tensor& timesteps) const {
  auto t = timesteps.to(torch::kCPU, torch::kDouble).flatten().contiguous();
  std::vector<float> a, s;
  for (int64_t k = 0; k < t.numel(); ++k) {
    // diffusers: the second match, the first, or the last step when the value is not in the schedule.
    std::vector<int> hits;
    for (int j = 0; j < num_steps(); ++j)
      if (timestep_values_[static_cast<size_t>(j)] == t.data_ptr<double>()[k]) hits.push_back(j);
    int idx = hits.empty() ? num_steps() - 1 : (hits.size() > 1 ? hits[1] : hits[0]);
    auto as = alpha_sigma(sigma_at(idx));
    a.push_back(as.alpha);
    s.push_back(as.sigma);
  }
  std::vector<int64_t> bshape(static_cast<size_t>(original.dim()), 1);
  bshape[0] = -1;
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  auto at_ = torch::tensor(a, opts).to(original.device(), original.scalar_type()).reshape(bshape);
  auto st = torch::tensor(s, opts).to(original.device(), original.scalar_type()).reshape(bshape);
  return at_ * original + st * noise;
}

}  // namespace clipgen::schedulers
