#include "train/trainer.h"

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/png.h"
#include "models/rng.h"
#include "scenes/caption.h"
#include "scenes/judge.h"
#include "train/export.h"
#include "train/phase_runner.h"
#include "train/sampler.h"
#include "train/scene_batch.h"

namespace clipgen::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

configs::TrainPhase with_steps(configs::TrainPhase p, int64_t steps) {
  if (steps > 0) p.steps = steps;
  return p;
}

PhaseOptions phase_options(const configs::TrainRecipe& r, const TrainOptions& o, const char* name,
                           const configs::TrainPhase& p) {
  PhaseOptions po;
  po.name = name;
  po.work_dir = r.work_dir;
  po.settings = with_steps(p, o.steps);
  po.checkpoint_minutes = r.checkpoint_minutes;
  po.max_minutes = o.max_minutes;
  po.stop_at_step = o.stop_at_step;
  po.recipe_text = r.text;
  return po;
}

uint64_t step_seed(const configs::TrainRecipe& r, uint64_t stream, int64_t step) {
  return scenes::mix_seed(scenes::mix_seed(r.seed, stream ^ 0xD1FF), static_cast<uint64_t>(step));
}

// Fraction of rows whose judged attribute equals the truth.
struct JudgeScore {
  int n = 0, sky = 0, ground = 0, object = 0;
  void add(const scenes::Judgement& j, const scenes::Scene& s) {
    ++n;
    sky += j.sky == s.sky;
    ground += j.ground == s.ground;
    object += j.object && *j.object == s.colour;
  }
  JudgeScore& operator+=(const JudgeScore& o) {
    n += o.n, sky += o.sky, ground += o.ground, object += o.object;
    return *this;
  }
  std::map<std::string, double> figures(const std::string& prefix = "") const {
    const double d = std::max(1, n);
    return {{prefix + "sky", sky / d}, {prefix + "ground", ground / d}, {prefix + "object", object / d}};
  }
};

// Held-out evaluation prompts: scenes of the evaluation stream without extras, their canonical captions.
struct EvalSet {
  std::vector<scenes::Scene> scenes;
  std::vector<std::string> prompts;
  std::vector<uint64_t> seeds;
};
EvalSet eval_set(const configs::TrainRecipe& r, int n) {
  EvalSet e;
  for (int k = 0; k < n; ++k) {
    auto s = scenes::sample_scene(step_seed(r, kEvalStream, 1'000'000 + k));
    s.sun = s.moon = s.clouds = false;
    e.scenes.push_back(s);
    e.prompts.push_back(scenes::caption(s, static_cast<uint64_t>(k)));
    e.seeds.push_back(step_seed(r, kEvalStream, 2'000'000 + k) >> 1);
  }
  return e;
}

JudgeScore judge_images(const at::Tensor& images_u8, const std::vector<scenes::Scene>& truth) {
  JudgeScore score;
  const auto im = images_u8.contiguous();
  const int h = static_cast<int>(im.size(1)), w = static_cast<int>(im.size(2));
  for (int64_t i = 0; i < im.size(0); ++i)
    score.add(scenes::judge(im[i].data_ptr<uint8_t>(), w, h), truth[static_cast<size_t>(i)]);
  return score;
}

template <class Model, class Config>
Model build(const std::string& config_text, const char* what) {
  const auto cfg = Config::from_json(json::parse(config_text), std::string("recipe ") + what + ".config");
  return Model(cfg);
}

// 1 / std of the encoder's latents (mode) over four batches of the evaluation stream.
double measure_scaling_factor(AutoencoderKL& vae, SceneBatcher& batcher, c10::Device dev) {
  torch::NoGradGuard ng;
  std::vector<at::Tensor> zs;
  for (int k = 0; k < 4; ++k) zs.push_back(vae->encode(batcher.make(kEvalStream, 100 + k, 16).pixels.to(dev)).mean.flatten());
  return 1.0 / torch::cat(zs).std().item<double>();
}

}  // namespace

