// Single-file checkpoint mapping at full size (names and shapes only, from tests/data/manifests): the
// published SD 1.5, SD 2.1 and SDXL base files map to exactly the diffusers/transformers state_dict
// names and shapes of each component, with the published configs; bad files give clear errors.
// The bit-exact loading of the tiny fixture files is tests/parity/test_single_file.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "models/io/diffusers_folder.h"
#include "models/io/ldm_yaml.h"
#include "models/io/single_file.h"
#include "tests/test_util.h"

using namespace clipgen;
using nlohmann::json;

namespace {

// The keys of the published file: the conversion's tensors plus the extra keys published files carry.
io::KeyShapes published_keys(const std::string& model) {
  auto m = io::read_json(test::manifest_dir("single_file/" + model + ".json"));
  io::KeyShapes keys;
  for (const auto& [k, s] : m["tensors"].items()) keys[k] = s.get<std::vector<int64_t>>();
  for (const auto& group : m["not_produced_by_the_conversion"])
    for (const auto& [k, s] : group["keys"].items()) keys[k] = s.get<std::vector<int64_t>>();
  return keys;
}

std::vector<std::string> components_of(const std::string& model) {
  if (model == "sdxl_base") return {"unet", "vae", "text_encoder", "text_encoder_2"};
  return {"unet", "vae", "text_encoder"};
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& substrings) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const auto& s : substrings) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what() << "\n  lacks: " << s;
  }
}

}  // namespace

class PublishedFile : public ::testing::TestWithParam<std::string> {};

TEST_P(PublishedFile, MapsToExactlyTheManifestNamesAndShapes) {
  const std::string model = GetParam();
  auto keys = published_keys(model);
  auto plan = io::plan_single_file(keys, model + ".safetensors");
  auto sf = io::read_json(test::manifest_dir("single_file/" + model + ".json"));
  EXPECT_EQ(plan.family, model == "sd15" ? io::SingleFileFamily::SD1
                         : model == "sd21" ? io::SingleFileFamily::SD2
                                           : io::SingleFileFamily::SDXL);
  std::set<std::string> used;
  for (const auto& comp : components_of(model)) {
    SCOPED_TRACE(model + "/" + comp);
    auto manifest = io::read_json(test::manifest_dir(model + "/" + comp + ".json"));
    const auto& shapes = plan.shapes.at(comp);
    ASSERT_EQ(shapes.size(), manifest["tensors"].size());
    for (const auto& [name, shape] : manifest["tensors"].items()) {
      auto it = shapes.find(name);
      ASSERT_NE(it, shapes.end()) << "missing " << name;
      EXPECT_EQ(it->second, shape.get<std::vector<int64_t>>()) << name;
    }
    // The file's own mapping table agrees (q/k/v lists for fused projections).
    const std::string prefix = sf["components"][comp]["file_prefix"];
    std::map<std::string, std::set<std::string>> mine;
    for (const auto& [n, s] : plan.sources.at(comp)) {
      mine[s.file_key.substr(prefix.size())].insert(n);
      used.insert(s.file_key);
    }
    EXPECT_EQ(mine.size(), sf["diffusers_names"][comp].size());
    for (const auto& [fk, names] : sf["diffusers_names"][comp].items()) {
      std::set<std::string> want;
      if (names.is_array()) for (const auto& x : names) want.insert(x.get<std::string>());
      else want.insert(names.get<std::string>());
      EXPECT_EQ(mine[fk], want) << fk;
    }
    // The emitted config is the published one (upcast_attention null ≡ false).
    auto want = io::read_json(test::manifest_dir(model + "/" + comp + "/config.json"));
    auto got = plan.configs.at(comp);
    for (auto* c : {&want, &got})
      if (c->contains("upcast_attention") && (*c)["upcast_attention"].is_null()) (*c)["upcast_attention"] = false;
    for (const auto& [k, v] : want.items()) {
      if (k == "_diffusers_version" || k == "transformers_version" || k == "torch_dtype") continue;
      EXPECT_TRUE(got.contains(k)) << k;
      if (got.contains(k)) EXPECT_EQ(got[k], v) << comp << " config key " << k;
    }
  }
  // Every conversion tensor is used; every extra key of the published file is ignored, not an error.
  for (const auto& [k, s] : sf["tensors"].items()) EXPECT_TRUE(used.count(k)) << "unused " << k;
  size_t extra = 0;
  for (const auto& group : sf["not_produced_by_the_conversion"]) extra += group["keys"].size();
  EXPECT_EQ(plan.ignored.size(), extra);
  EXPECT_EQ(used.size() + plan.ignored.size(), keys.size());
  auto sched = io::read_json(test::manifest_dir(model + "/scheduler/scheduler_config.json"));
  EXPECT_EQ(plan.configs.at("scheduler")["prediction_type"], sched["prediction_type"]);
  EXPECT_EQ(plan.configs.at("scheduler")["_class_name"], sched["_class_name"]);
}

