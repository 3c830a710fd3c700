// EulerAncestralDiscreteScheduler (diffusers 0.27.2): Euler step to σ_down plus fresh noise·σ_up.
#pragma once
#include "models/schedulers/scheduler.h"

namespace clipgen::schedulers {

class EulerAncestralDiscreteScheduler : public Scheduler {
public:
  explicit EulerAncestralDiscreteScheduler(SchedulerConfig cfg);
  void set_timesteps(int num_inference_steps) override;
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& sample, int step_index) const override;
  // Draws one noise tensor per step (needs `gen` or `noise`).
  StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample, at::Generator* gen = nullptr,
                  const at::Tensor* noise = nullptr) override;
  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, const at::Tensor& timesteps) const override;
};

}  // namespace clipgen::schedulers
