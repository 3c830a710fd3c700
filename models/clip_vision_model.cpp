#include "models/clip_vision_model.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"

namespace clipgen {

CLIPVisionConfig CLIPVisionConfig::from_json(const nlohmann::json& in, const std::string& source) {
  const nlohmann::json& cfg = in.contains("vision_config") && in["vision_config"].is_object() ? in["vision_config"] : in;
  CLIPVisionConfig c;
  c.image_size = config_int(cfg, "image_size", c.image_size, source);
  c.patch_size = config_int(cfg, "patch_size", c.patch_size, source);
  c.num_channels = config_int(cfg, "num_channels", c.num_channels, source);
  c.projection_dim = config_int(cfg, "projection_dim", c.projection_dim, source);
  auto& e = c.encoder;
  e.hidden_size = config_int(cfg, "hidden_size", 768, source);
  e.intermediate_size = config_int(cfg, "intermediate_size", 3072, source);
  e.num_hidden_layers = config_int(cfg, "num_hidden_layers", 12, source);
  e.num_attention_heads = config_int(cfg, "num_attention_heads", 12, source);
  e.layer_norm_eps = config_double(cfg, "layer_norm_eps", 1e-5, source);
  e.hidden_act = parse_clip_activation(config_string(cfg, "hidden_act", "quick_gelu", source), source + ": hidden_act");
  e.validate(source);
  if (c.image_size <= 0 || c.patch_size <= 0 || c.image_size % c.patch_size != 0)
    throw UnsupportedError(source + ": image_size " + std::to_string(c.image_size) + " must be a positive multiple of patch_size " +
                           std::to_string(c.patch_size));
  if (c.num_channels <= 0) throw UnsupportedError(source + ": num_channels must be positive");
  if (c.projection_dim <= 0) throw UnsupportedError(source + ": projection_dim must be positive");
  return c;
}

CLIPVisionConfig CLIPVisionConfig::from_file(const std::filesystem::path& config_json) {
  return from_json(io::read_json(config_json), config_json.string());
}

CLIPVisionEmbeddingsImpl::CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& c) : cfg_(c) {
  const int64_t h = c.encoder.hidden_size;
  class_embedding = register_parameter("class_embedding", torch::randn({h}));
  blocks::Conv2dOptions po;
  po.in_channels = c.num_channels;
  po.out_channels = h;
  po.kernel_size = c.patch_size;
  po.stride = c.patch_size;
  po.bias = false;
  patch_embedding = register_module("patch_embedding", blocks::Conv2d(po));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(c.num_patches() + 1, h));
}

at::Tensor CLIPVisionEmbeddingsImpl::forward(const at::Tensor& pixel_values) {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != cfg_.num_channels || pixel_values.size(2) != cfg_.image_size ||
      pixel_values.size(3) != cfg_.image_size)
    throw UsageError("CLIP vision encoder: pixel_values must be [B, " + std::to_string(cfg_.num_channels) + ", " +
                     std::to_string(cfg_.image_size) + ", " + std::to_string(cfg_.image_size) + "]");
  const int64_t b = pixel_values.size(0);
  auto x = pixel_values.to(patch_embedding->weight.device(), patch_embedding->weight.scalar_type());
  auto patches = patch_embedding(x).flatten(2).transpose(1, 2);  // [B, C, g, g] → [B, g², C]
  auto cls = class_embedding.view({1, 1, -1}).expand({b, 1, -1});  // [B, 1, C]
  auto emb = torch::cat({cls.to(patches.scalar_type()), patches}, 1);  // [B, 1 + g², C]
  return emb + position_embedding->weight.unsqueeze(0);               // + [1, 1 + g², C]
}

CLIPVisionTransformerImpl::CLIPVisionTransformerImpl(const CLIPVisionConfig& c) {
  auto ln = torch::nn::LayerNormOptions({c.encoder.hidden_size}).eps(c.encoder.layer_norm_eps);
  embeddings = register_module("embeddings", CLIPVisionEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm", torch::nn::LayerNorm(ln));
  encoder = register_module("encoder", CLIPEncoder(c.encoder));
  post_layernorm = register_module("post_layernorm", torch::nn::LayerNorm(ln));
}

CLIPVisionOutput CLIPVisionTransformerImpl::forward(const at::Tensor& pixel_values, bool output_hidden_states) {
  CLIPVisionOutput out;
  auto h = pre_layrnorm(embeddings(pixel_values));  // [B, T, C]
  out.last_hidden_state = encoder(h, std::nullopt, /*causal=*/false, output_hidden_states ? &out.hidden_states : nullptr);
  out.pooler_output = post_layernorm(out.last_hidden_state.select(1, 0));  // CLS token [B, C]
  return out;
}

CLIPVisionModelWithProjectionImpl::CLIPVisionModelWithProjectionImpl(const CLIPVisionConfig& c) : cfg_(c) {
  vision_model = register_module("vision_model", CLIPVisionTransformer(c));
  visual_projection =
      register_module("visual_projection", blocks::Linear(c.encoder.hidden_size, c.projection_dim, /*bias=*/false));
}

CLIPVisionOutput CLIPVisionModelWithProjectionImpl::forward(const at::Tensor& pixel_values, bool output_hidden_states) {
  CLIPVisionOutput out = vision_model(pixel_values, output_hidden_states);
  out.image_embeds = visual_projection(out.pooler_output);  // [B, P]
  return out;
}

CLIPVisionModelWithProjection load_clip_vision_model_with_projection(const std::filesystem::path& folder) {
  auto cfg = CLIPVisionConfig::from_file(folder / "config.json");
  blocks::EmptyInitGuard no_init;  // every parameter is overwritten by the checkpoint (strict load)
  CLIPVisionModelWithProjection m(cfg);
  io::load_weights_into(*m, folder);
  m->eval();
  return m;
}

}  // namespace clipgen