TrainResult train_keyframe_model(const configs::TrainRecipe& r, const TrainOptions& o) {
  const c10::Device dev(o.device);
  fs::create_directories(r.work_dir);
  TrainResult result;
  SceneBatcher batcher(r);
  const bool run_vae = o.phase == "all" || o.phase == "vae";
  const bool run_unet = o.phase == "all" || o.phase == "unet";

  // ---- phase 1: AutoencoderKL ----
  torch::manual_seed(static_cast<int64_t>(r.seed & 0x7FFFFFFF));  // parameter initialisation
  auto vae = build<AutoencoderKL, AutoencoderKLConfig>(r.vae.model_config, "vae");
  vae->to(dev);
  NamedParams vae_params;
  collect_params(*vae, "", vae_params);
  PhaseRunner vae_runner(phase_options(r, o, "vae", r.vae), vae_params);
  vae_runner.resume(o.fresh && run_vae);
  if (!vae_runner.complete()) {
    if (!run_vae) throw UsageError(fmt::format("the VAE phase is not finished ({} of {} steps): run --phase vae or all first",
                                               vae_runner.step(), r.vae.steps));
    vae->train();
    const double ow = r.vae.object_weight, klw = r.vae.kl_weight;
    auto loss = [&](int64_t step) {
      auto b = batcher.make(kVaeStream, step, r.vae.batch);
      const auto x = b.pixels.to(dev), mask = b.object_mask.to(dev);
      auto post = vae->encode(x);
      auto gen = make_generator(step_seed(r, kVaeStream, step));
      const auto z = post.mean + post.std * randn(post.mean.sizes(), gen, dev);
      const auto rec = vae->decode(z);
      const auto d = rec - x;
      const auto w = 1 + (ow - 1) * mask;
      const auto rec_loss = (w * (d.abs() + d.pow(2))).mean();
      const auto kl = 0.5 * (post.mean.pow(2) + post.std.pow(2) - 1 - post.logvar).sum({1, 2, 3}).mean();
      StepLoss l{rec_loss + klw * kl, {{"rec", rec_loss.item<double>()}, {"kl", kl.item<double>()}}};
      return l;
    };
    auto eval = [&](int64_t) {
      torch::NoGradGuard ng;
      vae->eval();
      JudgeScore rec_score, truth_score;
      for (int k = 0; k < 3; ++k) {
        auto b = batcher.make(kEvalStream, k, 16);
        const auto rec = vae->decode(vae->encode(b.pixels.to(dev)).mean);
        rec_score += judge_images(to_u8_nhwc(rec), b.scenes);
        truth_score += judge_images(to_u8_nhwc(b.pixels), b.scenes);
      }
      vae->train();
      auto f = rec_score.figures("rec_");
      f["truth_object"] = truth_score.object / static_cast<double>(std::max(1, truth_score.n));
      return f;
    };
    if (!vae_runner.run(loss, eval)) {
      result.vae_steps = vae_runner.step();
      return result;
    }
  }
  result.vae_steps = vae_runner.step();
  result.vae_seconds = vae_runner.seconds();
  if (o.phase == "vae") return result;
  vae_runner.use_export_weights();
  vae->eval();
  for (auto& [_, t] : vae_params) t.set_requires_grad(false);
  const double sf = measure_scaling_factor(vae, batcher, dev);
  spdlog::info("VAE latent scaling factor {:.5f}", sf);

  // ---- phase 2: UNet2DConditionModel + CLIPTextModel ----
  torch::manual_seed(static_cast<int64_t>((r.seed + 1) & 0x7FFFFFFF));
  auto tokenizer = CLIPTokenizer::from_folder(tokenizer_data_dir());
  auto te = build<CLIPTextModel, CLIPTextConfig>(r.text_encoder_config, "text_encoder");
  auto unet = build<UNet2DConditionModel, UNet2DConditionConfig>(r.unet.model_config, "unet");
  te->to(dev);
  unet->to(dev);
  NamedParams lparams;
  collect_params(*unet, "unet.", lparams);
  collect_params(*te, "text_encoder.", lparams);
  auto uopt = phase_options(r, o, "unet", r.unet);
  uopt.eval_every = o.eval_every;
  PhaseRunner unet_runner(uopt, lparams);
  unet_runner.resume(o.fresh && run_unet);
  const auto sched_cfg = schedulers::SchedulerConfig::from_json(json::parse(r.scheduler_config), "recipe scheduler");
  const auto alphas = schedulers::detail::make_betas(sched_cfg).neg().add(1).cumprod(0).to(torch::kFloat).to(dev);
  const bool v_pred = sched_cfg.prediction_type == "v_prediction";
  KeyframeModel km{&tokenizer, te, unet, vae, sched_cfg, sf};
  const auto evals = eval_set(r, 24);

  auto judge_samples = [&](int steps) {
    SampleOptions so;
    so.width = r.width;
    so.height = r.height;
    so.steps = steps;
    so.guidance = r.sample_guidance;
    return judge_images(sample_images(km, evals.prompts, evals.seeds, so), evals.scenes);
  };

  const bool export_partial = o.phase == "export" && !unet_runner.complete() && unet_runner.step() > 0;
  if (export_partial)
    spdlog::warn("exporting the UNet phase's last checkpoint: step {} of {} (training goes on when rerun)", unet_runner.step(),
                 r.unet.steps);
  if (!unet_runner.complete() && !export_partial) {
    if (!run_unet) throw UsageError(fmt::format("the UNet phase is not finished ({} of {} steps): run --phase unet or all first",
                                                unet_runner.step(), r.unet.steps));
    unet->train();
    te->train();
    const double ow = r.unet.object_weight;
    const int64_t T = sched_cfg.num_train_timesteps;
    auto loss = [&](int64_t step) {
      auto b = batcher.make(kUNetStream, step, r.unet.batch);
      at::Tensor z, w;
      {
        torch::NoGradGuard ng;
        z = vae->encode(b.pixels.to(dev)).mean * sf;
        const auto ml = torch::adaptive_avg_pool2d(b.object_mask.to(dev), {z.size(2), z.size(3)});
        w = 1 + (ow - 1) * ml;
      }
      const auto ids = tokenizer.encode_batch(b.captions).input_ids.to(dev);
      const auto ctx = te->forward(ids).last_hidden_state;
      auto gen = make_generator(step_seed(r, kUNetStream, step));
      const auto t = torch::randint(0, T, {z.size(0)}, gen, torch::TensorOptions().dtype(torch::kLong)).to(dev);
      const auto noise = randn(z.sizes(), gen, dev);
      const auto ac = alphas.index_select(0, t).view({-1, 1, 1, 1});
      const auto sa = ac.sqrt(), so = (1 - ac).sqrt();
      const auto noisy = sa * z + so * noise;
      const auto target = v_pred ? sa * noise - so * z : noise;
      const auto pred = unet->forward(noisy, t, ctx);
      const auto err = (pred - target).pow(2);
      const auto l = (w * err).mean();
      StepLoss out{l, {{"mse", err.mean().item<double>()}}};
      return out;
    };
    auto eval = [&](int64_t) {
      unet->eval();
      te->eval();
      auto f = judge_samples(12).figures();
      unet->train();
      te->train();
      return f;
    };
    if (!unet_runner.run(loss, eval)) {
      result.unet_steps = unet_runner.step();
      return result;
    }
  }
  result.unet_steps = unet_runner.step();
  result.unet_seconds = unet_runner.seconds();
  if (o.phase == "vae" || o.phase == "unet") return result;

  // ---- export, sample grid ----
  unet_runner.use_export_weights();
  unet->eval();
  te->eval();
  ExportedComponents c;
  c.name = r.name;
  c.text_encoder_config = r.text_encoder_config;
  c.unet_config = r.unet.model_config;
  c.vae_config = r.vae.model_config;
  c.scheduler_config = r.scheduler_config;
  c.vae = vae_runner.export_weights();
  c.scaling_factor = sf;
  for (const auto& [k, v] : unet_runner.export_weights()) {
    if (k.rfind("unet.", 0) == 0) c.unet[k.substr(5)] = v;
    if (k.rfind("text_encoder.", 0) == 0) c.text_encoder[k.substr(13)] = v;
  }
  export_keyframe_pipeline(r.output, c);
  spdlog::info("exported {} ({} + {} steps, {:.1f} + {:.1f} min)", r.output.string(), result.vae_steps, result.unet_steps,
               result.vae_seconds / 60, result.unet_seconds / 60);

  SampleOptions so;
  so.width = r.width;
  so.height = r.height;
  so.steps = r.sample_steps;
  so.guidance = r.sample_guidance;
  std::vector<uint64_t> seeds;
  for (size_t i = 0; i < r.sample_prompts.size(); ++i) seeds.push_back(1000 + i);
  const auto imgs = sample_images(km, r.sample_prompts, seeds, so);
  int gw = 0, gh = 0;
  const auto grid = tile_grid(imgs, 8, gw, gh);
  write_png_rgb(r.work_dir / "samples.png", grid.data(), gw, gh);
  std::ofstream txt(r.work_dir / "samples.txt");
  for (size_t i = 0; i < r.sample_prompts.size(); ++i) txt << i << "\tseed " << seeds[i] << "\t" << r.sample_prompts[i] << "\n";
  const auto& st = batcher.stats();
  spdlog::info("data: {} scenes used, {} refused (object hidden or too small), {} flipped, {} captions dropped", st.scenes,
               st.dropped_hidden, st.flipped, st.captions_dropped);
  result.complete = !export_partial;
  return result;
}

}  // namespace clipgen::train