INSTANTIATE_TEST_SUITE_P(Manifests, PublishedFile, ::testing::Values("sd15", "sd21", "sdxl_base"));

TEST(SingleFile, NonPrunedEmaCopyAndOldTransformersLayoutAreAccepted) {
  auto keys = published_keys("sd15");
  keys["model_ema.diffusion_modelinput_blocks00weight"] = {320, 4, 3, 3};
  // Text encoders written by old transformers have no "text_model." level.
  io::KeyShapes old;
  for (const auto& [k, s] : keys) {
    const std::string p = "cond_stage_model.transformer.text_model.";
    old[k.rfind(p, 0) == 0 ? "cond_stage_model.transformer." + k.substr(p.size()) : k] = s;
  }
  auto plan = io::plan_single_file(old, "v1-5-pruned.safetensors");
  EXPECT_EQ(plan.shapes.at("text_encoder").size(), 196u);
  EXPECT_TRUE(plan.shapes.at("text_encoder").count("text_model.encoder.layers.11.mlp.fc2.bias"));
}

TEST(SingleFile, Sd2PenultimateLayerAndYamlOverride) {
  auto keys = published_keys("sd21");
  auto plan = io::plan_single_file(keys, "v2-1.safetensors");
  EXPECT_EQ(plan.configs.at("text_encoder")["num_hidden_layers"], 23);
  // The yaml's `layer: last` keeps all 24 layers; `parameterization` absent → epsilon (512 base model).
  std::string yaml =
      "model:\n  params:\n    unet_config:\n      params:\n        num_head_channels: 64\n"
      "    cond_stage_config:\n      target: x\n      params: {freeze: true, layer: last}\n";
  auto plan2 = io::plan_single_file(keys, "v2-1.safetensors", {}, yaml);
  EXPECT_EQ(plan2.configs.at("text_encoder")["num_hidden_layers"], 24);
  EXPECT_EQ(plan2.configs.at("scheduler")["prediction_type"], "epsilon");
  io::SingleFileOverrides ov;
  ov.text_encoder_layers = 12;
  ov.prediction_type = "v_prediction";
  auto plan3 = io::plan_single_file(keys, "v2-1.safetensors", ov, yaml);
  EXPECT_EQ(plan3.configs.at("text_encoder")["num_hidden_layers"], 12);
  EXPECT_EQ(plan3.configs.at("scheduler")["prediction_type"], "v_prediction");
}

