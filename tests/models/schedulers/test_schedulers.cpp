// Scheduler config parsing, the sampler-name mapping, and step() behaviour against recorded diffusers data.
// (The full fixture trajectories run through `clipgen fixture check` in tests/parity/test_schedulers.cpp.)
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/safetensors.h"
#include "models/rng.h"
#include "models/schedulers/euler_discrete.h"
#include "models/schedulers/scheduler.h"
#include "tests/test_util.h"

using namespace clipgen;
using namespace clipgen::schedulers;

namespace {

SchedulerConfig fixture_config(const std::string& name) {
  return SchedulerConfig::from_file(test::fixture_dir("schedulers/" + name) / "scheduler_config.json");
}

io::TensorMap outputs(const std::string& name, int steps) {
  return io::load_safetensors(test::fixture_dir("schedulers/" + name) / ("steps_" + std::to_string(steps)) / "outputs.safetensors");
}

}  // namespace

TEST(SchedulerConfig, ParsesFixtureConfigsIncludingPythonInfinity) {
  auto c = fixture_config("dpmpp_2m");
  EXPECT_EQ(c.class_name, "DPMSolverMultistepScheduler");
  EXPECT_EQ(c.beta_schedule, "scaled_linear");
  EXPECT_DOUBLE_EQ(c.beta_start, 0.00085);
  EXPECT_EQ(c.steps_offset, 1);
  EXPECT_EQ(c.timestep_spacing, "linspace");
  EXPECT_TRUE(std::isinf(c.lambda_min_clipped) && c.lambda_min_clipped < 0);
  EXPECT_FALSE(c.variance_type.has_value());

  auto svd = fixture_config("svd_euler");
  EXPECT_EQ(svd.prediction_type, "v_prediction");
  EXPECT_EQ(svd.timestep_type, "continuous");
  ASSERT_TRUE(svd.sigma_min && svd.sigma_max);
  EXPECT_DOUBLE_EQ(*svd.sigma_max, 700.0);
  EXPECT_TRUE(svd.use_karras_sigmas);
}

TEST(SchedulerConfig, ClassDefaultsApplyToMissingKeys) {
  auto j = nlohmann::json::parse(R"({"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear"})");
  auto c = SchedulerConfig::from_json(j, "x.json");
  EXPECT_FALSE(c.set_alpha_to_one);  // PNDM's default, unlike DDIM's
  EXPECT_EQ(c.timestep_spacing, "leading");
  auto e = SchedulerConfig::from_json(nlohmann::json::parse(R"({"_class_name": "EulerDiscreteScheduler"})"), "");
  EXPECT_EQ(e.timestep_spacing, "linspace");
  auto l = SchedulerConfig::from_json(nlohmann::json::parse(R"({"_class_name": "LCMScheduler"})"), "");
  EXPECT_EQ(l.beta_schedule, "scaled_linear");
  EXPECT_FALSE(l.clip_sample);
}

TEST(SchedulerConfig, TypeErrorsNameFileAndKey) {
  auto j = nlohmann::json::parse(R"({"_class_name": "DDIMScheduler", "steps_offset": "one"})");
  auto msg = test::error_message<std::exception>([&] { SchedulerConfig::from_json(j, "model/scheduler/scheduler_config.json"); });
  EXPECT_NE(msg.find("model/scheduler/scheduler_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'steps_offset'"), std::string::npos) << msg;
  EXPECT_THROW(SchedulerConfig::from_json(j, "f.json"), ConfigError);

  auto b = nlohmann::json::parse(R"({"_class_name": "DDIMScheduler", "clip_sample": 1})");
  msg = test::error_message<std::exception>([&] { SchedulerConfig::from_json(b, "f.json"); });
  EXPECT_NE(msg.find("'clip_sample'"), std::string::npos) << msg;
}

