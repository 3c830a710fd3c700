// DPMSolverMultistepScheduler (diffusers 0.27.2): DPM-Solver++ / DPM-Solver, orders 1-3, midpoint or
// heun second-order update, lower_order_final, final_sigmas_type zero | sigma_min, optional Karras
// sigmas (timesteps rounded to integers) or Lu lambdas. The SDE variants are not supported.
#pragma once
#include <vector>

#include "models/schedulers/scheduler.h"

namespace clipgen::schedulers {

class DPMSolverMultistepScheduler : public Scheduler {
public:
  explicit DPMSolverMultistepScheduler(SchedulerConfig cfg);
  void set_timesteps(int num_inference_steps) override;
  StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample, at::Generator* gen = nullptr,
                  const at::Tensor* noise = nullptr) override;
  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, const at::Tensor& timesteps) const override;

private:
  at::Tensor convert_model_output(const at::Tensor& model_output, int i, const at::Tensor& sample) const;
  at::Tensor first_order(const at::Tensor& m0, int i, const at::Tensor& sample) const;
  at::Tensor second_order(int i, const at::Tensor& sample) const;
  at::Tensor third_order(int i, const at::Tensor& sample) const;

  std::vector<at::Tensor> model_outputs_;  // the last solver_order converted outputs, oldest first
  int lower_order_nums_ = 0;
  int next_index_ = -1;
};

}  // namespace clipgen::schedulers
