// Fixture runner for schedulers/: for each run folder (steps_<n>) it checks the schedule
// (timesteps, sigmas, init_noise_sigma, alphas_cumprod), replays the whole trajectory with the synthetic
// model a·tanh(x_in) + float32(b·t/1000), feeding the recorded noise_i to stochastic steps, and then
// feeds the recorded model_output_i and samples straight to step() ("step_only/…").
#include "parity/run_schedulers.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/safetensors.h"

namespace clipgen::parity {

namespace {

using schedulers::Scheduler;

const at::Tensor* find(const io::TensorMap& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}

void compare_opt(FixtureContext& ctx, const io::TensorMap& ref, const std::string& prefix, const std::string& name,
                 const at::Tensor& got, Tolerance tol) {
  const at::Tensor* r = find(ref, name);
  if (!r) return;
  if (!got.defined()) {
    ctx.fail(prefix + name, "the scheduler does not produce it");
    return;
  }
  ctx.compare(prefix + name, got, *r, tol);
}

void run_one(FixtureContext& ctx, const std::string& run, const nlohmann::json& spec,
             const schedulers::SchedulerConfig& cfg) {
  const auto dir = ctx.dir() / run;
  const io::TensorMap in = io::load_safetensors(dir / "inputs.safetensors");
  const io::TensorMap out = io::load_safetensors(dir / "outputs.safetensors");
  const std::string p = run + "/";
  const int n = spec.at("num_inference_steps").get<int>();
  const double a = ctx.fixture().at("model_fn").at("a").get<double>();
  const double b = ctx.fixture().at("model_fn").at("b").get<double>();
  auto noise_for = [&](int i) { return find(in, fmt::format("noise_{}", i)); };

  auto sched = schedulers::make_scheduler(cfg.class_name, cfg);
  sched->set_timesteps(n);

  // Schedule.
  if (const at::Tensor* ts = find(out, "timesteps")) {
    if (ts->scalar_type() != sched->timesteps().scalar_type())
      ctx.fail(p + "timesteps", fmt::format("dtype {} but the reference is {}", c10::toString(sched->timesteps().scalar_type()),
                                            c10::toString(ts->scalar_type())));
    else
      ctx.compare(p + "timesteps", sched->timesteps(), *ts,
                  ts->is_floating_point() ? Tolerance::schedule() : Tolerance::exact());
  }
  compare_opt(ctx, out, p, "sigmas", sched->sigmas(), Tolerance::schedule());
  compare_opt(ctx, out, p, "alphas_cumprod", sched->alphas_cumprod(), Tolerance::schedule());
  const auto init_sigma = static_cast<float>(sched->init_noise_sigma());
  compare_opt(ctx, out, p, "init_noise_sigma", at::scalar_tensor(init_sigma, at::kFloat), Tolerance::schedule());

  // Trajectory with the synthetic model.
  const at::Tensor& x_T = in.at("x_T");
  at::Tensor x = x_T * init_sigma;
  compare_opt(ctx, out, p, "sample_init", x, Tolerance::trajectory());
  const int steps = sched->num_steps();
  for (int i = 0; i < steps; ++i) {
    auto x_in = sched->scale_model_input(x, i);
    auto eps = a * torch::tanh(x_in) + static_cast<float>(b * sched->timestep(i) / 1000.0);
    auto r = sched->step(eps, i, x, nullptr, noise_for(i));
    compare_opt(ctx, out, p, fmt::format("model_input_{}", i), x_in, Tolerance::trajectory());
    compare_opt(ctx, out, p, fmt::format("model_output_{}", i), eps, Tolerance::trajectory());
    compare_opt(ctx, out, p, fmt::format("prev_sample_{}", i), r.prev_sample, Tolerance::trajectory());
    compare_opt(ctx, out, p, fmt::format("pred_original_sample_{}", i), r.pred_original_sample, Tolerance::trajectory());
    compare_opt(ctx, out, p, fmt::format("denoised_{}", i), r.pred_original_sample, Tolerance::trajectory());
    x = r.prev_sample;
  }
  if (find(out, fmt::format("prev_sample_{}", steps)))
    ctx.fail(p + "num_steps", fmt::format("the reference has more than {} steps", steps));

  // step() on its own: recorded model outputs and samples, a fresh scheduler (multistep state rebuilt in order).
  auto fresh = schedulers::make_scheduler(cfg.class_name, cfg);
  fresh->set_timesteps(n);
  for (int i = 0; i < steps; ++i) {
    const at::Tensor* mo = find(out, fmt::format("model_output_{}", i));
    const at::Tensor* s = find(out, i == 0 ? std::string("sample_init") : fmt::format("prev_sample_{}", i - 1));
    if (!mo || !s) break;
    auto r = fresh->step(*mo, i, *s, nullptr, noise_for(i));
    compare_opt(ctx, out, p + "step_only/", fmt::format("prev_sample_{}", i), r.prev_sample, Tolerance::trajectory());
  }
}

}  // namespace

void run_scheduler_fixture(FixtureContext& ctx, const std::function<void(schedulers::SchedulerConfig&)>& mutate) {
  const std::string cfg_name = ctx.fixture().value("config", std::string("scheduler_config.json"));
  auto cfg = schedulers::SchedulerConfig::from_file(ctx.dir() / cfg_name);
  if (!ctx.class_name().empty() && ctx.class_name() != cfg.class_name)
    throw Error(fmt::format("{}: fixture class {} but {} names {}", ctx.dir().string(), ctx.class_name(), cfg_name, cfg.class_name));
  if (mutate) mutate(cfg);
  const auto& runs = ctx.fixture().at("runs");
  if (!runs.is_object() || runs.empty()) throw Error(ctx.dir().string() + ": fixture.json has no 'runs'");
  for (auto it = runs.begin(); it != runs.end(); ++it) run_one(ctx, it.key(), it.value(), cfg);
}

void register_scheduler_runners() {
  for (const auto& cls : schedulers::supported_classes()) runners()[cls] = [](FixtureContext& ctx) { run_scheduler_fixture(ctx); };
}

}  // namespace clipgen::parity
