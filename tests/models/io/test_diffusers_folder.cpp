// diffusers/transformers folder layout: model_index.json, per-component config.json, single and sharded
// weights (*.safetensors.index.json), fp16 variants, legacy VAE attention names, pickle-only folders
// refused with conversion advice, and the one-error load report of load_state_dict. Folders are built
// in scratch dirs with save_safetensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "tests/test_util.h"

using namespace clipgen;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ModelLoadError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ModelLoadError";
  return "";
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST(DiffusersFolder, PipelineIndexAndComponentConfigs) {
  auto root = test::scratch_dir("diffusers_pipeline");
  write_text(root / "model_index.json", R"({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.27.2",
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    "safety_checker": [null, null], "text_encoder": ["transformers", "CLIPTextModel"]})");
  fs::create_directories(root / "unet");
  fs::copy_file(test::fixture_dir("unet2d/sd15/config.json"), root / "unet/config.json");
  auto idx = io::read_pipeline_index(root);
  EXPECT_EQ(idx.pipeline_class, "StableDiffusionPipeline");
  EXPECT_TRUE(idx.has("unet"));
  EXPECT_FALSE(idx.has("safety_checker"));
  EXPECT_EQ(idx.components.at("text_encoder").second, "CLIPTextModel");
  EXPECT_EQ(io::read_json(idx.component_dir("unet") / "config.json")["block_out_channels"][1], 64);
  EXPECT_TRUE(has(error_of([&] { idx.component_dir("vae"); }), "component folder 'vae' is missing"));
  EXPECT_TRUE(has(error_of([&] { idx.component_dir("tokenizer"); }), "no component 'tokenizer'"));
  EXPECT_TRUE(has(error_of([&] { io::read_pipeline_index(root / "unet"); }), "no model_index.json"));
  write_text(root / "bad.json", "{\"a\": ");
  EXPECT_TRUE(has(error_of([&] { io::read_json(root / "bad.json"); }), "invalid JSON"));
}

TEST(DiffusersFolder, ShardedWeights) {
  auto dir = test::scratch_dir("diffusers_sharded");
  io::save_safetensors(dir / "diffusion_pytorch_model-00001-of-00002.safetensors", {{"a.weight", torch::ones({2, 2})}});
  io::save_safetensors(dir / "diffusion_pytorch_model-00002-of-00002.safetensors", {{"b.weight", torch::zeros({3})}});
  write_text(dir / "diffusion_pytorch_model.safetensors.index.json",
             R"({"metadata": {"total_size": 28}, "weight_map": {"a.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
                 "b.weight": "diffusion_pytorch_model-00002-of-00002.safetensors"}})");
  auto ws = io::open_weights(dir);
  EXPECT_EQ(ws.paths.size(), 2u);
  ASSERT_EQ(ws.tensors.size(), 2u);
  EXPECT_TRUE(torch::equal(ws.tensors.at("a.weight"), torch::ones({2, 2})));
  // A tensor stored in two shards is an error.
  io::save_safetensors(dir / "diffusion_pytorch_model-00002-of-00002.safetensors",
                       {{"b.weight", torch::zeros({3})}, {"a.weight", torch::ones({2, 2})}});
  EXPECT_TRUE(has(error_of([&] { io::open_weights(dir); }), "also stored in shard"));
  // Missing shard; shard names must be plain file names.
  fs::remove(dir / "diffusion_pytorch_model-00002-of-00002.safetensors");
  EXPECT_TRUE(has(error_of([&] { io::open_weights(dir); }), "listed in the index is missing"));
  write_text(dir / "diffusion_pytorch_model.safetensors.index.json", R"({"weight_map": {"a.weight": "../x.safetensors"}})");
  EXPECT_TRUE(has(error_of([&] { io::open_weights(dir); }), "must be a plain file name"));
  write_text(dir / "diffusion_pytorch_model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_TRUE(has(error_of([&] { io::open_weights(dir); }), "no 'weight_map'"));
}

