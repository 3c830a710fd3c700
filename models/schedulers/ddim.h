// DDIMScheduler (diffusers 0.27.2): deterministic for eta = 0; eta > 0 adds σ_t-scaled noise.
#pragma once
#include "models/schedulers/scheduler.h"

namespace clipgen::schedulers {

class DDIMScheduler : public Scheduler {
public:
  explicit DDIMScheduler(SchedulerConfig cfg);
  void set_timesteps(int num_inference_steps) override;
  StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample, at::Generator* gen = nullptr,
                  const at::Tensor* noise = nullptr) override;
  // DDIM's η (0 = deterministic DDIM, 1 = DDPM-like); a step argument in diffusers, a setting here.
  void set_eta(double eta) { eta_ = eta; }
  double eta() const { return eta_; }

private:
  int num_inference_steps_ = 0;
  float final_alpha_cumprod_ = 1.0f;
  double eta_ = 0.0;
};

}  // namespace clipgen::schedulers
