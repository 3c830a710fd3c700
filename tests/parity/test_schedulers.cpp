// Every scheduler fixture (tests/data/fixtures/schedulers, README section e) reproduces diffusers 0.27.2:
// schedule, full synthetic-model trajectory and step() on recorded outputs. A wrong setting must fail.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "parity/fixture.h"
#include "parity/run_schedulers.h"
#include "tests/test_util.h"

using namespace clipgen;

namespace {

const std::vector<std::string> kFixtures = {"ddim",         "ddim_v_prediction", "pndm",     "euler",
                                            "euler_v_prediction", "euler_karras", "euler_ancestral", "dpmpp_2m",
                                            "dpmpp_2m_karras", "lcm",          "svd_euler"};

// Runs a fixture with a config edit and returns whether every comparison passed.
bool passes_with(const std::string& name, const std::function<void(schedulers::SchedulerConfig&)>& mutate) {
  parity::FixtureContext ctx(test::fixture_dir("schedulers/" + name));
  parity::run_scheduler_fixture(ctx, mutate);
  for (const auto& c : ctx.results())
    if (!c.pass) return false;
  return !ctx.results().empty();
}

}  // namespace

class SchedulerFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerFixture, EveryComparisonPasses) {
  auto res = parity::check_fixture(test::fixture_dir("schedulers/" + GetParam()));
  // Two runs (steps_4, steps_25), each with the schedule, the trajectory and step-only results.
  ASSERT_GT(res.size(), 2u * (4 + 4 * 4));
  size_t trajectory = 0, step_only = 0;
  for (const auto& c : res) {
    EXPECT_TRUE(c.pass) << c.name << " max_abs_err=" << c.max_abs_error << " allowed=" << c.allowed << " " << c.note;
    if (c.name.find("prev_sample_") != std::string::npos) (c.name.find("step_only/") != std::string::npos ? step_only : trajectory)++;
  }
  EXPECT_EQ(trajectory, step_only);
  EXPECT_GE(trajectory, 4u + 25u);
}

INSTANTIATE_TEST_SUITE_P(All, SchedulerFixture, ::testing::ValuesIn(kFixtures));

TEST(SchedulerFixtureTree, CheckTreeFindsAllElevenAndPasses) {
  auto results = parity::check_tree(test::fixture_dir("schedulers"));
  ASSERT_EQ(results.size(), kFixtures.size());
  for (const auto& r : results) EXPECT_TRUE(r.pass()) << r.dir << " " << r.error;
}

TEST(SchedulerFixtureNegative, UnmodifiedPasses) { EXPECT_TRUE(passes_with("ddim", {})); }

TEST(SchedulerFixtureNegative, WrongStepsOffsetFails) {
  EXPECT_FALSE(passes_with("ddim", [](auto& c) { c.steps_offset = 0; }));
  EXPECT_FALSE(passes_with("euler", [](auto& c) { c.steps_offset = 0; }));
}

TEST(SchedulerFixtureNegative, WrongPredictionTypeFails) {
  EXPECT_FALSE(passes_with("ddim_v_prediction", [](auto& c) { c.prediction_type = "epsilon"; }));
  EXPECT_FALSE(passes_with("svd_euler", [](auto& c) { c.prediction_type = "epsilon"; }));
}

TEST(SchedulerFixtureNegative, WrongSpacingOrSigmasFail) {
  EXPECT_FALSE(passes_with("euler_v_prediction", [](auto& c) { c.timestep_spacing = "leading"; }));
  EXPECT_FALSE(passes_with("euler_karras", [](auto& c) { c.use_karras_sigmas = false; }));
  EXPECT_FALSE(passes_with("dpmpp_2m", [](auto& c) { c.lower_order_final = false; c.final_sigmas_type = "sigma_min"; }));
  EXPECT_FALSE(passes_with("svd_euler", [](auto& c) { c.sigma_max = 80.0; }));
  EXPECT_FALSE(passes_with("lcm", [](auto& c) { c.timestep_scaling = 1.0; }));
  EXPECT_FALSE(passes_with("pndm", [](auto& c) { c.set_alpha_to_one = true; }));
}

TEST(SchedulerFixtureNegative, WrongBetasFail) {
  EXPECT_FALSE(passes_with("euler_ancestral", [](auto& c) { c.beta_schedule = "linear"; }));
}