TEST(DiffusersFolder, Fp16Variants) {
  auto dir = test::scratch_dir("diffusers_fp16");
  io::save_safetensors(dir / "model.fp16.safetensors", {{"w", torch::ones({2}).to(torch::kHalf)}});
  // Only the fp16 variant: found without asking.
  auto only = io::find_weight_files(dir);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].filename(), "model.fp16.safetensors");
  // Both: full precision by default, fp16 when asked.
  io::save_safetensors(dir / "model.safetensors", {{"w", torch::ones({2})}});
  EXPECT_EQ(io::find_weight_files(dir)[0].filename(), "model.safetensors");
  EXPECT_EQ(io::find_weight_files(dir, "fp16")[0].filename(), "model.fp16.safetensors");
  // Sharded fp16 variant as diffusers names it.
  auto sh = test::scratch_dir("diffusers_fp16_sharded");
  io::save_safetensors(sh / "diffusion_pytorch_model.fp16-00001-of-00001.safetensors", {{"w", torch::ones({2}).to(torch::kHalf)}});
  write_text(sh / "diffusion_pytorch_model.safetensors.index.fp16.json",
             R"({"weight_map": {"w": "diffusion_pytorch_model.fp16-00001-of-00001.safetensors"}})");
  auto ws = io::open_weights(sh, "fp16");
  EXPECT_EQ(ws.tensors.at("w").scalar_type(), torch::kHalf);
}

TEST(DiffusersFolder, LegacyVaeAttentionNames) {
  auto dir = test::scratch_dir("diffusers_legacy_vae");
  io::TensorMap t;
  for (const char* n : {"query", "key", "value", "proj_attn"}) {
    t[std::string("encoder.mid_block.attentions.0.") + n + ".weight"] = torch::ones({4, 4});
    t[std::string("encoder.mid_block.attentions.0.") + n + ".bias"] = torch::zeros({4});
  }
  t["encoder.mid_block.attentions.0.group_norm.weight"] = torch::ones({4});
  io::save_safetensors(dir / "diffusion_pytorch_model.safetensors", t);
  auto ws = io::open_weights(dir);
  for (const char* n : {"to_q", "to_k", "to_v", "to_out.0"})
    EXPECT_TRUE(ws.tensors.count(std::string("encoder.mid_block.attentions.0.") + n + ".weight")) << n;
  EXPECT_TRUE(ws.tensors.count("encoder.mid_block.attentions.0.group_norm.weight"));
  EXPECT_FALSE(ws.tensors.count("encoder.mid_block.attentions.0.query.weight"));
}

TEST(DiffusersFolder, PickleOnlyFoldersAreRefusedWithAdvice) {
  auto dir = test::scratch_dir("diffusers_pickle");
  write_text(dir / "diffusion_pytorch_model.bin", std::string("\x80\x02}q\x00.", 6));
  auto msg = error_of([&] { io::find_weight_files(dir); });
  EXPECT_TRUE(has(msg, "diffusion_pytorch_model.bin")) << msg;
  EXPECT_TRUE(has(msg, "never unpickles")) << msg;
  EXPECT_TRUE(has(msg, "save_pretrained(dir, safe_serialization=True)")) << msg;
  auto direct = error_of([&] { io::find_weight_files(dir / "diffusion_pytorch_model.bin"); });
  EXPECT_TRUE(has(direct, "pickle checkpoints are refused")) << direct;
  auto empty = test::scratch_dir("diffusers_empty");
  EXPECT_TRUE(has(error_of([&] { io::find_weight_files(empty); }), "no safetensors weights"));
}

TEST(StateDict, OneErrorReportsMissingUnexpectedAndMismatched) {
  torch::nn::Sequential m(torch::nn::Linear(4, 3), torch::nn::Linear(3, 2));
  io::TensorMap w;
  w["0.weight"] = torch::ones({3, 4});
  w["0.bias"] = torch::ones({5});  // wrong shape
  w["extra.weight"] = torch::ones({1});
  w["text_model.embeddings.position_ids"] = torch::arange(77);  // ignored
  auto msg = error_of([&] { io::load_state_dict(*m, w, "ckpt.safetensors"); });
  EXPECT_TRUE(has(msg, "ckpt.safetensors")) << msg;
  EXPECT_TRUE(has(msg, "2 missing")) << msg;
  EXPECT_TRUE(has(msg, "1.weight")) << msg;
  EXPECT_TRUE(has(msg, "1 unexpected")) << msg;
  EXPECT_TRUE(has(msg, "extra.weight")) << msg;
  EXPECT_TRUE(has(msg, "1 shape-mismatched")) << msg;
  EXPECT_TRUE(has(msg, "0.bias (checkpoint [5], model [3])")) << msg;
  EXPECT_FALSE(has(msg, "position_ids")) << msg;
  // A complete checkpoint loads, converting dtype (fp16 file → fp32 module).
  auto dir = test::scratch_dir("state_dict_ok");
  io::TensorMap ok;
  for (const auto& [k, v] : io::module_state(*m)) ok[k] = torch::full(v.sizes(), 0.5).to(torch::kHalf);
  io::save_safetensors(dir / "model.safetensors", ok);
  io::load_weights_into(*m, dir);
  EXPECT_TRUE(torch::equal(m->parameters()[0], torch::full({3, 4}, 0.5)));
}
