#include "models/schedulers/pndm.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::schedulers {

PNDMScheduler::PNDMScheduler(SchedulerConfig cfg) : Scheduler(std::move(cfg), "PNDMScheduler") {
  if (cfg_.prediction_type == "sample") unsupported("prediction_type", "sample", "epsilon, v_prediction");
  final_alpha_cumprod_ = cfg_.set_alpha_to_one ? 1.0f : alphas_cumprod_values_.front();
}

void PNDMScheduler::set_timesteps(int n) {
  const int N = cfg_.num_train_timesteps;
  if (n < 1 || n > N) throw Error(fmt::format("PNDMScheduler: num_inference_steps {} must be in [1, {}]", n, N));
  num_inference_steps_ = n;
  // Ascending base schedule (numpy semantics).
  std::vector<int64_t> base;
  if (cfg_.timestep_spacing == "linspace") {
    for (double v : detail::np_linspace(0, N - 1, n)) base.push_back(static_cast<int64_t>(detail::np_round(v)));
  } else if (cfg_.timestep_spacing == "leading") {
    const int64_t ratio = N / n;
    for (int i = 0; i < n; ++i) base.push_back(i * ratio + cfg_.steps_offset);
  } else {  // trailing
    auto r = detail::np_arange(N, 0, -static_cast<double>(N) / n);
    for (auto it = r.rbegin(); it != r.rend(); ++it) base.push_back(static_cast<int64_t>(detail::np_round(*it)) - 1);
  }
  std::vector<int64_t> prk, plms;
  const auto len = static_cast<int64_t>(base.size());
  if (cfg_.skip_prk_steps) {
    // base[:-1] + base[-2:-1] + base[-1:], reversed: n + 1 entries, the second one repeated.
    std::vector<int64_t> seq(base.begin(), base.end() - 1);
    if (len >= 2) seq.push_back(base[static_cast<size_t>(len - 2)]);
    seq.push_back(base.back());
    plms.assign(seq.rbegin(), seq.rend());
  } else {
    // Runge-Kutta warm-up over the last 4 base timesteps (each with its half-step), then PLMS.
    const int order = 4;
    if (len < order) throw Error(fmt::format("PNDMScheduler: PRK steps need at least {} inference steps (got {})", order, n));
    const int64_t half = N / n / 2;
    std::vector<int64_t> rep;  // base[-4:].repeat(2) + tile([0, half], 4)
    for (int64_t k = len - order; k < len; ++k) {
      rep.push_back(base[static_cast<size_t>(k)]);
      rep.push_back(base[static_cast<size_t>(k)] + half);
    }
    std::vector<int64_t> twice;  // rep[:-1].repeat(2)[1:-1]
    for (size_t k = 0; k + 1 < rep.size(); ++k) {
      twice.push_back(rep[k]);
      twice.push_back(rep[k]);
    }
    std::vector<int64_t> mid(twice.begin() + 1, twice.end() - 1);
    prk.assign(mid.rbegin(), mid.rend());
    for (int64_t k = len - 4; k >= 0; --k) plms.push_back(base[static_cast<size_t>(k)]);  // base[:-3][::-1]
  }
  prk_timesteps_ = prk;
  num_prk_ = prk.size();
  std::vector<int64_t> all = prk;
  all.insert(all.end(), plms.begin(), plms.end());
  set_timestep_values(torch::tensor(all, torch::kLong));
  counter_ = 0;
  next_index_ = -1;
  cur_model_output_ = at::Tensor();
  cur_sample_ = at::Tensor();
  ets_.clear();
}

StepOutput PNDMScheduler::step(const at::Tensor& model_output, int i, const at::Tensor& sample, at::Generator*,
                               const at::Tensor*) {
  check_index(i, "step");
  if (next_index_ >= 0 && i != next_index_)
    throw Error(fmt::format("PNDMScheduler::step: multistep state expects step {} next, got {}", next_index_, i));
  next_index_ = i + 1;
  const auto t = static_cast<int64_t>(timestep(i));
  if (static_cast<size_t>(counter_) < num_prk_ && !cfg_.skip_prk_steps) return step_prk(model_output, t, sample);
  return step_plms(model_output, t, sample);
}

