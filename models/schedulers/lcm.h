// LCMScheduler (diffusers 0.27.2): latent consistency sampling; each step returns `denoised` (in
// StepOutput::pred_original_sample) and re-noises it to the next timestep (no draw at the last step).
#pragma once
#include "models/schedulers/scheduler.h"

namespace clipgen::schedulers {

class LCMScheduler : public Scheduler {
public:
  explicit LCMScheduler(SchedulerConfig cfg);
  void set_timesteps(int num_inference_steps) override;
  StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample, at::Generator* gen = nullptr,
                  const at::Tensor* noise = nullptr) override;

private:
  float final_alpha_cumprod_ = 1.0f;
};

}  // namespace clipgen::schedulers
