// The optimisation loop every training phase shares: AdamW with warm-up and cosine decay, gradient
// clipping, EMA weights, a progress bar (steps/s, ETA), the loss curve (CSV + PNG), and checkpoints every
// few minutes that a killed run resumes from bit-identically (parameters, EMA, AdamW moments and step
// counts; batches and noise are functions of the step, so nothing else is needed).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "configs/train_recipe.h"
#include "models/io/safetensors.h"

namespace torch::nn {
class Module;
}

namespace clipgen::train {

using NamedParams = std::vector<std::pair<std::string, at::Tensor>>;

// Parameters of `module` named "<prefix><name>" (appended to `out`).
void collect_params(torch::nn::Module& module, const std::string& prefix, NamedParams& out);

// One step's loss and the named parts logged beside it.
struct StepLoss {
  at::Tensor loss;                       // scalar with a graph
  std::map<std::string, double> parts;   // logged columns (e.g. "kl")
};

struct PhaseOptions {
  std::string name;                      // "vae" / "unet": file names and log prefix
  std::filesystem::path work_dir;
  configs::TrainPhase settings;
  double checkpoint_minutes = 5;
  double max_minutes = 0;                // stop (after a checkpoint) once this much time has passed; 0: run to the end
  int64_t stop_at_step = 0;              // stop (after a checkpoint) at this step; 0: run to the end
  std::string recipe_text;
  int64_t eval_every = 0;                // call `eval` every this many steps (and at the end); 0: never
};

class PhaseRunner {
public:
  PhaseRunner(PhaseOptions opt, NamedParams params);

  // Resumes from work_dir/<name>-state.safetensors when it exists (unless fresh). Returns the step to start at.
  int64_t resume(bool fresh);
  // Runs from the resumed step to settings.steps (or until max_minutes). `loss(step)` computes one step's loss;
  // `eval(step)` returns named figures logged to <name>-eval.csv. Returns true when the phase is complete.
  bool run(const std::function<StepLoss(int64_t)>& loss,
           const std::function<std::map<std::string, double>(int64_t)>& eval = nullptr);
  bool complete() const { return step_ >= opt_.settings.steps; }
  int64_t step() const { return step_; }
  double seconds() const { return seconds_; }  // training time over all sittings
  // The weights to export: the EMA shadow when the phase has one, else the trained parameters (by name).
  io::TensorMap export_weights() const;
  // Puts export_weights() into the live parameters (after training, for evaluation and export).
  void use_export_weights();
  static double lr_at(const configs::TrainPhase& p, int64_t step);

private:
  void save_state();
  void write_plot() const;

  PhaseOptions opt_;
  NamedParams params_;
  io::TensorMap ema_;
  struct Adam;
  std::shared_ptr<Adam> adam_;
  int64_t step_ = 0;
  double seconds_ = 0;
};

}  // namespace clipgen::train
