// Diffusion schedulers behind one small interface, each matching its diffusers 0.27.2 class
// numerically (see docs/schedulers.md and tests/data/fixtures README section e).
//
//   auto cfg = SchedulerConfig::from_file(model_dir / "scheduler" / "scheduler_config.json");
//   auto s = make_scheduler_for_sampler(cfg, "dpmpp_2m", "karras");   // YAML sampler → class + overrides
//   s->set_timesteps(25);
//   x = x_T * s->init_noise_sigma();
//   for (int i = 0; i < s->num_steps(); ++i) {
//     auto eps = model(s->scale_model_input(x, i), s->timestep(i));
//     x = s->step(eps, i, x, &gen).prev_sample;
//   }
//
// Stepping is by index into timesteps() (no float timestep lookups); index_for_timestep() converts a
// timestep value the way diffusers does for callers that have one. Every random draw goes through the
// caller's at::Generator, or through an injected noise tensor (tests inject the noise a fixture recorded).
#pragma once
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

namespace clipgen::schedulers {

// Everything diffusers reads from scheduler_config.json for the six supported classes. Defaults depend
// on the class (defaults()); from_json() starts from the defaults of the file's `_class_name` and
// overlays the file's keys, which equals diffusers' `scheduler.config` after loading. Keys no
// supported class reads are ignored, as diffusers ignores them.
struct SchedulerConfig {
  std::string class_name;  // diffusers `_class_name`, e.g. "EulerDiscreteScheduler"
  std::string source;      // file the values came from (for messages); "" when built in code

  // Shared by all classes.
  int num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear | scaled_linear | squaredcos_cap_v2
  std::vector<double> trained_betas;     // non-empty overrides beta_schedule
  bool rescale_betas_zero_snr = false;
  std::string prediction_type = "epsilon";   // epsilon | v_prediction | sample
  std::string timestep_spacing = "leading";  // leading | linspace | trailing
  int steps_offset = 0;

  // DDIM / PNDM / LCM.
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995;
  double sample_max_value = 1.0;
  bool skip_prk_steps = false;  // PNDM: PLMS only

  // Euler family (and DPM-Solver's Karras option).
  bool use_karras_sigmas = false;
  std::optional<double> sigma_min, sigma_max;  // Karras range; schedule ends when absent
  std::string timestep_type = "discrete";      // discrete | continuous (0.25·ln σ, with v_prediction)
  std::string interpolation_type = "linear";   // linear | log_linear

  // DPM-Solver multistep.
  std::string algorithm_type = "dpmsolver++";  // dpmsolver++ | dpmsolver
  int solver_order = 2;
  std::string solver_type = "midpoint";  // midpoint | heun
  bool lower_order_final = true;
  bool euler_at_final = false;
  bool use_lu_lambdas = false;
  std::string final_sigmas_type = "zero";  // zero | sigma_min
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
  std::optional<std::string> variance_type;  // null | learned | learned_range

  // LCM.
  int original_inference_steps = 50;
  double timestep_scaling = 10.0;

  // The diffusers defaults of `class_name` (one of supported_classes(), else UnsupportedError).
  static SchedulerConfig defaults(const std::string& class_name);
  // Parses a scheduler_config.json object. Wrong value types throw ConfigError naming `source_file`
  // and the key; an unknown `_class_name` throws UnsupportedError. Values are checked by the scheduler.
  static SchedulerConfig from_json(const nlohmann::json& j, const std::string& source_file);
  static SchedulerConfig from_file(const std::filesystem::path& path);
  // The keys class_name's constructor takes, with their values (plus _class_name).
  nlohmann::json to_json() const;
  // diffusers' `NewClass.from_config(old.config)`: NewClass defaults, overlaid by every key of this
  // config that NewClass accepts.
  SchedulerConfig for_class(const std::string& new_class) const;
};

struct StepOutput {
  at::Tensor prev_sample;
  at::Tensor pred_original_sample;  // x̂₀ (LCM: `denoised`; DPM-Solver: the converted model output; PNDM: undefined)
};

class Scheduler {
public:
  // `class_name` is the diffusers class implemented; cfg.class_name is set to it.
  Scheduler(SchedulerConfig cfg, const char* class_name);
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const std::string& class_name() const { return cfg_.class_name; }
  const SchedulerConfig& config() const { return cfg_; }

  // Computes timesteps (and sigmas) for `num_inference_steps` and resets any multistep state.
  virtual void set_timesteps(int num_inference_steps) = 0;
  // int64 or float32, exactly as diffusers' `scheduler.timesteps`. Length num_steps().
  const at::Tensor& timesteps() const { return timesteps_; }
  // float32 with the trailing final sigma; undefined for DDIM, PNDM, LCM.
  const at::Tensor& sigmas() const { return sigmas_; }
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }  // float32 [num_train_timesteps]
  int num_steps() const { return static_cast<int>(timestep_values_.size()); }
  // timesteps()[i] as a number: what the denoising model receives as its timestep at step i.
  double timestep(int step_index) const;
  // diffusers' lookup of a timestep value (the second match when it occurs twice, as with PNDM).
  int index_for_timestep(double t) const;

