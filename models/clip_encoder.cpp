#include "models/clip_encoder.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/blocks/attention_ops.h"

namespace clipgen {

CLIPActivation parse_clip_activation(const std::string& name, const std::string& key) {
  if (name == "quick_gelu") return CLIPActivation::QuickGELU;
  if (name == "gelu") return CLIPActivation::GELU;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return CLIPActivation::GELUTanh;
  if (name == "relu") return CLIPActivation::ReLU;
  if (name == "silu" || name == "swish") return CLIPActivation::SiLU;
  throw UnsupportedError("unsupported " + key + "=\"" + name +
                         "\" (supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, relu, silu)");
}

std::string to_string(CLIPActivation a) {
  switch (a) {
    case CLIPActivation::QuickGELU: return "quick_gelu";
    case CLIPActivation::GELU: return "gelu";
    case CLIPActivation::GELUTanh: return "gelu_pytorch_tanh";
    case CLIPActivation::ReLU: return "relu";
    case CLIPActivation::SiLU: return "silu";
  }
  return "?";
}

at::Tensor apply_activation(CLIPActivation a, const at::Tensor& x) {
  switch (a) {
    case CLIPActivation::QuickGELU: return x * torch::sigmoid(1.702 * x);  // x·σ(1.702x)
    case CLIPActivation::GELU: return torch::gelu(x);                       // exact (erf)
    case CLIPActivation::GELUTanh: return torch::gelu(x, "tanh");
    case CLIPActivation::ReLU: return torch::relu(x);
    case CLIPActivation::SiLU: return torch::silu(x);
  }
  return x;
}

void CLIPEncoderConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* key) {
    if (v <= 0) throw UnsupportedError(source + ": " + key + " must be positive (got " + std::to_string(v) + ")");
  };
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  if (hidden_size % num_attention_heads != 0)
    throw UnsupportedError(source + ": hidden_size " + std::to_string(hidden_size) +
                           " is not divisible by num_attention_heads " + std::to_string(num_attention_heads));
}

CLIPAttentionImpl::CLIPAttentionImpl(const CLIPEncoderConfig& c) : heads_(c.num_attention_heads) {
  const int64_t h = c.hidden_size;
  k_proj = register_module("k_proj", blocks::Linear(h, h));
  v_proj = register_module("v_proj", blocks::Linear(h, h));
  q_proj = register_module("q_proj", blocks::Linear(h, h));
  out_proj = register_module("out_proj", blocks::Linear(h, h));
}

at::Tensor CLIPAttentionImpl::forward(const at::Tensor& x, const std::optional<at::Tensor>& mask, bool causal) {
  auto q = blocks::split_heads(q_proj(x), heads_);  // [B, H, L, D]
  auto k = blocks::split_heads(k_proj(x), heads_);  // [B, H, L, D]
  auto v = blocks::split_heads(v_proj(x), heads_);  // [B, H, L, D]
  blocks::AttentionOptions opt;
  opt.causal = causal;  // scale defaults to head_dim^-0.5, as transformers' q scaling
  auto o = blocks::attention(q, k, v, mask, opt);   // [B, H, L, D]
  return out_proj(blocks::merge_heads(o));          // [B, L, C]
}

CLIPMLPImpl::CLIPMLPImpl(const CLIPEncoderConfig& c) : act_(c.hidden_act) {
  fc1 = register_module("fc1", blocks::Linear(c.hidden_size, c.intermediate_size));
  fc2 = register_module("fc2", blocks::Linear(c.intermediate_size, c.hidden_size));
}

at::Tensor CLIPMLPImpl::forward(const at::Tensor& x) { return fc2(apply_activation(act_, fc1(x))); }

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const CLIPEncoderConfig& c) {
  auto ln = torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps);
  self_attn = register_module("self_attn", CLIPAttention(c));
  layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", CLIPMLP(c));
  layer_norm2 = register_module("layer_norm2", torch::nn::LayerNorm(ln));
}

at::Tensor CLIPEncoderLayerImpl::forward(const at::Tensor& x, const std::optional<at::Tensor>& mask, bool causal) {
  auto h = x + self_attn(layer_norm1(x), mask, causal);
  return h + mlp(layer_norm2(h));
}

CLIPEncoderImpl::CLIPEncoderImpl(const CLIPEncoderConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_ptrs_.emplace_back(c);
    layers->push_back(layer_ptrs_.back());
  }
}

at::Tensor CLIPEncoderImpl::forward(const at::Tensor& x, const std::optional<at::Tensor>& mask, bool causal,
                                    std::vector<at::Tensor>* hidden_states) {
  at::Tensor h = x;
  if (hidden_states) hidden_states->push_back(h);
  for (auto& layer : layer_ptrs_) {
    h = layer(h, mask, causal);
    if (hidden_states) hidden_states->push_back(h);
  }
  return h;
}

at::Tensor expand_padding_mask(const at::Tensor& attention_mask, c10::ScalarType dtype) {
  // [B, L] → [B, 1, 1, L]; transformers uses finfo(dtype).min for masked positions.
  auto m = attention_mask.to(dtype).unsqueeze(1).unsqueeze(1);
  double lowest = dtype == torch::kDouble ? std::numeric_limits<double>::lowest()
                  : dtype == torch::kHalf ? -65504.0
                  : dtype == torch::kBFloat16 ? -3.3895313892515355e38
                                              : static_cast<double>(std::numeric_limits<float>::lowest());
  return (1.0 - m) * lowest;
}

int64_t config_int(const nlohmann::json& cfg, const char* key, int64_t def, const std::string& source) {
  if (!cfg.contains(key) || cfg[key].is_null()) return def;
  if (!cfg[key].is_number_integer()) throw UnsupportedError(source + ": " + key + " must be an integer (got " + cfg[key].dump() + ")");
  return cfg[key].get<int64_t>();
}

double config_double(const nlohmann::json& cfg, const char* key, double def, const std::string& source) {
  if (!cfg.contains(key) || cfg[key].is_null()) return def;
  if (!cfg[key].is_number()) throw UnsupportedError(source + ": " + key + " must be a number (got " + cfg[key].dump() + ")");
  return cfg[key].get<double>();
}

std::string config_string(const nlohmann::json& cfg, const char* key, const std::string& def, const std::string& source) {
  if (!cfg.contains(key) || cfg[key].is_null()) return def;
  if (!cfg[key].is_string()) throw UnsupportedError(source + ": " + key + " must be a string (got " + cfg[key].dump() + ")");
  return cfg[key].get<std::string>();
}

}  // namespace clipgen
