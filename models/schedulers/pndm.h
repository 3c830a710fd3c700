// PNDMScheduler (diffusers 0.27.2): pseudo Runge-Kutta warm-up then linear multistep (PLMS); with
// skip_prk_steps (the Stable Diffusion setting) PLMS only, with n+1 timesteps, the second repeated.
#pragma once
#include <vector>

#include "models/schedulers/scheduler.h"

namespace clipgen::schedulers {

class PNDMScheduler : public Scheduler {
public:
  explicit PNDMScheduler(SchedulerConfig cfg);
  void set_timesteps(int num_inference_steps) override;
  StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample, at::Generator* gen = nullptr,
                  const at::Tensor* noise = nullptr) override;

private:
  StepOutput step_prk(const at::Tensor& model_output, int64_t timestep, const at::Tensor& sample);
  StepOutput step_plms(const at::Tensor& model_output, int64_t timestep, const at::Tensor& sample);
  at::Tensor prev_sample(const at::Tensor& sample, int64_t t, int64_t prev_t, at::Tensor model_output) const;

  int num_inference_steps_ = 0;
  float final_alpha_cumprod_ = 1.0f;
  size_t num_prk_ = 0;  // leading PRK entries of timesteps
  std::vector<int64_t> prk_timesteps_;
  // Multistep state, reset by set_timesteps.
  int counter_ = 0;
  int next_index_ = -1;
  at::Tensor cur_model_output_;  // PRK running sum (undefined = 0)
  at::Tensor cur_sample_;
  std::vector<at::Tensor> ets_;
};

}  // namespace clipgen::schedulers