  virtual double init_noise_sigma() const { return 1.0; }
  virtual at::Tensor scale_model_input(const at::Tensor& sample, int step_index) const { (void)step_index; return sample; }
  // One denoising step from step_index to step_index + 1. Random draws come from `noise` when given,
  // else from `gen`; a scheduler that must draw and has neither throws. Multistep schedulers (PNDM,
  // DPM-Solver) must be stepped in order after set_timesteps (the first index may be > 0).
  virtual StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample,
                          at::Generator* gen = nullptr, const at::Tensor* noise = nullptr) = 0;
  // Noises `original` to the given timesteps (one per batch element, values from timesteps(); the
  // discrete schedulers take train-timestep integers).
  virtual at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, const at::Tensor& timesteps) const;
  // diffusers' `order` (1 for all supported classes: one model call per step).
  virtual int order() const { return 1; }

protected:
  void check_index(int step_index, const char* what) const;
  // Throws UnsupportedError naming the config file and key.
  [[noreturn]] void unsupported(const std::string& key, const std::string& value, const std::string& allowed) const;
  void set_timestep_values(at::Tensor t);  // sets timesteps_ and timestep_values_
  float sigma_at(int i) const { return sigma_values_.at(static_cast<size_t>(i)); }
  void set_sigmas(at::Tensor s);            // float32; also fills sigma_values_
  float alpha_cumprod_at(int64_t t) const;  // alphas_cumprod[t] (t may be negative → python indexing)

  SchedulerConfig cfg_;
  at::Tensor betas_, alphas_cumprod_;  // float32
  std::vector<float> alphas_cumprod_values_;
  at::Tensor timesteps_, sigmas_;
  std::vector<double> timestep_values_;
  std::vector<float> sigma_values_;
};

// ---- helpers shared by the implementations (scheduler.cpp) ----
namespace detail {
// Betas as diffusers builds them (float32), after the optional zero-terminal-SNR rescale.
at::Tensor make_betas(const SchedulerConfig& cfg);
// numpy's round (half to even).
double np_round(double x);
// np.linspace(start, stop, num) in float64.
std::vector<double> np_linspace(double start, double stop, int num, bool endpoint = true);
// np.arange(start, stop, step) in float64 (length ceil((stop - start) / step), as numpy computes it).
std::vector<double> np_arange(double start, double stop, double step);
// np.interp(x, arange(len(fp)), fp) in float64.
double np_interp_index(double x, const std::vector<float>& fp);
// The Karras et al. (2022) schedule, ρ = 7, float64.
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n);
// diffusers' _sigma_to_t: fractional train timestep of `sigma` by log-sigma interpolation (float32 log table).
double sigma_to_t(double sigma, const std::vector<float>& log_sigmas);
// Sigma table sqrt((1 - ᾱ)/ᾱ) in float32, as diffusers computes it.
std::vector<float> sigma_table(const at::Tensor& alphas_cumprod);
// Dynamic thresholding (Imagen) of x̂₀, per batch element.
at::Tensor threshold_sample(const at::Tensor& x, double ratio, double max_value);
// sqrt(ᾱ)·x + sqrt(1-ᾱ)·noise for the given integer train timesteps.
at::Tensor add_noise_alphas(const at::Tensor& alphas_cumprod, const at::Tensor& original, const at::Tensor& noise,
                            const at::Tensor& timesteps);
// The noise a stochastic step uses: `noise` when given (shape-checked), else a draw from `gen` with
// model_output's shape (float32 CPU draw, then moved), else an error naming `who`.
at::Tensor draw_noise(const at::Tensor& like, at::Generator* gen, const at::Tensor* noise, const std::string& who);
}  // namespace detail

// Builds a scheduler by name: a YAML sampler name (ddim, pndm, euler, euler_ancestral, dpmpp_2m, lcm,
// svd_euler) or a diffusers class name (DDIMScheduler, …). `cfg` is a model's scheduler config; when the
// name selects another class the config is carried over as diffusers' from_config does, and the name's
// fixed settings are applied (see sampler_config()). Unknown name → UnsupportedError listing the names.
std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const SchedulerConfig& cfg);

// The config make_scheduler(name) uses, with `sigma_schedule` ("default" keeps the model config's
// choice, "karras" turns Karras sigmas on; only Euler and DPM++ 2M support it).
SchedulerConfig sampler_config(const SchedulerConfig& model_cfg, const std::string& name,
                               const std::string& sigma_schedule = "default");
std::unique_ptr<Scheduler> make_scheduler_for_sampler(const SchedulerConfig& model_cfg, const std::string& name,
                                                      const std::string& sigma_schedule = "default");

const std::vector<std::string>& sampler_names();     // ddim, pndm, euler, euler_ancestral, dpmpp_2m, lcm, svd_euler
const std::vector<std::string>& supported_classes();  // the six diffusers class names

}  // namespace clipgen::schedulers
