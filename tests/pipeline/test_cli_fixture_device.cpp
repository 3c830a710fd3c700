// `clipgen fixture check --device`: the built binary on the CPU gives the same comparisons as without
// --device; a CUDA device on a machine without one (or a CPU-only LibTorch) is a usage error (exit 2)
// that says why; on a machine with CUDA the model runners run there (and still pass the fixture).
// `--precision bf16` runs the pipeline fixtures' models in bf16 (fp16 is refused on the CPU).
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <sstream>

#include "tests/pipeline/cli_test_util.h"
#include "tests/test_util.h"

namespace test = clipgen::test;

namespace {

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// The tiny VAE fixture: a model runner (moves model and inputs to the device), a few seconds on a CPU.
const std::filesystem::path kFixture = test::fixture_dir("vae/autoencoder_tiny");

// The comparison lines only (log lines carry timestamps).
std::string comparisons(const std::string& out) {
  std::string r, line;
  std::istringstream in(out);
  while (std::getline(in, line))
    if (line.find("max_abs_err=") != std::string::npos || line.find("  ERROR  ") != std::string::npos) r += line + "\n";
  return r;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(CliFixtureDevice, CpuMatchesTheDefault) {
  auto dflt = test::run_clipgen("--threads 2 fixture check " + q(kFixture));
  auto cpu = test::run_clipgen("--threads 2 fixture check --device cpu " + q(kFixture));
  ASSERT_EQ(dflt.code, 0) << dflt.out;
  ASSERT_EQ(cpu.code, 0) << cpu.out;
  EXPECT_GE(count(cpu.out, " PASS"), 3) << cpu.out;
  EXPECT_EQ(count(cpu.out, " FAIL"), 0) << cpu.out;
  // Same comparisons, same errors, same format (no device column on cpu).
  EXPECT_EQ(comparisons(cpu.out), comparisons(dflt.out));
}

TEST(CliFixtureDevice, BadDeviceIsAUsageError) {
  for (const char* dev : {"gpu", "cuda:", "cuda:x", "cuda:-1", "mps"}) {
    auto r = test::run_clipgen(std::string("fixture check --device ") + dev + " " + q(kFixture));
    EXPECT_EQ(r.code, 2) << dev << ": " << r.out;
    EXPECT_NE(r.out.find("expected cpu, cuda or cuda:N"), std::string::npos) << dev << ": " << r.out;
  }
}

TEST(CliFixtureDevice, CudaWithoutAGpuSaysSo) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has CUDA: see RunsOnCuda";
  auto r = test::run_clipgen("fixture check --device cuda " + q(kFixture));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--device 'cuda': no CUDA device is available"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, " PASS"), 0) << "nothing may run when the device is unavailable: " << r.out;
}

TEST(CliFixtureDevice, RunsOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto r = test::run_clipgen("fixture check --device cuda " + q(kFixture));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_GE(count(r.out, "on=cuda:0"), 3) << r.out;
  EXPECT_NE(r.out.find("summary: device=cuda:0 fixtures=1 ran_on_device=1"), std::string::npos) << r.out;
  auto too_far = test::run_clipgen("fixture check --device cuda:" +
                                   std::to_string(torch::cuda::device_count()) + " " + q(kFixture));
  EXPECT_EQ(too_far.code, 2) << too_far.out;
  EXPECT_NE(too_far.out.find("not available"), std::string::npos) << too_far.out;
}

TEST(CliFixtureDevice, Bf16RunsThePipelineFixturesInBf16) {
  // --precision bf16: the SD and SVD pipeline fixtures run their models in bf16 and compare the end results
  // within the stated bounds; a model runner in the same tree stays fp32 and says so.
  const auto pipelines = test::fixture_dir("pipelines");
  auto r = test::run_clipgen("--threads 2 fixture check --precision bf16 " + q(pipelines) + " " + q(kFixture));
  EXPECT_EQ(r.code, 0) << r.out;
  // SD: the two token-id checks, final_latents and image; SVD: frames.
  EXPECT_EQ(count(r.out, "in=bf16"), 5) << r.out;
  EXPECT_GE(count(r.out, "in=fp32 (fp32-only runner)"), 3) << r.out;
  EXPECT_EQ(count(r.out, " FAIL"), 0) << r.out;
  EXPECT_NE(r.out.find("summary: precision=bf16 fixtures=3 ran_in_precision=2 fp32_only=1 errors=0 failed=0"),
            std::string::npos)
      << r.out;
  // fp16 is CUDA's: on the CPU a usage error; an unknown precision too.
  auto h = test::run_clipgen("fixture check --precision fp16 " + q(kFixture));
  EXPECT_EQ(h.code, 2) << h.out;
  EXPECT_NE(h.out.find("fp16 needs a CUDA device"), std::string::npos) << h.out;
  auto x = test::run_clipgen("fixture check --precision int8 " + q(kFixture));
  EXPECT_EQ(x.code, 2) << x.out;
  EXPECT_NE(x.out.find("expected fp32, bf16 or fp16"), std::string::npos) << x.out;
}

}  // namespace
