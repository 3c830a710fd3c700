// EulerDiscreteScheduler (diffusers 0.27.2), including the Stable Video Diffusion configuration:
// Karras sigmas between sigma_min and sigma_max, v_prediction and timestep_type "continuous"
// (the model receives 0.25·ln σ). Sigmas are interpolated in float64 from the float32 table.
#pragma once
#include <limits>

#include "models/schedulers/scheduler.h"

namespace clipgen::schedulers {

class EulerDiscreteScheduler : public Scheduler {
public:
  explicit EulerDiscreteScheduler(SchedulerConfig cfg);
  void set_timesteps(int num_inference_steps) override;
  // sqrt(σ_max² + 1) for leading spacing, σ_max for linspace / trailing (diffusers' rule).
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& sample, int step_index) const override;
  // Always draws one noise tensor from `gen` (when given), even with s_churn = 0 where it is unused,
  // so the generator advances exactly as in diffusers.
  StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample, at::Generator* gen = nullptr,
                  const at::Tensor* noise = nullptr) override;
  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, const at::Tensor& timesteps) const override;

  // Stochastic churn (Karras et al. 2022), step arguments in diffusers. Defaults: off.
  struct Churn {
    double s_churn = 0.0, s_tmin = 0.0, s_tmax = std::numeric_limits<double>::infinity(), s_noise = 1.0;
  };
  void set_churn(const Churn& c) { churn_ = c; }

private:
  Churn churn_;
};

}  // namespace clipgen::schedulers