StepOutput PNDMScheduler::step_prk(const at::Tensor& model_output, int64_t timestep, const at::Tensor& sample) {
  const int64_t diff = counter_ % 2 ? 0 : cfg_.num_train_timesteps / num_inference_steps_ / 2;
  const int64_t prev_t = timestep - diff;
  const int64_t t = prk_timesteps_[static_cast<size_t>(counter_ / 4 * 4)];
  auto acc = [&](double w) {
    auto term = w * model_output;
    cur_model_output_ = cur_model_output_.defined() ? cur_model_output_ + term : term;
  };
  at::Tensor mo = model_output;
  if (counter_ % 4 == 0) {
    acc(1.0 / 6);
    ets_.push_back(model_output);
    cur_sample_ = sample;
  } else if ((counter_ - 1) % 4 == 0 || (counter_ - 2) % 4 == 0) {
    acc(1.0 / 3);
  } else {
    mo = (cur_model_output_.defined() ? cur_model_output_ : torch::zeros_like(model_output)) + (1.0 / 6) * model_output;
    cur_model_output_ = at::Tensor();
  }
  const at::Tensor& cur = cur_sample_.defined() ? cur_sample_ : sample;
  auto prev = prev_sample(cur, t, prev_t, mo);
  ++counter_;
  return {prev, at::Tensor()};
}

StepOutput PNDMScheduler::step_plms(const at::Tensor& model_output, int64_t timestep, const at::Tensor& sample) {
  if (!cfg_.skip_prk_steps && ets_.size() < 3)
    throw Error("PNDMScheduler: PLMS steps need the PRK warm-up first (at least 12 PRK steps)");
  const int64_t stride = cfg_.num_train_timesteps / num_inference_steps_;
  int64_t prev_t = timestep - stride;
  if (counter_ != 1) {
    if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
    ets_.push_back(model_output);
  } else {
    prev_t = timestep;
    timestep = timestep + stride;
  }
  at::Tensor mo, x = sample;
  const size_t n = ets_.size();
  if (n == 1 && counter_ == 0) {
    mo = model_output;
    cur_sample_ = sample;
  } else if (n == 1 && counter_ == 1) {
    mo = (model_output + ets_.back()) / 2;
    x = cur_sample_;
    cur_sample_ = at::Tensor();
  } else if (n == 2) {
    mo = (3 * ets_[n - 1] - ets_[n - 2]) / 2;
  } else if (n == 3) {
    mo = (23 * ets_[n - 1] - 16 * ets_[n - 2] + 5 * ets_[n - 3]) / 12;
  } else {
    mo = (1.0 / 24) * (55 * ets_[n - 1] - 59 * ets_[n - 2] + 37 * ets_[n - 3] - 9 * ets_[n - 4]);
  }
  auto prev = prev_sample(x, timestep, prev_t, mo);
  ++counter_;
  return {prev, at::Tensor()};
}

// Formula (9) of the PNDM paper: x_{t-δ} from x_t and ε.
at::Tensor PNDMScheduler::prev_sample(const at::Tensor& sample, int64_t t, int64_t prev_t, at::Tensor mo) const {
  const float a_t = alpha_cumprod_at(t);
  const float a_prev = prev_t >= 0 ? alpha_cumprod_at(prev_t) : final_alpha_cumprod_;
  const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
  if (cfg_.prediction_type == "v_prediction") mo = std::sqrt(a_t) * mo + std::sqrt(b_t) * sample;
  const float sample_coeff = std::sqrt(a_prev / a_t);
  const float denom = a_t * std::sqrt(b_prev) + std::sqrt(a_t * b_t * a_prev);
  return sample_coeff * sample - (a_prev - a_t) * mo / denom;
}

}  // namespace clipgen::schedulers
