// `clipgen fixture check` on the CLIP fixtures: tokenizer (exact), CLIPTextModel,
// CLIPTextModelWithProjection and CLIPVisionModelWithProjection (+ SVD preprocessing) at 1e-4 —
// and the checker fails when the model is wrong.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/io/diffusers_folder.h"
#include "parity/fixture.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {
void expect_all_pass(const std::string& rel, const std::vector<std::string>& must_have) {
  auto res = parity::check_fixture(test::fixture_dir(rel));
  for (const auto& c : res)
    EXPECT_TRUE(c.pass) << rel << ": " << c.name << " " << c.note << " max_abs_err " << c.max_abs_error << " allowed " << c.allowed;
  for (const auto& name : must_have) {
    bool found = std::any_of(res.begin(), res.end(), [&](const auto& c) { return c.name == name; });
    EXPECT_TRUE(found) << rel << ": no comparison named " << name;
  }
}
}  // namespace

TEST(ClipFixtures, Tokenizer) {
  expect_all_pass("clip_tokenizer", {"input_ids_sd1", "attention_mask_sd1", "ids_unpadded_sd1", "input_ids_sd2",
                                     "attention_mask_sd2", "ids_unpadded_sd2"});
}

TEST(ClipFixtures, TextModel) {
  expect_all_pass("clip_text/text_model", {"last_hidden_state", "pooler_output", "hidden_states_0", "hidden_states_3",
                                           "penultimate_final_layer_norm"});
}

TEST(ClipFixtures, TextModelWithProjection) {
  expect_all_pass("clip_text/text_model_proj", {"last_hidden_state", "text_embeds", "hidden_states_2",
                                                "penultimate_final_layer_norm"});
}

TEST(ClipFixtures, VisionModelWithProjectionAndPreprocessing) {
  expect_all_pass("clip_vision", {"image_embeds", "last_hidden_state", "hidden_states_2", "preprocess:pixel_values[0]"});
}

// A copy of the text fixture whose config says gelu instead of quick_gelu must fail the check.
TEST(ClipFixtures, WrongActivationFailsTheCheck) {
  auto src = test::fixture_dir("clip_text/text_model");
  auto dst = test::scratch_dir("clip_text_wrong_act");
  for (const auto& e : fs::directory_iterator(src)) fs::copy_file(e.path(), dst / e.path().filename());
  auto cfg = io::read_json(dst / "config.json");
  cfg["hidden_act"] = "gelu";
  fs::permissions(dst / "config.json", fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(dst / "config.json") << cfg.dump(2);
  auto res = parity::check_fixture(dst);
  int failed = 0;
  for (const auto& c : res) failed += c.pass ? 0 : 1;
  EXPECT_GE(failed, 5);  // every state after the first layer's MLP
}
