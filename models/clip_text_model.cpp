#include "models/clip_text_model.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"

namespace clipgen {

CLIPTextConfig CLIPTextConfig::from_json(const nlohmann::json& in, const std::string& source) {
  const nlohmann::json& cfg = in.contains("text_config") && in["text_config"].is_object() ? in["text_config"] : in;
  CLIPTextConfig c;
  c.vocab_size = config_int(cfg, "vocab_size", c.vocab_size, source);
  c.max_position_embeddings = config_int(cfg, "max_position_embeddings", c.max_position_embeddings, source);
  c.projection_dim = config_int(cfg, "projection_dim", c.projection_dim, source);
  c.pad_token_id = config_int(cfg, "pad_token_id", c.pad_token_id, source);
  c.bos_token_id = config_int(cfg, "bos_token_id", c.bos_token_id, source);
  c.eos_token_id = config_int(cfg, "eos_token_id", c.eos_token_id, source);
  auto& e = c.encoder;
  e.hidden_size = config_int(cfg, "hidden_size", 512, source);
  e.intermediate_size = config_int(cfg, "intermediate_size", 2048, source);
  e.num_hidden_layers = config_int(cfg, "num_hidden_layers", 12, source);
  e.num_attention_heads = config_int(cfg, "num_attention_heads", 8, source);
  e.layer_norm_eps = config_double(cfg, "layer_norm_eps", 1e-5, source);
  e.hidden_act = parse_clip_activation(config_string(cfg, "hidden_act", "quick_gelu", source), source + ": hidden_act");
  e.validate(source);
  auto positive = [&](int64_t v, const char* key) {
    if (v <= 0) throw UnsupportedError(source + ": " + key + " must be positive (got " + std::to_string(v) + ")");
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.max_position_embeddings, "max_position_embeddings");
  positive(c.projection_dim, "projection_dim");
  return c;
}

CLIPTextConfig CLIPTextConfig::from_file(const std::filesystem::path& config_json) {
  return from_json(io::read_json(config_json), config_json.string());
}

const at::Tensor& CLIPTextOutput::hidden_state(int64_t index) const {
  const auto n = static_cast<int64_t>(hidden_states.size());
  if (n == 0) throw Error("CLIPTextOutput: hidden states were not requested (output_hidden_states=false)");
  int64_t i = index < 0 ? n + index : index;
  if (i < 0 || i >= n)
    throw Error("CLIPTextOutput: hidden state index " + std::to_string(index) + " out of range (" + std::to_string(n) + " states)");
  return hidden_states[i];
}

CLIPTextEmbeddingsImpl::CLIPTextEmbeddingsImpl(const CLIPTextConfig& c) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.encoder.hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(c.max_position_embeddings, c.encoder.hidden_size));
}

at::Tensor CLIPTextEmbeddingsImpl::forward(const at::Tensor& input_ids) {
  const int64_t len = input_ids.size(-1);
  const int64_t max_pos = position_embedding->weight.size(0);
  if (len > max_pos)
    throw UsageError("CLIP text encoder: sequence length " + std::to_string(len) + " exceeds max_position_embeddings " +
                     std::to_string(max_pos));
  auto pos = position_embedding->weight.slice(0, 0, len).unsqueeze(0);  // [1, L, C]
  return token_embedding(input_ids) + pos;                             // [B, L, C]
}

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const CLIPTextConfig& c) : cfg_(c) {
  embeddings = register_module("embeddings", CLIPTextEmbeddings(c));
  encoder = register_module("encoder", CLIPEncoder(c.encoder));
  final_layer_norm = register_module(
      "final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.encoder.hidden_size}).eps(c.encoder.layer_norm_eps)));
}

at::Tensor CLIPTextTransformerImpl::eos_positions(const at::Tensor& input_ids) const {
  if (cfg_.eos_token_id == 2) return input_ids.to(torch::kInt).argmax(-1);  // [B]
  return input_ids.eq(cfg_.eos_token_id).to(torch::kInt).argmax(-1);        // [B]
}

CLIPTextOutput CLIPTextTransformerImpl::forward(const at::Tensor& input_ids_in, const CLIPTextForwardOptions& opt) {
  if (input_ids_in.dim() != 2)
    throw UsageError("CLIP text encoder: input_ids must be [batch, tokens] (got " + std::to_string(input_ids_in.dim()) + " dims)");
  auto input_ids = input_ids_in.to(embeddings->token_embedding->weight.device(), torch::kLong);
  CLIPTextOutput out;
  auto h = embeddings(input_ids);  // [B, L, C]
  std::optional<at::Tensor> mask;
  if (opt.attention_mask) mask = expand_padding_mask(opt.attention_mask->to(h.device()), h.scalar_type());  // [B, 1, 1, L]
  h = encoder(h, mask, /*causal=*/true, opt.output_hidden_states ? &out.hidden_states : nullptr);
  out.last_hidden_state = final_layer_norm(h);
  auto rows = torch::arange(input_ids.size(0), input_ids.options());
  out.pooler_output = out.last_hidden_state.index({rows, eos_positions(input_ids).to(torch::kLong)});  // [B, C]
  return out;
}

CLIPTextModelImpl::CLIPTextModelImpl(const CLIPTextConfig& c) : cfg_(c) {
  text_model = register_module("text_model", CLIPTextTransformer(c));
}

CLIPTextOutput CLIPTextModelImpl::forward(const at::Tensor& input_ids, const CLIPTextForwardOptions& opt) {
  return text_model(input_ids, opt);
}

CLIPTextModelWithProjectionImpl::CLIPTextModelWithProjectionImpl(const CLIPTextConfig& c) : cfg_(c) {
  text_model = register_module("text_model", CLIPTextTransformer(c));
  text_projection = register_module("text_projection", blocks::Linear(c.encoder.hidden_size, c.projection_dim, /*bias=*/false));
}

CLIPTextOutput CLIPTextModelWithProjectionImpl::forward(const at::Tensor& input_ids, const CLIPTextForwardOptions& opt) {
  CLIPTextOutput out = text_model(input_ids, opt);
  out.text_embeds = text_projection(out.pooler_output);  // [B, P]
  return out;
}

CLIPTextModel load_clip_text_model(const std::filesystem::path& folder) {
  auto cfg = CLIPTextConfig::from_file(folder / "config.json");
  blocks::EmptyInitGuard no_init;  // every parameter is overwritten by the checkpoint (strict load)
  CLIPTextModel m(cfg);
  io::load_weights_into(*m, folder);
  m->eval();
  return m;
}

CLIPTextModelWithProjection load_clip_text_model_with_projection(const std::filesystem::path& folder) {
  auto cfg = CLIPTextConfig::from_file(folder / "config.json");
  blocks::EmptyInitGuard no_init;  // every parameter is overwritten by the checkpoint (strict load)
  CLIPTextModelWithProjection m(cfg);
  io::load_weights_into(*m, folder);
  m->eval();
  return m;
}

}  // namespace clipgen