TEST(SingleFile, LdmYamlSubset) {
  std::ifstream f(test::fixture_dir("single_file/sdxl/original_config.yaml"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto y = io::LdmYaml::parse(text);
  EXPECT_EQ(y.find_int("network_config.params.num_head_channels"), 8);
  EXPECT_EQ(y.find_int_list("network_config.params.transformer_depth"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(y.find_int("outdim"), 8);
  EXPECT_EQ(y.find("emb_models.-.params.layer"), "hidden");
  EXPECT_EQ(y.find_double("model.params.scale_factor"), 0.18215);
  EXPECT_EQ(y.find_bool("use_linear_in_transformer"), true);
  EXPECT_EQ(y.find("lossconfig.target"), "torch.nn.Identity");
}

TEST(SingleFile, ComponentSelectionAndUnetOnlyFile) {
  auto keys = published_keys("sd15");
  io::KeyShapes unet_only;
  for (const auto& [k, s] : keys)
    if (k.rfind("model.diffusion_model.", 0) == 0) unet_only[k] = s;
  expect_error([&] { io::plan_single_file(unet_only, "unet.safetensors"); },
               {"unet.safetensors", "holds no vae", "holds only: unet"});
  io::SingleFileOverrides ov;
  ov.components = {"unet"};
  auto plan = io::plan_single_file(unet_only, "unet.safetensors", ov);
  EXPECT_EQ(plan.family, io::SingleFileFamily::SD1);
  EXPECT_EQ(plan.shapes.at("unet").size(), 686u);
  // Just the VAE of a full file.
  ov.components = {"vae"};
  auto vae = io::plan_single_file(keys, "full.safetensors", ov);
  EXPECT_EQ(vae.sources.size(), 1u);
  EXPECT_EQ(vae.shapes.at("vae").size(), 248u);
  EXPECT_EQ(vae.not_requested.size(), 686u + 196u + 1u);  // + the text encoder's position_ids
}

TEST(SingleFile, UnsupportedFamiliesSayWhatTheyLookLike) {
  auto xl = published_keys("sdxl_base");
  io::KeyShapes refiner;
  for (const auto& [k, s] : xl) {
    if (k.rfind("conditioner.embedders.0.", 0) == 0) continue;
    const std::string p1 = "conditioner.embedders.1.";
    refiner[k.rfind(p1, 0) == 0 ? "conditioner.embedders.0." + k.substr(p1.size()) : k] = s;
  }
  expect_error([&] { io::plan_single_file(refiner, "refiner.safetensors"); }, {"refiner.safetensors", "SDXL refiner"});
  expect_error([&] { io::plan_single_file({{"lora_unet_down_blocks_0.lora_down.weight", {4, 320}}}, "x.safetensors"); },
               {"LoRA"});
  expect_error([&] { io::plan_single_file({{"model.diffusion_model.joint_blocks.0.x.weight", {4}}}, "sd3.safetensors"); },
               {"Stable Diffusion 3"});
  expect_error([&] { io::plan_single_file({{"foo.weight", {4}}}, "x.safetensors"); },
               {"not a Stable Diffusion single-file checkpoint"});
}

TEST(SingleFile, InconsistentFilesNameTheTensor) {
  auto keys = published_keys("sd15");
  auto k1 = keys;
  k1["model.diffusion_model.input_blocks.1.0.extra_layer.weight"] = {320};
  expect_error([&] { io::plan_single_file(k1, "a.safetensors"); },
               {"a.safetensors", "model.diffusion_model.input_blocks.1.0.extra_layer.weight", "unexpected UNet tensor"});
  auto k2 = keys;
  k2["cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.qkv.weight"] = {2304, 768};
  expect_error([&] { io::plan_single_file(k2, "b.safetensors"); }, {"self_attn.qkv.weight", "unexpected text encoder tensor"});
  auto k3 = keys;
  k3["some_adapter.proj.weight"] = {4, 4};
  expect_error([&] { io::plan_single_file(k3, "c.safetensors"); }, {"some_adapter.proj.weight", "unexpected tensor"});
  auto k4 = keys;  // a missing level's ResBlock (truncated conversion)
  k4.erase("model.diffusion_model.input_blocks.4.0.out_layers.3.weight");
  expect_error([&] { io::plan_single_file(k4, "d.safetensors"); }, {"input_blocks.4.0.out_layers.3.weight", "missing"});
  auto k5 = keys;  // an extra input block past the structure
  k5["model.diffusion_model.input_blocks.12.0.in_layers.0.weight"] = {1280};
  expect_error([&] { io::plan_single_file(k5, "e.safetensors"); }, {"input_blocks.12", "inconsistent"});
  auto k6 = keys;  // VAE attention stored with a wrong kernel
  k6["first_stage_model.encoder.mid.attn_1.q.weight"] = {512, 512, 3, 3};
  expect_error([&] { io::plan_single_file(k6, "f.safetensors"); }, {"encoder.mid.attn_1.q.weight", "1×1"});
}

TEST(SingleFile, TruncatedFileIsAClearError) {
  auto src = test::fixture_dir("single_file/sd15/model.safetensors");
  auto dir = test::scratch_dir("single_file_truncated");
  auto bytes = read_file(src);
  {
    std::ofstream o(dir / "model.safetensors", std::ios::binary);
    o.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  expect_error([&] { io::load_single_file(dir / "model.safetensors"); }, {"model.safetensors", "truncated"});
}

TEST(SingleFile, LoadsZeroCopyViewsAndConverts) {
  auto path = test::fixture_dir("single_file/sdxl/model.safetensors");
  io::SingleFileOverrides ov;
  ov.components = {"vae", "text_encoder_2"};
  auto ck = io::load_single_file(path, ov);
  ASSERT_EQ(ck.components.size(), 2u);
  const auto& q = ck.components.at("text_encoder_2").at("text_model.encoder.layers.0.self_attn.q_proj.weight");
  const auto& k = ck.components.at("text_encoder_2").at("text_model.encoder.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(q.scalar_type(), torch::kHalf);
  // q and k are views into the same fused in_proj_weight of the mapping.
  EXPECT_EQ(static_cast<const char*>(k.data_ptr()) - static_cast<const char*>(q.data_ptr()), q.numel() * 2);
  auto ck32 = io::load_single_file(path, ov, torch::kFloat);
  EXPECT_EQ(ck32.components.at("vae").at("decoder.conv_in.weight").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(ck32.components.at("vae").at("decoder.conv_in.weight"),
                           ck.components.at("vae").at("decoder.conv_in.weight").to(torch::kFloat)));
}
