// Fixture runners for the CLIP family: clip_tokenizer (exact ids), CLIPTextModel,
// CLIPTextModelWithProjection and CLIPVisionModelWithProjection (with SVD's image preprocessing).
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/clip_image_preprocess.h"
#include "models/clip_text_model.h"
#include "models/clip_vision_model.h"
#include "models/io/state_dict.h"
#include "models/tokenizer/clip_tokenizer.h"
#include "parity/fixture.h"

namespace clipgen::parity {
namespace fs = std::filesystem;

namespace {

// clip_tokenizer/: prompts.json + tokenizer_<v>/ folders; outputs input_ids_<v>, attention_mask_<v>.
void run_clip_tokenizer(FixtureContext& ctx) {
  std::ifstream f(ctx.dir() / "prompts.json");
  if (!f) throw Error((ctx.dir() / "prompts.json").string() + ": cannot open");
  nlohmann::json prompts = nlohmann::json::parse(f)["prompts"];
  std::vector<std::string> texts;
  for (const auto& p : prompts) texts.push_back(p["prompt"].get<std::string>());

  for (const auto& [name, ref] : ctx.outputs()) {
    const std::string prefix = "input_ids_";
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string v = name.substr(prefix.size());
    CLIPTokenizer tok = CLIPTokenizer::from_folder(ctx.dir() / ("tokenizer_" + v));
    CLIPTokenBatch b = tok.encode_batch(texts, ref.size(1));
    ctx.compare(name, b.input_ids, Tolerance::exact());
    ctx.compare("attention_mask_" + v, b.attention_mask, Tolerance::exact());
    // tokenizer(prompt).input_ids, all prompts concatenated (a length difference is a shape mismatch).
    const std::string key = "ids_unpadded_" + v;
    std::vector<int64_t> got, want;
    bool have = true;
    for (size_t i = 0; i < texts.size(); ++i) {
      if (!prompts[i].contains(key)) {
        have = false;
        break;
      }
      for (int64_t id : tok.encode(texts[i])) got.push_back(id);
      for (int64_t id : prompts[i][key].get<std::vector<int64_t>>()) want.push_back(id);
    }
    if (have)
      ctx.compare(key, torch::tensor(got, torch::kInt64), torch::tensor(want, torch::kInt64), Tolerance::exact());
  }
}

// Compares `hidden_states_<i>` outputs, and any intermediates whose hook name we can map.
void compare_hidden_states(FixtureContext& ctx, const std::vector<at::Tensor>& hs) {
  for (size_t i = 0; i < hs.size(); ++i) {
    const std::string name = "hidden_states_" + std::to_string(i);
    if (ctx.outputs().count(name)) ctx.compare(name, hs[i], Tolerance::model());
  }
  for (const auto& [name, ref] : ctx.outputs()) {
    if (name.rfind("hidden_states_", 0) == 0 && std::stoul(name.substr(14)) >= hs.size())
      ctx.fail(name, "model produced only " + std::to_string(hs.size()) + " hidden states");
  }
}

// Hook outputs of submodules (intermediates.safetensors), by the module names transformers gives them.
// Hooks we cannot map to a tensor of ours are skipped (the CLIP fixtures in shared/fixtures have none).
void compare_intermediates(FixtureContext& ctx, const std::map<std::string, at::Tensor>& ours) {
  for (const auto& [name, ref] : ctx.intermediates()) {
    auto it = ours.find(name);
    if (it != ours.end() && it->second.defined()) ctx.compare("intermediate:" + name, it->second, ref, Tolerance::model());
  }
}

template <class Model>
void run_clip_text(FixtureContext& ctx, bool with_projection) {
  auto cfg = CLIPTextConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
  Model model(cfg);
  io::load_state_dict(*model, io::load_safetensors(ctx.weights_path()), ctx.weights_path().string());
  model->eval();
  model->to(ctx.device());
  CLIPTextForwardOptions opt;
  opt.output_hidden_states = true;
  CLIPTextOutput o = model(ctx.device_input("input_ids"), opt);
  ctx.compare("last_hidden_state", o.last_hidden_state, Tolerance::model());
  if (ctx.outputs().count("pooler_output")) ctx.compare("pooler_output", o.pooler_output, Tolerance::model());
  if (with_projection) ctx.compare("text_embeds", o.text_embeds, Tolerance::model());
  compare_hidden_states(ctx, o.hidden_states);
  if (ctx.outputs().count("penultimate_final_layer_norm"))
    ctx.compare("penultimate_final_layer_norm", model->text_model->final_layer_norm(o.hidden_state(-2)), Tolerance::model());
  std::map<std::string, at::Tensor> ours{
      {"text_model", o.last_hidden_state},
      {"text_model.embeddings", o.hidden_state(0)},
      {"text_model.encoder", o.hidden_state(-1)},
      {"text_model.final_layer_norm", o.last_hidden_state},
  };
  if (with_projection) ours["text_projection"] = o.text_embeds;
  compare_intermediates(ctx, ours);
}

void run_clip_vision(FixtureContext& ctx) {
  auto cfg = CLIPVisionConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
  CLIPVisionModelWithProjection model(cfg);
  io::load_state_dict(*model, io::load_safetensors(ctx.weights_path()), ctx.weights_path().string());
  model->eval();
  model->to(ctx.device());
  const at::Tensor& pixel_values = ctx.input("pixel_values");  // CPU: also the reference for the preprocessing
  CLIPVisionOutput o = model(ctx.to_device(pixel_values), /*output_hidden_states=*/true);
  ctx.compare("image_embeds", o.image_embeds, Tolerance::model());
  ctx.compare("last_hidden_state", o.last_hidden_state, Tolerance::model());
  compare_hidden_states(ctx, o.hidden_states);
  compare_intermediates(ctx, {{"vision_model", o.last_hidden_state},
                              {"vision_model.pre_layrnorm", o.hidden_states.front()},
                              {"vision_model.encoder", o.hidden_states.back()},
                              {"vision_model.post_layernorm", o.pooler_output},
                              {"visual_projection", o.image_embeds}});
  // SVD's preprocessing: pixel_values[0:1] must be the preprocessing of preprocess_image_uint8_hwc.
  if (ctx.inputs().count("preprocess_image_uint8_hwc")) {
    CLIPImageNormalization norm;
    if (fs::exists(ctx.dir() / "feature_extractor" / "preprocessor_config.json"))
      norm = CLIPImageNormalization::from_file(ctx.dir() / "feature_extractor" / "preprocessor_config.json");
    norm.size = cfg.image_size;
    auto px = svd_clip_preprocess_uint8_hwc(ctx.input("preprocess_image_uint8_hwc"), norm);
    ctx.compare("preprocess:pixel_values[0]", px, pixel_values.slice(0, 0, 1), Tolerance::model());
  }
}

}  // namespace

void register_clip_runners() {
  runners()["clip_tokenizer"] = run_clip_tokenizer;
  runners()["CLIPTextModel"] = [](FixtureContext& ctx) { run_clip_text<CLIPTextModel>(ctx, false); };
  runners()["CLIPTextModelWithProjection"] = [](FixtureContext& ctx) { run_clip_text<CLIPTextModelWithProjection>(ctx, true); };
  runners()["CLIPVisionModelWithProjection"] = run_clip_vision;
}

}  // namespace clipgen::parity