TEST(SchedulerConfig, UnknownClassAndMissingClassAreErrors) {
  auto msg = test::error_message<std::exception>([] { SchedulerConfig::from_json(nlohmann::json::parse(R"({"_class_name": "UniPCMultistepScheduler"})"), "s.json"); });
  EXPECT_NE(msg.find("s.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("UniPCMultistepScheduler"), std::string::npos) << msg;
  EXPECT_NE(msg.find("DDIMScheduler"), std::string::npos) << msg;  // lists what is supported
  msg = test::error_message<std::exception>([] { SchedulerConfig::from_json(nlohmann::json::parse(R"({"beta_start": 0.1})"), "s.json"); });
  EXPECT_NE(msg.find("_class_name"), std::string::npos) << msg;
}

TEST(SchedulerConfig, UnsupportedValuesNameTheKey) {
  auto c = fixture_config("ddim");
  c.beta_schedule = "sigmoid";
  auto msg = test::error_message<std::exception>([&] { make_scheduler("ddim", c); });
  EXPECT_NE(msg.find("beta_schedule"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scheduler_config.json"), std::string::npos) << msg;
  c = fixture_config("ddim");
  c.prediction_type = "flow";
  msg = test::error_message<std::exception>([&] { make_scheduler("ddim", c); });
  EXPECT_NE(msg.find("prediction_type"), std::string::npos) << msg;
  EXPECT_THROW(make_scheduler("euler_ancestral", [] {
                 auto e = fixture_config("euler_ancestral");
                 e.prediction_type = "sample";
                 return e;
               }()),
               UnsupportedError);
}

TEST(SchedulerFactory, UnknownSamplerListsValidNames) {
  auto msg = test::error_message<std::exception>([] { make_scheduler("heun", fixture_config("euler")); });
  for (const auto& n : sampler_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  EXPECT_THROW(make_scheduler("heun", fixture_config("euler")), UnsupportedError);
  EXPECT_THROW(make_scheduler_for_sampler(fixture_config("ddim"), "ddim", "karras"), UnsupportedError);
  EXPECT_THROW(make_scheduler_for_sampler(fixture_config("ddim"), "euler", "exponential"), UnsupportedError);
}

TEST(SchedulerFactory, SamplerNamesMapToClassesLikeFromConfig) {
  // SD 1.5 ships PNDM (leading, steps_offset 1): euler keeps those keys, as Euler.from_config does.
  auto pndm = fixture_config("pndm");
  auto e = sampler_config(pndm, "euler");
  EXPECT_EQ(e.class_name, "EulerDiscreteScheduler");
  EXPECT_EQ(e.timestep_spacing, "leading");
  EXPECT_EQ(e.steps_offset, 1);
  EXPECT_FALSE(e.use_karras_sigmas);
  EXPECT_TRUE(sampler_config(pndm, "euler", "karras").use_karras_sigmas);
  auto d = sampler_config(pndm, "dpmpp_2m", "karras");
  EXPECT_EQ(d.class_name, "DPMSolverMultistepScheduler");
  EXPECT_EQ(d.algorithm_type, "dpmsolver++");
  EXPECT_EQ(d.solver_order, 2);
  EXPECT_TRUE(d.use_karras_sigmas);
  EXPECT_EQ(d.timestep_spacing, "leading");  // carried over from the model config
  EXPECT_TRUE(sampler_config(fixture_config("euler"), "pndm").skip_prk_steps);
  auto svd = sampler_config(fixture_config("euler"), "svd_euler");
  EXPECT_EQ(svd.prediction_type, "v_prediction");
  EXPECT_EQ(svd.timestep_type, "continuous");
  EXPECT_DOUBLE_EQ(*svd.sigma_min, 0.002);
  EXPECT_EQ(make_scheduler("LCMScheduler", fixture_config("lcm"))->class_name(), "LCMScheduler");
  EXPECT_EQ(make_scheduler("euler_ancestral", pndm)->class_name(), "EulerAncestralDiscreteScheduler");
}

TEST(SchedulerFactory, SvdEulerNameReproducesTheSvdFixtureSchedule) {
  // The svd_euler overrides on top of a plain SD config give the SVD fixture's sigmas and timesteps.
  auto s = make_scheduler("svd_euler", fixture_config("euler"));
  s->set_timesteps(25);
  auto out = outputs("svd_euler", 25);
  // README rule for schedules: max|got - ref| <= 1e-6 * max|ref|.
  auto close = [](const at::Tensor& got, const at::Tensor& ref) {
    return (got - ref).abs().max().item<double>() <= 1e-6 * ref.abs().max().item<double>();
  };
  EXPECT_TRUE(close(s->sigmas(), out.at("sigmas")));
  EXPECT_TRUE(close(s->timesteps(), out.at("timesteps")));
  EXPECT_NEAR(s->init_noise_sigma(), 700.0007142857, 1e-4);
}

TEST(Scheduler, DdimStepMatchesRecordedStep) {
  auto s = make_scheduler("ddim", fixture_config("ddim"));
  s->set_timesteps(4);
  auto out = outputs("ddim", 4);
  EXPECT_TRUE(torch::equal(s->timesteps(), torch::tensor({751, 501, 251, 1}, torch::kLong)));
  auto r = s->step(out.at("model_output_1"), 1, out.at("prev_sample_0"));
  EXPECT_LT((r.prev_sample - out.at("prev_sample_1")).abs().max().item<double>(), 1e-5);
  EXPECT_LT((r.pred_original_sample - out.at("pred_original_sample_1")).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(s->index_for_timestep(251), 2);
  EXPECT_THROW(s->step(out.at("model_output_1"), 4, out.at("prev_sample_0")), Error);
}

TEST(Scheduler, PndmRepeatsTheSecondTimestepAndLooksUpTheSecondMatch) {
  auto s = make_scheduler("pndm", fixture_config("pndm"));
  s->set_timesteps(4);
  EXPECT_TRUE(torch::equal(s->timesteps(), torch::tensor({751, 501, 501, 251, 1}, torch::kLong)));
  EXPECT_EQ(s->index_for_timestep(501), 2);
  auto out = outputs("pndm", 4);
  s->step(out.at("model_output_0"), 0, out.at("sample_init"));
  EXPECT_THROW(s->step(out.at("model_output_2"), 2, out.at("prev_sample_1")), Error);  // multistep order enforced
}

TEST(Scheduler, EulerStepAdvancesTheGeneratorEvenWithoutChurn) {
  auto s = make_scheduler("euler", fixture_config("euler"));
  s->set_timesteps(4);
  auto out = outputs("euler", 4);
  auto gen = make_generator(7);
  auto r = s->step(out.at("model_output_0"), 0, out.at("sample_init"), &gen);
  EXPECT_LT((r.prev_sample - out.at("prev_sample_0")).abs().max().item<double>(), 1e-5);  // noise unused
  auto reference = make_generator(7);
  randn({1, 4, 4, 8}, reference);  // the draw step() made
  EXPECT_TRUE(torch::equal(randn({5}, gen), randn({5}, reference)));
}

TEST(Scheduler, StochasticStepsNeedNoiseOrGenerator) {
  auto s = make_scheduler("euler_ancestral", fixture_config("euler_ancestral"));
  s->set_timesteps(4);
  auto x = torch::zeros({1, 4, 4, 8});
  EXPECT_THROW(s->step(x, 0, x), Error);
  auto gen = make_generator(1);
  EXPECT_NO_THROW(s->step(x, 0, x, &gen));
  auto bad = torch::zeros({1, 4});
  EXPECT_THROW(s->step(x, 0, x, nullptr, &bad), Error);
}

TEST(Scheduler, AddNoiseMatchesDefinitions) {
  auto ddim = make_scheduler("ddim", fixture_config("ddim"));
  ddim->set_timesteps(4);
  auto x0 = torch::ones({2, 1, 2, 2}), n = torch::full({2, 1, 2, 2}, 2.0);
  auto y = ddim->add_noise(x0, n, torch::tensor({751, 1}, torch::kLong));
  float a = ddim->alphas_cumprod()[751].item<float>();
  EXPECT_NEAR(y[0][0][0][0].item<float>(), std::sqrt(a) + 2 * std::sqrt(1 - a), 1e-6);
  auto eu = make_scheduler("euler", fixture_config("euler"));
  eu->set_timesteps(4);
  auto z = eu->add_noise(x0, n, torch::tensor({751.0f, 1.0f}));
  EXPECT_NEAR(z[1][0][0][0].item<float>(), 1 + 2 * eu->sigmas()[3].item<float>(), 1e-6);
}

TEST(SchedulerFactory, PipelineSchedulerConfigsGiveThePipelinesSchedules) {
  // fixtures/pipelines: SD (Euler, leading, 4 steps) and SVD (svd_euler config, 3 steps).
  struct Case {
    std::string dir;
    int steps;
  };
  for (const Case& c : {Case{"pipelines/stable_diffusion", 4}, Case{"pipelines/stable_video_diffusion", 3}}) {
    auto cfg = SchedulerConfig::from_file(test::fixture_dir(c.dir) / "scheduler" / "scheduler_config.json");
    auto s = make_scheduler(cfg.class_name, cfg);
    s->set_timesteps(c.steps);
    auto out = io::load_safetensors(test::fixture_dir(c.dir) / "outputs.safetensors");
    for (const char* name : {"timesteps", "sigmas"}) {
      const auto& ref = out.at(name);
      const auto& got = std::string(name) == "timesteps" ? s->timesteps() : s->sigmas();
      ASSERT_EQ(got.sizes(), ref.sizes()) << c.dir << " " << name;
      EXPECT_LE((got - ref).abs().max().item<double>(), 1e-6 * ref.abs().max().item<double>()) << c.dir << " " << name;
    }
    EXPECT_NEAR(s->init_noise_sigma(), out.at("init_noise_sigma").item<double>(), 1e-6 * s->init_noise_sigma()) << c.dir;
  }
}
