// single_file/* fixtures through `clipgen fixture check`: every component's tensors bit-identical to the
// reference folders at float16, every file tensor used, mapping as expected_keys.json, configs as the
// reference config.json. Also checks that the comparison can fail (a changed element, a wrong override).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "models/io/diffusers_folder.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;

class SingleFileFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(SingleFileFixture, LoadsExactlyTheReferenceComponents) {
  auto res = parity::check_fixture(test::fixture_dir("single_file/" + GetParam()));
  EXPECT_GE(res.size(), 10u);
  for (const auto& c : res) EXPECT_TRUE(c.pass) << c.name << ": " << c.note;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SingleFileFixture, ::testing::Values("sd15", "sd21", "sdxl"));

namespace {
// A copy of a single_file fixture in a scratch folder, with absolute reference folder paths.
std::filesystem::path copy_fixture(const std::string& name, const std::string& scratch) {
  auto src = test::fixture_dir("single_file/" + name);
  auto dir = test::scratch_dir(scratch);
  for (const char* f : {"model.safetensors", "expected_keys.json", "original_config.yaml"})
    std::filesystem::copy_file(src / f, dir / f);
  auto fx = io::read_json(src / "fixture.json");
  for (auto& [comp, spec] : fx["components"].items())
    spec["folder"] = std::filesystem::weakly_canonical(src / spec["folder"].get<std::string>()).string();
  std::ofstream(dir / "fixture.json") << fx.dump(1);
  return dir;
}

bool all_pass(const std::vector<parity::Comparison>& res) {
  for (const auto& c : res)
    if (!c.pass) return false;
  return true;
}
}  // namespace

TEST(SingleFileFixtureCanFail, OneChangedElementIsCaught) {
  auto dir = copy_fixture("sd15", "single_file_perturbed");
  EXPECT_TRUE(all_pass(parity::check_fixture(dir)));
  auto t = io::load_safetensors(dir / "model.safetensors");
  auto& w = t.at("model.diffusion_model.input_blocks.1.1.proj_in.weight");
  w = w.clone();
  w.view(-1)[0] = w.view(-1)[0] + 1;  // one float16 element off
  io::save_safetensors(dir / "model.safetensors", t, {{"format", "pt"}});
  auto res = parity::check_fixture(dir);
  bool caught = false;
  for (const auto& c : res)
    if (c.name == "unet.tensors") caught = !c.pass;
  EXPECT_TRUE(caught);
}

TEST(SingleFileFixtureCanFail, WrongHeadCountIsCaught) {
  auto dir = copy_fixture("sd21", "single_file_wrong_heads");
  auto fx = io::read_json(dir / "fixture.json");
  fx["hyperparameters_not_in_shapes"]["unet"]["head_dim_per_level"]["0"] = 4;
  std::ofstream(dir / "fixture.json") << fx.dump(1);
  auto res = parity::check_fixture(dir);
  bool caught = false;
  for (const auto& c : res)
    if (c.name == "unet.config") caught = !c.pass && c.note.find("attention_head_dim") != std::string::npos;
  EXPECT_TRUE(caught);
}
